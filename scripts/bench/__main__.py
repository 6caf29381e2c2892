"""`make bench`: how fast and how big the assistant is, against Rasa's default pipeline.

    python -m scripts.bench                 # the full run (about 1¾ hours on 2 cores, most of it
                                            # training: both pipelines, full and NLU only)
    BENCH_QUICK=1 python -m scripts.bench   # a few minutes: short phases, few conversations,
                                            # trained models reused when there are any

Every option can also be set from the environment (BENCH_<OPTION>, e.g. BENCH_RASA_PORT);
see --help. Writes reports/bench.md, reports/bench.json and reports/bench_latency.png
(logs in var/bench/logs/) and ends with one summary line on standard output.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from scripts.bench import profile as profiling
from scripts.bench import report
from scripts.bench.conversations import Corpus
from scripts.bench.load import Phase, PhaseRun, run_phase, warm_up
from scripts.bench.outcomes import outcomes
from scripts.bench.servers import BIN, ServerError, Stack, machine_busy_s
from scripts.bench.stats import PhaseStats, headline, summarize_phase, summary_line
from scripts.bench.train import CACHE, TrainingError, cached_model, train
from scripts.ensure_model import PROJECT
from scripts.ensure_model import model_path as current_model_path

LOGS = PROJECT / "var/bench/logs"


def _env(name: str, default: str) -> str:
    return os.environ.get(f"BENCH_{name}", default)


def _flag(name: str) -> bool:
    return _env(name, "").lower() in ("1", "true", "yes", "on")


def _path_env(name: str) -> Optional[Path]:
    value = _env(name, "")
    return Path(value) if value else None


def _floats(text: str) -> Tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


# Defaults that depend on the run: (full run, quick run); BENCH_<NAME> overrides both.
SIZES = {
    "users": ("50", "4"),
    "ramp": ("15", "5"),
    "duration": ("60", "15"),
    "levels": ("1,10,50", "1,4"),
    "saturation_ramp": ("5", "2"),
    "saturation_duration": ("30", "8"),
    "warmup": ("20", "4"),
}
SIZE_TYPES = {"users": int, "warmup": int, "levels": _floats}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", default=_flag("QUICK"),
                        help="short phases and few conversations; reuse trained models (BENCH_QUICK=1)")
    parser.add_argument("--train", choices=("auto", "yes", "no"), default=_env("TRAIN", "auto"),
                        help="time the trainings: auto = yes in a full run, and in a quick run only for a "
                             "pipeline with no trained model to reuse (BENCH_TRAIN)")
    parser.add_argument("--profile", action="store_true", default=_flag("PROFILE"),
                        help="after the measured phases, profile the Rasa server with py-spy during an extra "
                             "closed-loop phase (BENCH_PROFILE=1)")
    parser.add_argument("--config", type=Path, default=Path(_env("CONFIG", str(PROJECT / "config.yml"))),
                        help="our configuration (BENCH_CONFIG)")
    parser.add_argument("--default-config", type=Path,
                        default=Path(_env("DEFAULT_CONFIG", str(PROJECT / "scripts/default_config.yml"))),
                        help="Rasa's default pipeline (BENCH_DEFAULT_CONFIG)")
    parser.add_argument("--model", type=Path, default=_path_env("MODEL"),
                        help="a trained model of our config to load instead of training or reusing one (BENCH_MODEL)")
    parser.add_argument("--default-model", type=Path, default=_path_env("DEFAULT_MODEL"),
                        help="the same for the default pipeline (BENCH_DEFAULT_MODEL)")
    parser.add_argument("--pipelines", default=_env("PIPELINES", "ours,default"),
                        help="which to measure, of ours,default (BENCH_PIPELINES)")
    parser.add_argument("--rasa-port", type=int, default=int(_env("RASA_PORT", "5105")),
                        help="BENCH_RASA_PORT, 5105 (make run uses 5005)")
    parser.add_argument("--actions-port", type=int, default=int(_env("ACTIONS_PORT", "5155")),
                        help="BENCH_ACTIONS_PORT, 5155 (make run uses 5055)")
    parser.add_argument("--users", type=int, help="patients in the realistic phase: 50, quick 4 (BENCH_USERS)")
    parser.add_argument("--think-time", type=_floats, default=_floats(_env("THINK_TIME", "2,5")),
                        help="a patient's pause between a reply and the next message, min,max s (BENCH_THINK_TIME)")
    parser.add_argument("--ramp", type=float, help="seconds of realistic load before measuring: 15, quick 5")
    parser.add_argument("--duration", type=float, help="seconds of realistic load measured: 60, quick 15")
    parser.add_argument("--levels", type=_floats,
                        help="concurrent conversations of the closed-loop phases: 1,10,50, quick 1,4")
    parser.add_argument("--saturation-ramp", type=float, help="seconds before measuring: 5, quick 2")
    parser.add_argument("--saturation-duration", type=float, help="seconds measured per level: 30, quick 8")
    parser.add_argument("--warmup", type=int, help="messages sent before measuring, not counted: 20, quick 4")
    parser.add_argument("--timeout", type=float, default=float(_env("TIMEOUT", "30")),
                        help="seconds before a request counts as timed out (BENCH_TIMEOUT)")
    parser.add_argument("--seed", type=int, default=int(_env("SEED", "1")), help="BENCH_SEED")
    parser.add_argument("--out", type=Path, default=Path(_env("OUT", str(PROJECT / "reports"))),
                        help="where the report goes (BENCH_OUT)")
    parser.add_argument("--no-progress", action="store_true", default=_flag("NO_PROGRESS"),
                        help="no progress bars (BENCH_NO_PROGRESS=1)")
    options = parser.parse_args(argv)
    for name, (full, quick) in SIZES.items():
        if getattr(options, name) is None:
            text = _env(name.upper(), quick if options.quick else full)
            setattr(options, name, SIZE_TYPES.get(name, float)(text))
    options.pipelines = [p.strip() for p in options.pipelines.split(",") if p.strip()]
    unknown = set(options.pipelines) - {"ours", "default"}
    if unknown or not options.pipelines:
        parser.error(f"--pipelines takes ours and/or default, not {','.join(sorted(unknown)) or 'nothing'}")
    if len(options.think_time) != 2 or not 0 <= options.think_time[0] <= options.think_time[1]:
        parser.error("--think-time takes min,max seconds")
    options.levels = [int(level) for level in options.levels]
    return options


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def git_version() -> str:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=PROJECT, capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" (with uncommitted changes)" if git("status", "--porcelain") else "")


def prepare_model(label: str, config: Path, options: argparse.Namespace) -> Tuple[Path, str, Dict]:
    """The model to load, where it came from, and the training times if they were taken now."""
    given = options.model if label == "ours" else options.default_model
    if given and not given.exists():
        raise TrainingError(f"no model at {given}")
    cache = cached_model(label, config)
    reusable = given or next((m for m in (
        current_model_path() if label == "ours" and config.resolve() == (PROJECT / "config.yml").resolve() else None,
        cache) if m and m.exists()), None)
    timed = options.train == "yes" or (options.train == "auto" and not options.quick and not given)
    if not timed and not reusable:
        if options.train == "no":
            raise TrainingError(f"no trained model of {config} to reuse; give one with --model/--default-model "
                                "or let the benchmark train (--train auto or yes)")
        say(f"{label}: no trained model of {config} to reuse; training it (minutes)")
        timed = True
    if not timed:
        return reusable, "given" if given else "reused; training not timed in this run", {}
    training = {}
    for kind in ("full", "nlu"):
        say(f"{label}: timing `rasa train{' nlu' if kind == 'nlu' else ''}` with {config} (log in {_relative(LOGS)})")
        training[kind] = train(label, config, kind, LOGS, keep_as=cache if kind == "full" else None,
                               progress=not options.no_progress).to_dict()
        say(f"{label}: {kind} training took {training[kind]['wall_s']:.0f} s ({training[kind]['cpu_s']:.0f} CPU s)")
    for old in CACHE.glob(f"{label}-*.tar.gz"):  # one cached model per pipeline
        if old != cache:
            old.unlink()
    return (given, "given; training timed separately", training) if given else (cache, "trained in this run", training)


def phases(options: argparse.Namespace) -> List[Phase]:
    return [Phase("realistic", options.users, tuple(options.think_time), options.ramp, options.duration)] + [
        Phase(f"closed-{level}", level, None, options.saturation_ramp, options.saturation_duration)
        for level in options.levels
    ]


def measure_phase(stack: Stack, phase: Phase, corpus: Corpus, options: argparse.Namespace,
                  seed: int) -> Tuple[PhaseStats, Dict, PhaseRun]:
    """Run one phase; its figures, with the CPU each side used."""
    servers_before, busy_before = stack.cpu_s(), machine_busy_s()
    client_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    run = asyncio.run(run_phase(stack.webhook_url, phase, corpus, seed=seed, timeout_s=options.timeout,
                                label=f"{stack.label} {phase.name}", progress=not options.no_progress))
    wall = time.perf_counter() - started
    client_after = resource.getrusage(resource.RUSAGE_SELF)
    servers_after, busy_after = stack.cpu_s(), machine_busy_s()
    stats = summarize_phase(run.samples, name=phase.name, concurrency=phase.users,
                            think_time_s=phase.think_time_s, window_start=run.window_start,
                            window_end=run.window_end)
    server_cpu = {name: servers_after.get(name, 0.0) - servers_before.get(name, 0.0) for name in servers_before}
    client_cpu = (client_after.ru_utime + client_after.ru_stime) - (client_before.ru_utime + client_before.ru_stime)
    messages = max(len(run.samples), 1)
    other = (busy_after - busy_before) - sum(server_cpu.values()) - client_cpu
    cpu = {
        "wall_s": wall,
        "messages": len(run.samples),
        "rasa_s": server_cpu.get("rasa"),
        "actions_s": server_cpu.get("actions"),
        "client_s": client_cpu,
        "rasa_ms_per_msg": server_cpu.get("rasa", 0.0) * 1000 / messages,
        "actions_ms_per_msg": server_cpu.get("actions", 0.0) * 1000 / messages,
        "other_cores": max(other, 0.0) / wall,
    }
    return stats, cpu, run


def run_profile(stack: Stack, corpus: Corpus, options: argparse.Namespace) -> Dict:
    """py-spy on the Rasa server during an extra closed-loop phase at 10 conversations (not counted)."""
    pyspy = profiling.find_pyspy(f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if not pyspy:
        return {"note": f"skipped: py-spy is not installed (`.venv/bin/pip install {profiling.PYSPY_PIN}`)"}
    phase = Phase("profile", 10, None, options.saturation_ramp, options.saturation_duration)
    options.out.mkdir(parents=True, exist_ok=True)
    stacks = options.out / f"bench_profile_{stack.label}.txt"
    log = LOGS / f"{stack.label}-py-spy.log"
    spy = profiling.start(pyspy, stack.rasa.pid, math.ceil(phase.ramp_s + phase.duration_s), stacks, log)
    try:
        asyncio.run(run_phase(stack.webhook_url, phase, corpus, seed=options.seed + 99, timeout_s=options.timeout,
                              label=f"{stack.label} profile (py-spy)", progress=not options.no_progress))
        spy.wait(timeout=120)
    finally:
        if spy.poll() is None:
            spy.terminate()
            spy.wait()
    if spy.returncode != 0 or not stacks.exists():
        return {"note": f"py-spy failed ({spy.returncode}); see {_relative(log)}"}
    with open(stacks) as lines:
        summary = profiling.top_functions(lines)
    return dict(summary, note=f"{phase.users} concurrent conversations, closed loop, "
                              f"{phase.ramp_s + phase.duration_s:.0f} s; stacks in `{stacks.name}`")


def measure(label: str, model: Path, options: argparse.Namespace, corpus: Corpus) -> Tuple[Dict, List[PhaseStats]]:
    """Start the servers for one model, run every phase, stop them."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{label}-"))
    stack = Stack(label, model, workdir, LOGS, options.rasa_port, options.actions_port)
    result: Dict = {}
    try:
        say(f"{label}: starting the action server and Rasa with {model.name}")
        result["ready"] = stack.start()
        say(f"{label}: ready after {result['ready']['both']:.1f} s")
        warm = asyncio.run(warm_up(stack.webhook_url, corpus, options.warmup, options.timeout))
        first_ok = next((s for s in warm if s.ok), None)
        result["first_reply_s"] = (first_ok.done - stack.started) if first_ok else math.nan
        result["warmup"] = {"messages": len(warm), "errors": sum(1 for s in warm if not s.ok)}
        result["phases"], measured, sent = [], [], []
        for index, phase in enumerate(phases(options)):
            stats, cpu, run = measure_phase(stack, phase, corpus, options, seed=options.seed + index)
            measured.append(stats)
            result["phases"].append(dict(stats.to_dict(), cpu=cpu))
            sent += run.sent_texts
            say(f"{label} {phase.name}: {stats.throughput_per_s:.1f} msgs/s, p50 {stats.latency['p50_ms']:.0f} ms, "
                f"p95 {stats.latency['p95_ms']:.0f} ms, p99 {stats.latency['p99_ms']:.0f} ms, "
                f"{stats.error_count} errors of {stats.n}")
        if options.profile and label == "ours":
            result["profile"] = run_profile(stack, corpus, options)
    finally:
        stack.stop()
    result["memory"] = stack.memory()
    result["outcomes"] = outcomes(stack.tracker_db, sent)
    shutil.rmtree(workdir, ignore_errors=True)
    return result, measured


def _nan_to_none(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


def main(argv: Optional[List[str]] = None) -> int:
    options = parse_args(argv)
    # SIGTERM (a timeout, a CI runner) stops the run like Ctrl-C does, so the servers and
    # trainings it started are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    import rasa

    meta = {
        "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": options.quick, "git": git_version(), "rasa": rasa.__version__,
        "python": platform.python_version(), "cpus": os.cpu_count(), "loadavg_start": os.getloadavg()[0],
        "rasa_port": options.rasa_port, "actions_port": options.actions_port, "users": options.users,
        "think_min": options.think_time[0], "think_max": options.think_time[1], "ramp": options.ramp,
        "think_mean": sum(options.think_time) / 2,
        "nominal_rate": options.users / max(sum(options.think_time) / 2, 1e-9),
        "duration": options.duration, "levels": ", ".join(map(str, options.levels)),
        "sat_ramp": options.saturation_ramp, "sat_duration": options.saturation_duration,
        "timeout": options.timeout, "seed": options.seed,
    }
    if meta["loadavg_start"] > report.START_LOAD:
        say(f"load average {meta['loadavg_start']:.2f} (a training just before counts too); other processes' "
            "CPU is measured in every phase, and the report flags a busy one")
    corpus = Corpus()
    configs = {"ours": options.config, "default": options.default_config}
    pipelines: Dict[str, Dict] = {}
    try:
        models = {label: prepare_model(label, configs[label], options) for label in options.pipelines}
        for label in options.pipelines:
            model, source, training = models[label]
            result, measured = measure(label, model, options, corpus)
            result["headline"] = pipeline_headline(measured, result, training)
            result.update(config=_relative(configs[label]), model=_relative(model), model_source=source,
                          training=training,
                          realistic=next((p for p in result["phases"] if p["name"] == "realistic"), None))
            pipelines[label] = result
    except (ServerError, TrainingError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    meta["loadavg_end"] = os.getloadavg()[0]
    line = summary_line(pipelines.get("ours", {}).get("headline", {}),
                        pipelines.get("default", {}).get("headline"))
    result = _nan_to_none({"meta": meta, "pipelines": pipelines, "summary_line": line})
    paths = report.write(result, options.out)
    say("report: " + ", ".join(str(_relative(p)) for p in paths.values()))
    print(line, flush=True)
    return 0


def pipeline_headline(measured: List[PhaseStats], result: Dict, training: Dict) -> Dict:
    """The summary figures of one pipeline."""
    realistic = next((p for p in measured if p.think_time_s is not None), None)
    figures = headline(realistic, [p for p in measured if p.think_time_s is None],
                       ready_s=result["ready"]["both"], rss_mb=result["memory"]["rasa"]["peak_mb"],
                       train_s=training["full"]["wall_s"] if training else None)
    figures.update(
        offered_per_s=realistic.offered_per_s if realistic else None,
        actions_rss_mb=result["memory"]["actions"]["peak_mb"],
        train_nlu_s=training["nlu"]["wall_s"] if training else None,
    )
    return figures


def _relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(PROJECT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
