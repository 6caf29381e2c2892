"""The benchmark's arithmetic (scripts/bench/stats.py) and its verdicts against the targets."""
from __future__ import annotations

import math
import re

import pytest

from scripts.bench.report import met
from scripts.bench.stats import (
    Sample,
    headline,
    percentile,
    ratio,
    saturation_peak,
    summarize_phase,
    summary_line,
)

# The issue's format, with numbers (or `na`) in place of the dots.
NUMBER = r"(?:\d+(?:\.\d+)?|na)"
SUMMARY = re.compile(
    rf"^p50_ms={NUMBER} p95_ms={NUMBER} p99_ms={NUMBER} \(realistic load\) max_msgs_per_s={NUMBER} "
    rf"ready_s={NUMBER} rss_mb={NUMBER} train_s={NUMBER} vs_default: p95_ratio={NUMBER} train_ratio={NUMBER}$"
)


def sample(latency_ms: float, at: float = 0.0, kind: str = "faq", error=None, lag_ms: float = 0.0) -> Sample:
    sent = at + lag_ms / 1000
    return Sample(kind=kind, intended=at, sent=sent, done=sent + latency_ms / 1000, error=error)


# --- percentiles ----------------------------------------------------------------------

def test_nearest_rank_percentiles_of_1_to_100():
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100


def test_percentiles_never_interpolate_below_an_observed_value():
    # Linear interpolation would give 2.5 and 9.55; nearest rank gives observed values.
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95) == 10
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99) == 10


def test_percentile_ignores_input_order_and_handles_one_or_no_value():
    assert percentile([30, 10, 20], 50) == 20
    assert percentile([7.5], 99) == 7.5
    assert math.isnan(percentile([], 50))


@pytest.mark.parametrize("q", [0, -1, 100.1])
def test_percentile_rejects_nonsense(q):
    with pytest.raises(ValueError):
        percentile([1, 2, 3], q)


# --- one phase ------------------------------------------------------------------------

def test_only_messages_meant_to_be_sent_in_the_window_count():
    samples = [sample(1000, at=0.5), sample(10, at=1.0), sample(20, at=2.0), sample(30, at=2.999),
               sample(5000, at=3.0)]
    stats = summarize_phase(samples, name="realistic", concurrency=2, think_time_s=(2, 5),
                            window_start=1.0, window_end=3.0)
    assert stats.n == 3
    assert stats.latency["max_ms"] == pytest.approx(30)
    assert stats.offered_per_s == pytest.approx(1.5)
    assert stats.think_time_s == [2, 5]


def test_failed_messages_count_in_the_latency_and_by_type():
    ok = [sample(50, at=1 + i / 100) for i in range(98)]
    failed = [sample(30000, at=1.5, error="timeout"), sample(3, at=1.6, error="http_500")]
    stats = summarize_phase(ok + failed, name="closed-10", concurrency=10, think_time_s=None,
                            window_start=1.0, window_end=2.0)
    assert stats.errors == {"http_500": 1, "timeout": 1}
    assert stats.error_count == 2
    assert stats.n == 100
    assert stats.latency["p99_ms"] == pytest.approx(50)       # 99th of 100: the slowest but one
    assert stats.latency["max_ms"] == pytest.approx(30000)    # the timeout is not dropped
    assert stats.ok_latency["n"] == 98
    assert stats.ok_latency["max_ms"] == pytest.approx(50)


def test_throughput_counts_successful_replies_that_arrived_in_the_window():
    samples = [sample(100, at=0.95), sample(100, at=1.2), sample(100, at=1.5, error="empty_reply"),
               sample(100, at=1.95)]  # arrive at 1.05, 1.3, 1.6 (failed) and 2.05 (after the window)
    stats = summarize_phase(samples, name="closed-1", concurrency=1, think_time_s=None,
                            window_start=1.0, window_end=2.0)
    assert stats.throughput_per_s == pytest.approx(2.0)
    assert stats.think_time_s is None


def test_latency_from_the_intended_time_includes_the_clients_lag():
    stats = summarize_phase([sample(100, at=1.0, lag_ms=40)], name="realistic", concurrency=1,
                            think_time_s=(2, 5), window_start=0.0, window_end=2.0)
    assert stats.latency["p50_ms"] == pytest.approx(100)
    assert stats.from_intended["p50_ms"] == pytest.approx(140)
    assert stats.client_lag_p99_ms == pytest.approx(40)


def test_figures_by_kind_of_message():
    samples = [sample(10, at=1, kind="faq"), sample(30, at=1, kind="faq"),
               sample(200, at=1, kind="checklist", error="timeout")]
    stats = summarize_phase(samples, name="realistic", concurrency=3, think_time_s=(2, 5),
                            window_start=0.0, window_end=2.0)
    assert set(stats.by_kind) == {"faq", "checklist"}
    assert stats.by_kind["faq"]["n"] == 2
    assert stats.by_kind["faq"]["p95_ms"] == pytest.approx(30)
    assert stats.by_kind["faq"]["errors"] == 0
    assert stats.by_kind["checklist"]["errors"] == 1


def test_an_empty_window_is_refused():
    with pytest.raises(ValueError):
        summarize_phase([], name="x", concurrency=1, think_time_s=None, window_start=2.0, window_end=2.0)


# --- the headline and the summary line ------------------------------------------------

def phase(name, concurrency, throughput, p95, think=None):
    samples = [sample(p95, at=0.5)]
    stats = summarize_phase(samples, name=name, concurrency=concurrency, think_time_s=think,
                            window_start=0.0, window_end=1.0)
    stats.throughput_per_s = throughput
    return stats


def test_the_saturation_peak_is_the_closed_loop_phase_with_the_most_throughput():
    phases = [phase("realistic", 50, 99.0, 10, think=(2, 5)), phase("closed-1", 1, 20.0, 50),
              phase("closed-10", 10, 64.0, 180), phase("closed-50", 50, 61.0, 900)]
    peak = saturation_peak(phases)
    assert peak.name == "closed-10"
    assert saturation_peak(phases[:1]) is None


def test_summary_line_has_the_issues_format_and_the_ratios():
    realistic = phase("realistic", 50, 14.0, 120, think=(2, 5))
    closed = [phase("closed-1", 1, 20.0, 50), phase("closed-10", 10, 64.25, 180)]
    ours = headline(realistic, closed, ready_s=21.44, rss_mb=812.6, train_s=95.2)
    default = headline(phase("realistic", 50, 14.0, 240, think=(2, 5)), closed, ready_s=30,
                       rss_mb=900, train_s=380.8)
    line = summary_line(ours, default)
    assert SUMMARY.match(line), line
    assert line == ("p50_ms=120 p95_ms=120 p99_ms=120 (realistic load) max_msgs_per_s=64.2 ready_s=21.4 "
                    "rss_mb=813 train_s=95 vs_default: p95_ratio=0.50 train_ratio=0.25")
    assert ours["p95_ms_at_max"] == pytest.approx(180)
    assert ours["max_msgs_concurrency"] == 10


def test_summary_line_says_na_for_what_was_not_measured():
    ours = headline(None, [], ready_s=20.0, rss_mb=700.0, train_s=None)
    line = summary_line(ours, None)
    assert SUMMARY.match(line), line
    assert "p95_ms=na" in line and "max_msgs_per_s=na" in line and "train_s=na" in line
    assert line.endswith("p95_ratio=na train_ratio=na")


def test_ratio_is_missing_rather_than_infinite_or_nan():
    assert ratio(50.0, 200.0) == pytest.approx(0.25)
    assert ratio(50.0, 0.0) is None
    assert ratio(None, 3.0) is None
    assert ratio(math.nan, 3.0) is None


# --- verdicts against the issue's targets ---------------------------------------------

def test_target_verdicts():
    assert met("p95_ms", 150.0) == "yes"
    assert met("p95_ms", 150.1) == "no"
    assert met("p95_ms", 90.0, errors=3) == "no (3 errors)"
    assert met("max_msgs_per_s", 60.0) == "yes"
    assert met("max_msgs_per_s", 59.9) == "no"
    assert met("rss_mb", 1300.0) == "no"
    assert met("train_s", None) == "not measured"
    assert met("p50_ms", 10.0) == "–"


# --- the profile's summary ---------------------------------------------------------------

def test_profile_top_functions_sum_own_and_inclusive_time_without_line_numbers():
    from scripts.bench.profile import top_functions

    stacks = [
        "run (loop.py:10);handle (app.py:5);parse (nlu.py:7) 6",
        "run (loop.py:10);handle (app.py:6);parse (nlu.py:9) 2",
        "run (loop.py:10);handle (app.py:8);save (store.py:3) 2",
        "not a stack line",
    ]
    summary = top_functions(stacks, top=2)
    assert summary["samples"] == 10
    assert summary["own"] == [
        {"function": "parse (nlu.py)", "samples": 8, "share": 0.8},
        {"function": "save (store.py)", "samples": 2, "share": 0.2},
    ]
    # run and handle are on every stack: the trunk, left out of the inclusive list
    assert [row["function"] for row in summary["inclusive"]] == ["parse (nlu.py)", "save (store.py)"]
    assert top_functions(stacks, trunk=1.01)["inclusive"][0] == {"function": "run (loop.py)", "samples": 10,
                                                                 "share": 1.0}


def test_the_busy_warning_follows_the_measured_phases_not_the_start_load():
    from scripts.bench.report import busy_note

    def result(loadavg, *other_cores):
        phases = [{"cpu": {"other_cores": c}} for c in other_cores]
        return {"meta": {"loadavg_start": loadavg, "cpus": 2}, "pipelines": {"ours": {"phases": phases}}}

    assert busy_note(result(0.1, 0.0, 0.02)) == []
    # make model's training just before: a high load average, quiet phases
    note = " ".join(busy_note(result(1.67, 0.0, 0.01)))
    assert "includes any training" in note and "at most 0.01 cores" in note and "busy" not in note
    # another process during a phase is flagged whatever the load average was
    assert "**The machine was busy**" in " ".join(busy_note(result(0.0, 0.0, 0.6)))
