"""Red-flag detection on the evaluation sets: recall and false-alarm rate.

    python scripts/eval_red_flags.py [--model MODEL.tar.gz] [SET.yml ...]

By default, runs the RedFlagDetector's rule matcher on tests/red_flags/eval.yml and
fresh.yml. With --model, runs the whole trained NLU model instead (the classifier
and the detector together, as patients meet them): a message counts as escalated
when its intent is ``report_red_flag``.

Prints recall on reports (target 100%), recall per sign, and the false-alarm rate
on negated, hypothetical, informational and ordinary messages (target at most 5%),
listing every miss and false alarm. Exits 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import yaml

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from components.red_flag_matcher import RedFlagMatcher  # noqa: E402
from components.red_flags import INTENT_NAME  # noqa: E402

EVAL_SET = PROJECT / "tests" / "red_flags" / "eval.yml"
LEXICON = PROJECT / "knowledge" / "red_flags.yml"
RECALL_TARGET = 1.0
FALSE_ALARM_TARGET = 0.05


EVAL_SETS = [EVAL_SET, EVAL_SET.with_name("fresh.yml")]

# detect(text) -> (escalated, signs found)
Detector = Callable[[str], Tuple[bool, List[str]]]


def matcher_detector(lexicon_path: Path = LEXICON) -> Detector:
    matcher = RedFlagMatcher(yaml.safe_load(lexicon_path.read_text(encoding="utf-8")))

    def detect(text: str) -> Tuple[bool, List[str]]:
        signs = matcher.detect(text).reported
        return bool(signs), signs

    return detect


def parse_detector(parse: Callable[[str], Dict[str, Any]]) -> Detector:
    """A detector from an NLU parse function (a loaded model, or Rasa's /model/parse)."""
    def detect(text: str) -> Tuple[bool, List[str]]:
        parsed = parse(text)
        signs = [e["value"] for e in parsed.get("entities", []) if e.get("entity") == "red_flag"]
        return (parsed.get("intent") or {}).get("name") == INTENT_NAME, signs

    return detect


def model_detector(model: str) -> Detector:
    from rasa.core.agent import Agent

    agent = Agent.load(model)
    return parse_detector(lambda text: asyncio.run(agent.parse_message(text)))


def evaluate(eval_path: Path = EVAL_SET, detect: Detector = None) -> Dict[str, Any]:
    detect = detect or matcher_detector()
    data = yaml.safe_load(eval_path.read_text(encoding="utf-8"))
    misses, alarms = [], []
    per_sign, per_sign_found = Counter(), Counter()
    for item in data["positives"]:
        escalated, signs = detect(item["text"])
        found = set(signs)
        for sign in item["signs"]:
            per_sign[sign] += 1
            per_sign_found[sign] += sign in found
        if not escalated or not set(item["signs"]) <= found:
            misses.append((item["text"], item["signs"], sorted(found)))
    for text in data["negatives"]:
        escalated, signs = detect(text)
        if escalated:
            alarms.append((text, signs))
    positives, negatives = len(data["positives"]), len(data["negatives"])
    return {
        "positives": positives,
        "negatives": negatives,
        "recall": (positives - len(misses)) / positives,
        "false_alarm_rate": len(alarms) / negatives,
        "per_sign_recall": {s: per_sign_found[s] / per_sign[s] for s in sorted(per_sign)},
        "misses": misses,
        "false_alarms": alarms,
    }


def report(path: Path, result: Dict[str, Any]) -> bool:
    print(f"{path.name}: {result['positives']} reports, {result['negatives']} non-reports")
    print(f"  recall            {result['recall']:.1%} (target {RECALL_TARGET:.0%})")
    print(f"  false-alarm rate  {result['false_alarm_rate']:.1%} (target at most {FALSE_ALARM_TARGET:.0%})")
    for sign, recall in result["per_sign_recall"].items():
        print(f"    {sign:20s} {recall:.0%}")
    for text, expected, found in result["misses"]:
        print(f"  MISSED  {text!r}: expected {expected}, found {found}")
    for text, found in result["false_alarms"]:
        print(f"  FALSE ALARM  {text!r}: {found}")
    return result["recall"] >= RECALL_TARGET and result["false_alarm_rate"] <= FALSE_ALARM_TARGET


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description="Red-flag recall and false-alarm rate.")
    parser.add_argument("--model", help="a trained model: evaluate the whole NLU model, not only the matcher")
    parser.add_argument("sets", nargs="*", type=Path, default=EVAL_SETS)
    args = parser.parse_args(argv)
    detect = model_detector(args.model) if args.model else matcher_detector()
    print(f"Red-flag evaluation of the {'NLU model ' + args.model if args.model else 'rule matcher'}")
    ok = [report(path, evaluate(path, detect)) for path in args.sets]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
