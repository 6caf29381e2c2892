"""Optional profiling (BENCH_PROFILE=1): py-spy samples the Rasa server under load.

py-spy attaches to the running server from outside (no code change, little overhead) and
records its Python stacks 100 times a second, leaving idle threads out, so the samples show
where CPU time goes. The stacks are kept as collapsed text
(reports/bench_profile_<pipeline>.txt; flamegraph.pl or inferno draw them as a flame
graph) and summed here into the functions that take the most time.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, List, Optional

PYSPY_PIN = "py-spy==0.4.3"
_LINE = re.compile(r":\d+\)$")


def find_pyspy(search_path: str) -> Optional[str]:
    return shutil.which("py-spy", path=search_path)


def start(pyspy: str, pid: int, seconds: int, output: Path, log: Path) -> subprocess.Popen:
    """Record `pid` for `seconds` into `output` (collapsed stacks)."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [pyspy, "record", "--pid", str(pid), "--rate", "100", "--format", "raw",
             "--output", str(output), "--duration", str(seconds)],
            stdout=out, stderr=subprocess.STDOUT)


def function_of(frame: str) -> str:
    """'iterencode (json/encoder.py:257)' -> 'iterencode (json/encoder.py)'."""
    return _LINE.sub(")", frame.strip())


def top_functions(lines: Iterable[str], top: int = 15, trunk: float = 0.95) -> Dict[str, object]:
    """The functions with the most samples: on top of the stack (own time) and anywhere in
    it (own time plus what they call), each with its share of all samples. The inclusive
    list leaves out the trunk, the functions on at least `trunk` of all stacks (the event
    loop, the server, the request handler), which would otherwise fill it."""
    own: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [function_of(f) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        total += samples
        own[frames[-1]] += samples
        for function in dict.fromkeys(frames):  # once per stack, in stack order (ties stay stable)
            inclusive[function] += samples

    def ranked(counter: Counter) -> List[Dict[str, object]]:
        return [{"function": f, "samples": n, "share": n / total} for f, n in counter.most_common(top)]

    branches = Counter({f: n for f, n in inclusive.items() if n < trunk * total})
    return {"samples": total, "own": ranked(own), "inclusive": ranked(branches)}
