"""The NLU training data: enough examples, button payloads that reach their topic, and
evaluation sets that stay unseen.

Rasa's own validator (`rasa data validate`) checks the format and duplicates across
intents; these tests check what it doesn't.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
NLU = PROJECT / "data" / "nlu"
RESPONSES = NLU / "responses" / "faq.yml"
EVALUATION_SETS = sorted((PROJECT / "tests" / "red_flags").glob("*.yml")) + sorted(
    (PROJECT / "tests" / "nlu").glob("*.yml")
)
MIN_EXAMPLES = 15  # issue 2: at least 15 varied examples per intent


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def training_examples() -> Dict[str, List[str]]:
    examples: Dict[str, List[str]] = {}
    for path in sorted(NLU.rglob("*.yml")):
        for item in (yaml.safe_load(path.read_text()) or {}).get("nlu") or []:
            if "intent" not in item:
                continue
            lines = [line.strip()[2:] for line in item["examples"].splitlines()
                     if line.strip().startswith("- ")]
            examples.setdefault(item["intent"], []).extend(lines)
    return examples


def evaluation_texts() -> List[str]:
    texts: List[str] = []

    def collect(node) -> None:
        if isinstance(node, str):
            texts.append(node)
        elif isinstance(node, list):
            for value in node:
                collect(value)
        elif isinstance(node, dict):
            if isinstance(node.get("examples"), str):  # Rasa NLU format: one message a line
                texts.extend(line.strip()[2:] for line in node["examples"].splitlines()
                             if line.strip().startswith("- "))
            elif isinstance(node.get("text"), str):
                texts.append(node["text"])
            else:
                for value in node.values():
                    collect(value)

    for path in EVALUATION_SETS:
        collect(yaml.safe_load(path.read_text()))
    return texts


EXAMPLES = training_examples()


@pytest.mark.parametrize("intent", sorted(EXAMPLES))
def test_every_intent_has_enough_examples(intent):
    assert len(EXAMPLES[intent]) >= MIN_EXAMPLES, f"{intent}: {len(EXAMPLES[intent])} examples"


def test_every_faq_answer_has_training_examples():
    answers = yaml.safe_load(RESPONSES.read_text())["responses"]
    topics = {name[len("utter_"):] for name in answers if name.startswith("utter_faq/")}
    assert topics == {intent for intent in EXAMPLES if intent.startswith("faq/")}


def test_button_questions_are_training_examples_of_a_faq_topic():
    """A follow-up button sends a question as text; it must be one the model was taught,
    so pressing it always gives the answer the button promises."""
    topic_of = {normalise(text): intent for intent, texts in EXAMPLES.items() for text in texts}
    answers = yaml.safe_load(RESPONSES.read_text())["responses"]
    for name, variations in answers.items():
        for variation in variations:
            for button in variation.get("buttons") or []:
                payload = button["payload"]
                if payload.startswith("/"):
                    continue
                assert topic_of.get(normalise(payload), "").startswith("faq/"), (
                    f"{name}: button payload {payload!r} is not a training example of a topic")


def test_evaluation_sets_are_not_in_the_training_data():
    """Held-out and red-flag evaluation messages must stay unseen, or the figures lie."""
    seen = {normalise(text) for texts in EXAMPLES.values() for text in texts}
    texts = evaluation_texts()
    assert len(texts) > 300, f"only {len(texts)} evaluation messages found"
    leaked = sorted({text for text in texts if normalise(text) in seen})
    assert not leaked, f"evaluation messages found in the training data: {leaked}"



def test_every_line_of_an_examples_block_is_an_example():
    """Inside `examples: |` a YAML comment is text: Rasa skips such a line with a warning
    (and an example without its "- " would be lost the same way)."""
    stray = []
    for path in sorted(NLU.rglob("*.yml")) + [p for p in EVALUATION_SETS if p.parent.name == "nlu"]:
        for item in (yaml.safe_load(path.read_text()) or {}).get("nlu") or []:
            for line in str(item.get("examples") or "").splitlines():
                if line.strip() and not line.strip().startswith("- "):
                    stray.append(f"{path.relative_to(PROJECT)}: {line.strip()}")
    assert not stray, "\n".join(stray)
