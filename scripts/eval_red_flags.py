"""Red-flag detection on the evaluation set: recall and false-alarm rate.

    python scripts/eval_red_flags.py [tests/red_flags/eval.yml]

Runs the same rule matcher as the RedFlagDetector on the evaluation set, prints
recall on reported signs (target 100%), recall per sign, and the false-alarm rate
on negated, hypothetical, informational and ordinary messages (target at most 5%),
listing every miss and false alarm. Exits 1 when a target is missed.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any, Dict

import yaml

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from components.red_flag_matcher import RedFlagMatcher  # noqa: E402

EVAL_SET = PROJECT / "tests" / "red_flags" / "eval.yml"
LEXICON = PROJECT / "knowledge" / "red_flags.yml"
RECALL_TARGET = 1.0
FALSE_ALARM_TARGET = 0.05


def evaluate(eval_path: Path = EVAL_SET, lexicon_path: Path = LEXICON) -> Dict[str, Any]:
    matcher = RedFlagMatcher(yaml.safe_load(lexicon_path.read_text(encoding="utf-8")))
    data = yaml.safe_load(eval_path.read_text(encoding="utf-8"))
    misses, alarms = [], []
    per_sign, per_sign_found = Counter(), Counter()
    for item in data["positives"]:
        found = set(matcher.detect(item["text"]).reported)
        for sign in item["signs"]:
            per_sign[sign] += 1
            per_sign_found[sign] += sign in found
        if not set(item["signs"]) <= found:
            misses.append((item["text"], item["signs"], sorted(found)))
    for text in data["negatives"]:
        found = matcher.detect(text).reported
        if found:
            alarms.append((text, found))
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


def main(argv: list) -> int:
    result = evaluate(Path(argv[1]) if len(argv) > 1 else EVAL_SET)
    print(f"Red-flag evaluation: {result['positives']} reports, {result['negatives']} non-reports")
    print(f"  recall            {result['recall']:.1%} (target {RECALL_TARGET:.0%})")
    print(f"  false-alarm rate  {result['false_alarm_rate']:.1%} (target at most {FALSE_ALARM_TARGET:.0%})")
    for sign, recall in result["per_sign_recall"].items():
        print(f"    {sign:20s} {recall:.0%}")
    for text, expected, found in result["misses"]:
        print(f"  MISSED  {text!r}: expected {expected}, found {found}")
    for text, found in result["false_alarms"]:
        print(f"  FALSE ALARM  {text!r}: {found}")
    ok = result["recall"] >= RECALL_TARGET and result["false_alarm_rate"] <= FALSE_ALARM_TARGET
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
