"""The benchmark's arithmetic: samples, percentiles, one phase's figures, the summary line.

Pure functions only (no I/O), so they are unit-tested (tests/unit/test_bench_stats.py).

Percentiles use the nearest-rank method: the p-th percentile is the smallest observed
value with at least p% of the samples at or below it. It never interpolates below an
observed value, so a p99 over 100 samples is the slowest but one, not a blend.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence

PERCENTILES = (50, 95, 99)


@dataclass
class Sample:
    """One message sent to the assistant and what came back (times in seconds, monotonic)."""

    kind: str                     # faq, checklist, fallback or other (what the script meant)
    intended: float               # when the patient meant to send it
    sent: float                   # when the request actually left
    done: float                   # when the reply (or the error) arrived
    error: Optional[str] = None   # None, "timeout", "http_500", "empty_reply", ...

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def latency_ms(self) -> float:
        """Service time: request sent to reply received."""
        return (self.done - self.sent) * 1000.0

    @property
    def from_intended_ms(self) -> float:
        """Latency as the patient sees it, from the moment they meant to send."""
        return (self.done - self.intended) * 1000.0

    @property
    def lag_ms(self) -> float:
        """How late the client sent it: above a few ms, the client was the bottleneck."""
        return (self.sent - self.intended) * 1000.0


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of `values` (0 < q <= 100); NaN for no values."""
    if not 0 < q <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {q}")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = math.ceil(q / 100.0 * len(ordered))
    return ordered[max(rank, 1) - 1]


def latency_summary(values: Sequence[float]) -> Dict[str, float]:
    """n, p50, p95, p99, max and mean of latencies in ms."""
    summary: Dict[str, float] = {"n": len(values)}
    for q in PERCENTILES:
        summary[f"p{q}_ms"] = percentile(values, q)
    summary["max_ms"] = max(values) if values else math.nan
    summary["mean_ms"] = sum(values) / len(values) if values else math.nan
    return summary


@dataclass
class PhaseStats:
    """One load phase's figures over its measurement window."""

    name: str
    concurrency: int
    think_time_s: Optional[List[float]]  # [min, max] pause between messages, None = closed loop
    window_s: float
    offered_per_s: float                 # messages meant to be sent per second in the window
    throughput_per_s: float              # successful replies per second in the window
    n: int                               # messages meant to be sent in the window
    errors: Dict[str, int]
    latency: Dict[str, float]            # service time, every message in the window (errors too)
    from_intended: Dict[str, float]      # from the intended send time
    ok_latency: Dict[str, float]         # successful messages only
    client_lag_p99_ms: float
    by_kind: Dict[str, Dict[str, float]] = field(default_factory=dict)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def to_dict(self) -> Dict:
        return asdict(self)


def summarize_phase(
    samples: Iterable[Sample],
    *,
    name: str,
    concurrency: int,
    think_time_s: Optional[Sequence[float]],
    window_start: float,
    window_end: float,
) -> PhaseStats:
    """Figures for the messages whose intended send time falls in [window_start, window_end).

    Every such message counts, failed ones too (a timeout counts with the time it took to
    give up), so errors can't make the percentiles look better; the errors are also
    counted by type. Throughput is successful replies that arrived within the window.
    """
    if window_end <= window_start:
        raise ValueError("the measurement window is empty")
    samples = list(samples)
    window = window_end - window_start
    inside = [s for s in samples if window_start <= s.intended < window_end]
    completed = [s for s in samples if s.ok and window_start <= s.done < window_end]
    errors = Counter(s.error for s in inside if not s.ok)
    by_kind = {
        kind: latency_summary([s.latency_ms for s in inside if s.kind == kind])
        for kind in sorted({s.kind for s in inside})
    }
    for kind, summary in by_kind.items():
        summary["errors"] = sum(1 for s in inside if s.kind == kind and not s.ok)
    return PhaseStats(
        name=name,
        concurrency=concurrency,
        think_time_s=list(think_time_s) if think_time_s else None,
        window_s=window,
        offered_per_s=len(inside) / window,
        throughput_per_s=len(completed) / window,
        n=len(inside),
        errors=dict(sorted(errors.items())),
        latency=latency_summary([s.latency_ms for s in inside]),
        from_intended=latency_summary([s.from_intended_ms for s in inside]),
        ok_latency=latency_summary([s.latency_ms for s in inside if s.ok]),
        client_lag_p99_ms=percentile([s.lag_ms for s in inside], 99),
        by_kind=by_kind,
    )


def saturation_peak(phases: Sequence[PhaseStats]) -> Optional[PhaseStats]:
    """The closed-loop phase with the highest throughput (the first of equals)."""
    closed = [p for p in phases if p.think_time_s is None]
    if not closed:
        return None
    return max(closed, key=lambda p: p.throughput_per_s)


def ratio(ours: Optional[float], default: Optional[float]) -> Optional[float]:
    """ours / default, or None when either is missing or the default is 0."""
    if ours is None or default is None or _missing(ours) or _missing(default) or default == 0:
        return None
    return ours / default


def _missing(value: Optional[float]) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt(value: Optional[float], digits: int = 0) -> str:
    """A number for the summary line; `na` when it wasn't measured."""
    if _missing(value):
        return "na"
    return f"{value:.{digits}f}"


def headline(
    realistic: Optional[PhaseStats],
    saturation: Sequence[PhaseStats],
    ready_s: Optional[float],
    rss_mb: Optional[float],
    train_s: Optional[float],
) -> Dict[str, Optional[float]]:
    """The figures the summary line and the report's first table are made of."""
    peak = saturation_peak(saturation)
    return {
        "p50_ms": realistic.latency["p50_ms"] if realistic else None,
        "p95_ms": realistic.latency["p95_ms"] if realistic else None,
        "p99_ms": realistic.latency["p99_ms"] if realistic else None,
        "realistic_errors": realistic.error_count if realistic else None,
        "max_msgs_per_s": peak.throughput_per_s if peak else None,
        "max_msgs_concurrency": peak.concurrency if peak else None,
        "p95_ms_at_max": peak.latency["p95_ms"] if peak else None,
        "ready_s": ready_s,
        "rss_mb": rss_mb,
        "train_s": train_s,
    }


def summary_line(ours: Dict[str, Optional[float]], default: Optional[Dict[str, Optional[float]]]) -> str:
    """The one line the benchmark ends with, in the issue's format."""
    default = default or {}
    return (
        f"p50_ms={fmt(ours.get('p50_ms'))} p95_ms={fmt(ours.get('p95_ms'))} "
        f"p99_ms={fmt(ours.get('p99_ms'))} (realistic load) "
        f"max_msgs_per_s={fmt(ours.get('max_msgs_per_s'), 1)} ready_s={fmt(ours.get('ready_s'), 1)} "
        f"rss_mb={fmt(ours.get('rss_mb'))} train_s={fmt(ours.get('train_s'))} "
        f"vs_default: p95_ratio={fmt(ratio(ours.get('p95_ms'), default.get('p95_ms')), 2)} "
        f"train_ratio={fmt(ratio(ours.get('train_s'), default.get('train_s')), 2)}"
    )
