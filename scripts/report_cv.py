"""Summarise `rasa test nlu --cross-validation` results and check the F1 target.

    python scripts/report_cv.py results/cross-validation [--target 0.95]

Reads the intent and response-selection reports Rasa writes (test folds pooled),
prints weighted and macro F1 and the weakest labels, and exits 1 when a weighted F1
is under the target.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPORTS = {
    "intent": "intent_report.json",
    "response selection": "response_selection_report.json",
}


def main(argv: list[str]) -> int:
    folder = Path(argv[1] if len(argv) > 1 else "results/cross-validation")
    target = float(argv[argv.index("--target") + 1]) if "--target" in argv else 0.95
    failed = False
    for label, name in REPORTS.items():
        path = folder / name
        if not path.exists():
            print(f"{label}: no report at {path}")
            failed = True
            continue
        report = json.loads(path.read_text())
        weighted = report["weighted avg"]["f1-score"]
        macro = report["macro avg"]["f1-score"]
        accuracy = report.get("accuracy", float("nan"))
        worst = sorted(
            (value["f1-score"], key)
            for key, value in report.items()
            if isinstance(value, dict) and "support" in value and key not in
            ("weighted avg", "macro avg", "micro avg")
        )[:5]
        status = "ok" if weighted >= target else f"BELOW TARGET {target}"
        print(f"{label}: weighted F1 {weighted:.3f}, macro F1 {macro:.3f}, accuracy {accuracy:.3f} [{status}]")
        print("  weakest: " + ", ".join(f"{key} {f1:.2f}" for f1, key in worst))
        failed |= weighted < target
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
