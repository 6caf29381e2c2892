"""Every answer is grounded in the passages it cites.

Checks, for every response that cites the article (all FAQ answers must):
* each cited passage exists;
* each number and duration in the answer appears in a cited passage (verbatim source);
* the answer's content words overlap its cited passages by at least MIN_OVERLAP
  (see the comment on it for why that threshold). A passage is its verbatim source
  and its plain-English text; that text is itself checked against the source.
Safety-net messages (metadata `safety_net: true`: the red-flag screen and the urgent
message) also name warning signs from the red-flag list in knowledge/red_flags.yml,
which follows the NHS cauda equina leaflets; they must cite the article's nerve
criterion (p18) and are exempt from the overlap check only.
A fabricated answer must fail these checks, so they can fail.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest
import yaml

from knowledge import load_passages
from knowledge.text import content_lemmas

PROJECT = Path(__file__).resolve().parents[2]
NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}
UNITS = {"second", "minute", "hour", "day", "week", "month", "year"}
# Words that frame an answer for a patient rather than state medical content:
# they point to people and places to ask, or to the article itself.
FRAMING = {
    "article", "doctor", "specialist", "clinic", "surgeon", "physiotherapist", "ask",
    "advise", "case", "expect", "tell", "explain", "answer", "discuss", "question",
    "decide", "examine", "diagnosis", "emergency", "department", "call", "local",
    "number", "chat", "appointment", "wait", "rely", "alert", "button", "tap", "type",
}
# An answer must share at least 60% of its distinct content lemmas (less framing
# words) with the passages it cites. Rewording for patients ("wear" for
# "degeneration", "keyhole" ...) and linking words cost some overlap: the faithful
# answers measured 0.67 to 1.0 when this was set, while invented statements measure
# far lower (the fabricated answers below score 0.0 to 0.3).
MIN_OVERLAP = 0.6
# A passage's plain-English text must share at least this much with its own source.
MIN_PLAIN_OVERLAP = 0.6


def load_responses() -> Dict[str, List[dict]]:
    responses: Dict[str, List[dict]] = {}
    files = list((PROJECT / "domain").glob("*.yml")) + list((PROJECT / "data").rglob("*.yml"))
    for path in files:
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for name, variations in (content.get("responses") or {}).items():
            responses.setdefault(name, []).extend(variations)
    # Messages sent by custom actions: one variation each.
    actions = yaml.safe_load((PROJECT / "actions" / "messages.yml").read_text(encoding="utf-8"))
    for name, message in actions["messages"].items():
        responses.setdefault(f"actions/{name}", []).append(message)
    return responses


def numbers_with_units(text: str) -> Set[Tuple[int, str]]:
    """(number, unit) pairs; unit is '' when no time unit follows the number.

    In a range ("3 to 6 weeks") both numbers take the unit.
    """
    found = set()
    number = r"\b(\d+|" + "|".join(NUMBER_WORDS) + r")\b"
    lowered = text.lower()
    for match in re.finditer(number, lowered):
        raw = match.group(1)
        value = int(raw) if raw.isdigit() else NUMBER_WORDS[raw]
        after = re.match(r"\s+(?:to\s+\S+\s+)?(\w+)", lowered[match.end():])
        following = after.group(1).rstrip("s") if after else ""
        found.add((value, following if following in UNITS else ""))
    return found


def ungrounded_numbers(answer: str, sources: str) -> Set[Tuple[int, str]]:
    available = numbers_with_units(sources)
    bare = {value for value, _ in available}
    return {
        (value, unit)
        for value, unit in numbers_with_units(answer)
        if ((value, unit) not in available if unit else value not in bare)
    }


def overlap(answer: str, sources: str) -> float:
    words = {w for w in content_lemmas(answer) if w not in FRAMING}
    if not words:
        return 1.0
    return len(words & set(content_lemmas(sources))) / len(words)


def cited_sources(citations: List[str]) -> str:
    passages = load_passages()
    return " ".join(f"{passages[pid].source} {passages[pid].text}" for pid in citations)


CITED = [
    (name, i, variation)
    for name, variations in sorted(load_responses().items())
    for i, variation in enumerate(variations)
    if (variation.get("metadata") or {}).get("citations")
]


# The question families issue 2 asks for, one answer each (some answers cover two
# neighbouring questions, e.g. causes and how the disc hardens).
REQUIRED_TOPICS = {
    "what_is_it", "ligament", "bone_spur", "where_it_occurs", "who_gets_it", "causes",
    "endocrine", "symptoms", "claudication", "both_legs", "no_symptoms", "bladder_bowel",
    "difference", "xray", "ct_scan", "risks", "surgery_difficulty", "outcome",
    "conservative", "go_back", "when_surgery", "surgery_options", "must_remove",
    "choosing_surgery", "daily_care", "bed", "neck_office", "exercise", "lumbar_support",
}


def test_every_faq_answer_cites_the_article():
    faq = {name: v for name, v in load_responses().items() if name.startswith("utter_faq/")}
    missing = REQUIRED_TOPICS - {name.split("/", 1)[1] for name in faq}
    assert not missing, f"no answer for {sorted(missing)}"
    for name, variations in faq.items():
        for variation in variations:
            assert (variation.get("metadata") or {}).get("citations"), f"{name} cites nothing"


@pytest.mark.parametrize("name,index,variation", CITED, ids=[f"{n}[{i}]" for n, i, _ in CITED])
def test_citations_exist(name, index, variation):
    passages = load_passages()
    for pid in variation["metadata"]["citations"]:
        assert pid in passages, f"{name} cites unknown passage {pid}"


@pytest.mark.parametrize("name,index,variation", CITED, ids=[f"{n}[{i}]" for n, i, _ in CITED])
def test_numbers_appear_in_cited_passages(name, index, variation):
    sources = cited_sources(variation["metadata"]["citations"])
    assert not ungrounded_numbers(variation["text"], sources)


@pytest.mark.parametrize("name,index,variation", CITED, ids=[f"{n}[{i}]" for n, i, _ in CITED])
def test_content_overlaps_cited_passages(name, index, variation):
    if variation["metadata"].get("safety_net"):
        assert "p18" in variation["metadata"]["citations"]
        return
    sources = cited_sources(variation["metadata"]["citations"])
    score = overlap(variation["text"], sources)
    assert score >= MIN_OVERLAP, f"{name}: overlap {score:.2f} < {MIN_OVERLAP}"


@pytest.mark.parametrize("passage", list(load_passages().values()), ids=lambda p: p.id)
def test_plain_text_stays_close_to_its_source(passage):
    assert overlap(passage.text, passage.source) >= MIN_PLAIN_OVERLAP
    assert not ungrounded_numbers(passage.text, passage.source)


@pytest.mark.parametrize(
    "fabricated,citations",
    [
        ("Drinking green tea every morning dissolves the calcium deposits quickly.", ["p05"]),
        ("Most patients need antibiotics and an MRI before any treatment starts.", ["p10"]),
        ("Yoga and swimming cure the condition in most young people.", ["p25"]),
    ],
)
def test_fabricated_answers_fail_the_overlap_check(fabricated, citations):
    assert overlap(fabricated, cited_sources(citations)) < MIN_OVERLAP


@pytest.mark.parametrize(
    "fabricated,citations",
    [
        ("Conservative treatment helps for about ten weeks.", ["p16"]),
        ("Wear a lumbar support for 3 to 12 weeks.", ["p26"]),
        ("Surgery is needed when treatment fails for 6 months.", ["p18"]),
    ],
)
def test_invented_numbers_are_caught(fabricated, citations):
    assert ungrounded_numbers(fabricated, cited_sources(citations))
