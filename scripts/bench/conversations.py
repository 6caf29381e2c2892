"""Scripted patient conversations for the benchmark, drawn from the project's own data.

- FAQ turns: the held-out questions (tests/nlu/heldout.yml, `faq/<topic>`), which the
  model has never seen, so some of them fall back to the article search, as real ones do;
  now and then a "tell me more" after an answer (an action call).
- Checklist turns: starting the surgery checklist (a button payload or a training
  wording) and answering its three questions with the buttons' payloads or typed answers,
  sometimes followed by "summary for my doctor". The safety question is always answered
  "no": red flags are not part of this mix.
- Fallback turns: questions next to the topic that the FAQ doesn't answer, and a few off
  topic, which the fallback answers with the article search (an action call).
- Other turns: greetings, thanks and goodbyes (held-out wordings).

Each conversation is a list of turns; the load client sends it under a new sender id.
Which intent and action each kind really got is read back from the tracker store
afterwards (scripts/bench/servers.py), so a mix that drifts from its intent shows.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import yaml

PROJECT = Path(__file__).resolve().parents[2]
HELDOUT = PROJECT / "tests/nlu/heldout.yml"
TRAINING = PROJECT / "data/nlu"

FAQ, CHECKLIST, FALLBACK, OTHER = "faq", "checklist", "fallback", "other"
KINDS = (FAQ, CHECKLIST, FALLBACK, OTHER)

# Questions the article's FAQ has no answer for: anatomy and practical questions next to
# the topic (the article search often finds a passage) and a few off topic. Each got
# nlu_fallback from our model when they were chosen; the report shows what each pipeline
# actually did with them.
FALLBACK_QUESTIONS = (
    "what is the dura mater",
    "what does the annulus fibrosus do",
    "what is the spinal canal",
    "what is a vertebral endplate",
    "what are facet joints",
    "is a disc made of cartilage",
    "tell me about the cauda equina",
    "what is a laminectomy",
    "what is an MRI",
    "what anaesthetic do they use",
    "how long would i stay in hospital",
    "how long is the scar",
    "how much does the operation cost",
    "does cold weather make the calcification worse",
    "does smoking affect discs",
    "can i fly on a plane with it",
    "is coffee bad for the spine",
    "what shoes should i buy for walking",
    "what's the capital of australia and its population",
)
CHECKLIST_ANSWERS = {"yes": "/affirm", "no": "/deny"}
TELL_ME_MORE = ("tell me more", "can you explain that in more detail", "more please")


@dataclass(frozen=True)
class Turn:
    kind: str
    text: str


def read_examples(path: Path) -> Dict[str, List[str]]:
    """intent -> examples of a Rasa NLU YAML file (entity-free texts as written)."""
    examples: Dict[str, List[str]] = {}
    for item in yaml.safe_load(path.read_text()).get("nlu") or []:
        if "intent" in item:
            lines = str(item.get("examples") or "").splitlines()
            examples.setdefault(item["intent"], []).extend(
                line.strip()[2:].strip() for line in lines if line.strip().startswith("- ")
            )
    return examples


def read_training_examples(directory: Path) -> Dict[str, List[str]]:
    merged: Dict[str, List[str]] = {}
    for path in sorted(directory.glob("*.yml")):
        for intent, texts in read_examples(path).items():
            merged.setdefault(intent, []).extend(texts)
    return merged


class Corpus:
    """The texts conversations are made of."""

    def __init__(self) -> None:
        heldout = read_examples(HELDOUT)
        training = read_training_examples(TRAINING)
        self.faq = [t for intent, texts in sorted(heldout.items()) if intent.startswith("faq/") for t in texts]
        self.greetings = heldout["greet"]
        self.closings = heldout["thank"] + heldout["goodbye"]
        self.checklist_starts = ["/start_surgery_checklist"] + training["start_surgery_checklist"][:8]
        # Typed answers of one or two words, as patients tap them out.
        self.typed = {
            "yes": [t for t in training["affirm"] if len(t.split()) <= 2],
            "no": [t for t in training["deny"] if len(t.split()) <= 2 and "thank" not in t],
        }
        self.summary_requests = training["request_summary"][:6]
        for name in ("faq", "greetings", "closings", "checklist_starts", "summary_requests"):
            if not getattr(self, name):
                raise ValueError(f"no {name} texts found in the NLU data")

    def answer(self, rng: random.Random, value: str) -> str:
        """A checklist answer: the button's payload (60%) or a typed word."""
        return CHECKLIST_ANSWERS[value] if rng.random() < 0.6 else rng.choice(self.typed[value])

    def conversation(self, rng: random.Random) -> List[Turn]:
        """One patient's conversation: a greeting, 1 to 4 questions, maybe a fallback,
        maybe the checklist, maybe thanks: about 6 turns, 50% FAQ, 30% checklist, 10%
        fallback and 10% other on average; the realised mix is reported."""
        turns: List[Turn] = []
        if rng.random() < 0.4:
            turns.append(Turn(OTHER, rng.choice(self.greetings)))
        questions: List[Turn] = []
        for _ in range(rng.randint(1, 4)):
            questions.append(Turn(FAQ, rng.choice(self.faq)))
            if rng.random() < 0.15:
                questions.append(Turn(FAQ, rng.choice(TELL_ME_MORE)))
        if rng.random() < 0.6:
            questions.insert(rng.randint(0, len(questions)), Turn(FALLBACK, rng.choice(FALLBACK_QUESTIONS)))
        turns.extend(questions)
        if rng.random() < 0.4:
            turns.append(Turn(CHECKLIST, rng.choice(self.checklist_starts)))
            turns.append(Turn(CHECKLIST, self.answer(rng, "no")))  # the safety question
            turns.append(Turn(CHECKLIST, self.answer(rng, rng.choice(["yes", "no"]))))
            turns.append(Turn(CHECKLIST, self.answer(rng, rng.choice(["yes", "no"]))))
            if rng.random() < 0.3:
                turns.append(Turn(CHECKLIST, rng.choice(self.summary_requests)))
        if rng.random() < 0.3:
            turns.append(Turn(OTHER, rng.choice(self.closings)))
        return turns
