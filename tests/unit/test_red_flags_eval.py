"""The red-flag evaluation sets meet the targets: 100% recall, at most 5% false alarms."""
import pytest

from scripts.eval_red_flags import EVAL_SETS, FALSE_ALARM_TARGET, RECALL_TARGET, evaluate


@pytest.mark.parametrize("path", EVAL_SETS, ids=["eval", "fresh"])
def test_targets_are_met(path):
    result = evaluate(path)
    assert result["positives"] >= 15 and result["negatives"] >= 15
    assert result["recall"] >= RECALL_TARGET, result["misses"]
    assert result["false_alarm_rate"] <= FALSE_ALARM_TARGET, result["false_alarms"]
