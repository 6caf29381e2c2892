"""The load client: simulated patients talking to Rasa's REST channel, on asyncio + aiohttp.

Two models of load, both with a new sender id (uuid) per conversation:

- realistic: N patients, each waiting for the reply, then pausing (2 to 5 s) before the
  next message, as a person reading and typing does. The next message is scheduled at
  reply time + pause, and that schedule is kept: each sample records the intended send
  time as well as the actual one, so a client that falls behind shows up as lag
  (the report gives its p99) instead of silently lowering the load. This is the
  closed-per-user model chat traffic follows: a patient never sends while waiting for an
  answer, so an open-loop schedule that ignored replies would send messages no patient
  would. Its one blind spot: while the server is slow, waiting patients send less, so a
  stall weighs in once per waiting patient rather than once per message an open arrival
  schedule would have sent. With 2 to 5 s of think time and latency well below that,
  the effect is small, and it shows: the offered rate is N / (3.5 s + latency), and the
  report gives the rate actually offered next to the nominal N / 3.5 s.
- saturation: N conversations in a closed loop with no pauses (each sends its next
  message as soon as the reply arrives): the highest throughput the server reaches at
  that concurrency, and the latency there. A closed loop measures capacity, not the
  latency a patient would see at a given arrival rate; that is what the realistic phase is for.

Each phase has a ramp (not measured) and a measurement window; a message counts in the
window of its intended send time. At the end the client waits for every message in
flight (up to the request timeout), so nothing slow is dropped from the figures.
"""
from __future__ import annotations

import asyncio
import random
import sys
import time
import uuid
from dataclasses import dataclass
from typing import List, Optional, Tuple

import aiohttp
from tqdm import tqdm

from scripts.bench.conversations import Corpus, Turn
from scripts.bench.stats import Sample, percentile


@dataclass
class Phase:
    name: str
    users: int
    think_time_s: Optional[Tuple[float, float]]  # None: closed loop, no pause
    ramp_s: float
    duration_s: float


@dataclass
class PhaseRun:
    phase: Phase
    samples: List[Sample]
    window_start: float
    window_end: float
    sent_texts: List[Tuple[str, str, str]]  # (sender, kind, text), to check what the server did


def has_reply(body: object) -> bool:
    """A usable reply: a non-empty list of bot messages, at least one with content."""
    return isinstance(body, list) and any(
        isinstance(m, dict) and (m.get("text") or m.get("custom") or m.get("image") or m.get("buttons"))
        for m in body
    )


async def send(session: aiohttp.ClientSession, url: str, sender: str, turn: Turn,
               intended: float, timeout_s: float) -> Sample:
    sent = time.perf_counter()
    error: Optional[str] = None
    try:
        async with session.post(url, json={"sender": sender, "message": turn.text},
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            if response.status != 200:
                await response.read()
                error = f"http_{response.status}"
            else:
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
                if not has_reply(body):
                    error = "empty_reply"
    except asyncio.TimeoutError:
        error = "timeout"
    except aiohttp.ClientError as exc:
        error = f"connection_{type(exc).__name__}"
    return Sample(kind=turn.kind, intended=intended, sent=sent, done=time.perf_counter(), error=error)


async def _sleep_until(moment: float) -> None:
    delay = moment - time.perf_counter()
    await asyncio.sleep(delay if delay > 0 else 0)


async def run_phase(url: str, phase: Phase, corpus: Corpus, *, seed: int, timeout_s: float,
                    label: str, progress: bool = True) -> PhaseRun:
    """Run one phase against the REST webhook at `url`."""
    samples: List[Sample] = []
    sent_texts: List[Tuple[str, str, str]] = []
    start = time.perf_counter()
    window_start = start + phase.ramp_s
    end = window_start + phase.duration_s

    async def patient(index: int, session: aiohttp.ClientSession) -> None:
        rng = random.Random(seed * 1000 + index)
        if phase.think_time_s:  # arrivals spread over one pause, as patients don't all start at once
            next_at = start + rng.uniform(0, phase.think_time_s[1])
        else:
            next_at = start + rng.uniform(0, min(1.0, phase.ramp_s))
        while next_at < end:
            sender = f"bench-{phase.name}-{uuid.uuid4().hex}"
            for turn in corpus.conversation(rng):
                if next_at >= end:
                    return
                await _sleep_until(next_at)
                sent_texts.append((sender, turn.kind, turn.text))
                sample = await send(session, url, sender, turn, next_at, timeout_s)
                samples.append(sample)
                next_at = sample.done + (rng.uniform(*phase.think_time_s) if phase.think_time_s else 0.0)
            # the patient's slot is taken by a new patient (a new sender id) after the pause

    async def ticker(bar: tqdm) -> None:
        while True:
            await asyncio.sleep(0.5)
            elapsed = min(time.perf_counter() - start, phase.ramp_s + phase.duration_s)
            bar.n = round(elapsed, 1)
            recent = [s.latency_ms for s in samples[-300:]]
            bar.set_postfix(msgs=len(samples), errors=sum(1 for s in samples if not s.ok),
                            p95_ms=f"{percentile(recent, 95):.0f}" if recent else "-", refresh=False)
            bar.refresh()

    connector = aiohttp.TCPConnector(limit=0)
    bar = tqdm(total=phase.ramp_s + phase.duration_s, desc=label, unit="s", file=sys.stderr,
               disable=not progress, bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s {postfix}")
    async with aiohttp.ClientSession(connector=connector) as session:
        tick = asyncio.create_task(ticker(bar))
        try:
            await asyncio.gather(*(patient(i, session) for i in range(phase.users)))
        finally:
            tick.cancel()
            bar.n = bar.total
            bar.refresh()
            bar.close()
    return PhaseRun(phase, samples, window_start, end, sent_texts)


async def warm_up(url: str, corpus: Corpus, messages: int, timeout_s: float) -> List[Sample]:
    """A few messages, one at a time, before measuring (not counted): the first calls
    through a freshly loaded model are slower (graph tracing, lazy imports)."""
    rng = random.Random(0)
    samples: List[Sample] = []
    async with aiohttp.ClientSession() as session:
        while len(samples) < messages:
            sender = f"bench-warmup-{uuid.uuid4().hex}"
            for turn in corpus.conversation(rng)[: messages - len(samples)]:
                samples.append(await send(session, url, sender, turn, time.perf_counter(), timeout_s))
    return samples

