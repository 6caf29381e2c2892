"""The benchmark's report: reports/bench.md, reports/bench.json and reports/bench_latency.png."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Dict, List, Optional

from scripts.bench.stats import ratio

# The targets (2 CPU cores, SQLite tracker store): (headline key, limit, "max"|"min").
TARGETS = {
    "p95_ms": (150.0, "max"),
    "max_msgs_per_s": (60.0, "min"),
    "ready_s": (30.0, "max"),
    "rss_mb": (1200.0, "max"),
    "train_s": (120.0, "max"),
}
ROWS = [  # (headline key, label, digits)
    ("p50_ms", "p50 per message, realistic load (ms)", 0),
    ("p95_ms", "p95 per message, realistic load (ms)", 0),
    ("p99_ms", "p99 per message, realistic load (ms)", 0),
    ("realistic_errors", "errors under realistic load", 0),
    ("offered_per_s", "offered load, realistic phase (msgs/s)", 1),
    ("max_msgs_per_s", "highest throughput, closed loop (msgs/s)", 1),
    ("max_msgs_concurrency", "... reached at concurrency", 0),
    ("p95_ms_at_max", "... p95 there (ms)", 0),
    ("ready_s", "start to ready (s)", 1),
    ("rss_mb", "Rasa server peak RSS (MB)", 0),
    ("actions_rss_mb", "action server peak RSS (MB)", 0),
    ("train_s", "full training (s)", 0),
    ("train_nlu_s", "NLU-only training (s)", 0),
]


def _num(value: Optional[float], digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,.{digits}f}"


def met(key: str, value: Optional[float], errors: Optional[int] = None) -> str:
    """yes/no against the issue's target ("–" when there is none or nothing was measured)."""
    if key not in TARGETS:
        return "–"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "not measured"
    limit, sense = TARGETS[key]
    ok = value <= limit if sense == "max" else value >= limit
    if key == "p95_ms" and errors:
        return f"no ({errors} errors)"
    return "yes" if ok else "no"


def target_text(key: str) -> str:
    if key not in TARGETS:
        return "–"
    limit, sense = TARGETS[key]
    return f"{'≤' if sense == 'max' else '≥'} {limit:,.0f}"


def phase_table(phases: List[Dict]) -> List[str]:
    lines = [
        "| phase | conversations | pause (s) | window (s) | offered msgs/s | throughput msgs/s | messages | errors "
        "| p50 ms | p95 ms | p99 ms | max ms | p95 from intended ms | client lag p99 ms | Rasa CPU ms/msg "
        "| action server CPU ms/msg | other processes (cores) |",
        "|---|---:|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in phases:
        errors = ", ".join(f"{k} {v}" for k, v in p["errors"].items()) or "0"
        pause = "–".join(f"{t:g}" for t in p["think_time_s"]) if p["think_time_s"] else "none"
        cpu = p.get("cpu", {})
        lines.append(
            f"| {p['name']} | {p['concurrency']} | {pause} | {p['window_s']:.0f} | {p['offered_per_s']:.1f} "
            f"| {p['throughput_per_s']:.1f} | {p['n']} | {errors} | {_num(p['latency']['p50_ms'])} "
            f"| {_num(p['latency']['p95_ms'])} | {_num(p['latency']['p99_ms'])} | {_num(p['latency']['max_ms'])} "
            f"| {_num(p['from_intended']['p95_ms'])} | {_num(p['client_lag_p99_ms'], 1)} "
            f"| {_num(cpu.get('rasa_ms_per_msg'))} | {_num(cpu.get('actions_ms_per_msg'))} "
            f"| {_num(cpu.get('other_cores'), 2)} |")
    return lines


def kind_table(pipelines: Dict[str, Dict]) -> List[str]:
    names = list(pipelines)
    lines = ["| kind | " + " | ".join(f"{n}: n | {n}: p50 ms | {n}: p95 ms | {n}: p99 ms | {n}: errors"
                                      for n in names) + " |",
             "|---|" + "---:|" * (5 * len(names))]
    kinds = sorted({k for p in pipelines.values() for k in (p.get("realistic") or {}).get("by_kind", {})})
    for kind in kinds:
        cells = []
        for name in names:
            s = (pipelines[name].get("realistic") or {}).get("by_kind", {}).get(kind)
            cells += ([str(s["n"]), _num(s["p50_ms"]), _num(s["p95_ms"]), _num(s["p99_ms"]), str(s["errors"])]
                      if s else ["–"] * 5)
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return lines


def outcome_table(outcomes: Dict[str, Dict]) -> List[str]:
    lines = ["| kind | sent | in the tracker | with an action-server call | intents (top 5) | actions after it (top 5) |",
             "|---|---:|---:|---:|---|---|"]
    for kind, o in outcomes.items():
        intents = ", ".join(f"{k} {v}" for k, v in o["intents"].items())
        actions = ", ".join(f"{k} {v}" for k, v in o["actions"].items())
        lines.append(f"| {kind} | {o['sent']} | {o['in_tracker']} | {o['action_server_turns']} "
                     f"| {intents} | {actions} |")
    return lines


def profile_section(profile: Dict) -> List[str]:
    lines = [f"Profile of the Rasa server (py-spy): {profile['note']}.", ""]
    if not profile.get("samples"):
        return lines
    lines += [f"{profile['samples']} samples. Own time is the function itself; inclusive adds what it calls "
              "(functions on 95% of the stacks or more, the server's loop and request handling, are left out).", "",
              "| own time | share | inclusive | share |", "|---|---:|---|---:|"]
    for own, inclusive in zip(profile["own"], profile["inclusive"]):
        lines.append(f"| `{own['function']}` | {own['share']:.1%} | `{inclusive['function']}` | {inclusive['share']:.1%} |")
    return lines + [""]


BUSY_CORES = 0.1  # other processes' cores in a measured phase above which the figures are flagged
START_LOAD = 0.5  # a load average at the start above which the report says what it counted


def busy_note(result: Dict) -> List[str]:
    """Whether other processes took CPU, judged by what was measured in the phases (the load
    average at the start also counts `make model`'s training, which `make bench` runs first)."""
    meta = result["meta"]
    others = [p["cpu"]["other_cores"] for r in result["pipelines"].values() for p in r.get("phases", [])
              if (p.get("cpu") or {}).get("other_cores") is not None]
    busiest = max(others) if others else None
    if busiest is not None and busiest > BUSY_CORES:
        return [f"**The machine was busy**: in a measured phase other processes used up to {busiest:.2f} of the "
                f"{meta['cpus']} cores, so latency and throughput are pessimistic (see each phase's last column).", ""]
    if meta["loadavg_start"] > START_LOAD:
        quiet = (f"in the measured phases other processes used at most {busiest:.2f} cores"
                 if busiest is not None else "no phase was measured")
        return [f"The load average at the start ({meta['loadavg_start']:.2f}) includes any training that "
                f"`make bench` ran first (`make model`); {quiet}.", ""]
    return []


def markdown(result: Dict) -> str:
    meta, pipelines = result["meta"], result["pipelines"]
    ours = pipelines.get("ours", {}).get("headline", {})
    default = pipelines.get("default", {}).get("headline", {})
    out: List[str] = ["# `make bench`: how fast and how big", ""]
    if meta["quick"]:
        out += ["> **Quick run** (`BENCH_QUICK=1`): short phases and few conversations, to check that the",
                "> benchmark works. These figures are not a measurement against the targets.", ""]
    out += [f"Run {meta['started']} on {meta['cpus']} CPUs, git {meta['git']}, Rasa {meta['rasa']}, "
            f"Python {meta['python']}; load average {meta['loadavg_start']:.2f} at the start and "
            f"{meta['loadavg_end']:.2f} at the end.", ""]
    out += busy_note(result)
    out += ["## Summary", "",
            "| | ours | Rasa default | ours / default | target | ours met |",
            "|---|---:|---:|---:|---|---|"]
    for key, label, digits in ROWS:
        r = ratio(ours.get(key), default.get(key))
        ratio_text = _num(r, 2) if key not in ("realistic_errors", "max_msgs_concurrency") else "–"
        out.append(f"| {label} | {_num(ours.get(key), digits)} | {_num(default.get(key), digits)} | {ratio_text} "
                   f"| {target_text(key)} | {met(key, ours.get(key), ours.get('realistic_errors'))} |")
    out += ["", "```", result["summary_line"], "```", ""]
    out += ["![Latency against load](bench_latency.png)", ""]
    for name, p in pipelines.items():
        out += [f"## {name}: `{p['config']}`", "",
                f"Model: `{p['model']}` ({p['model_source']}).", ""]
        if p.get("training"):
            out += ["| training | wall s | CPU s | log |", "|---|---:|---:|---|"]
            out += [f"| {t['kind']} | {t['wall_s']:.0f} | {t['cpu_s']:.0f} | `{t['log']}` |"
                    for t in p["training"].values()]
            out.append("")
        else:
            out += ["Training was not timed in this run (a trained model was reused).", ""]
        ready, memory = p["ready"], p["memory"]
        out += [f"Ready after {ready['both']:.1f} s (action server {ready['actions']:.1f} s, Rasa {ready['rasa']:.1f} s); "
                f"first reply {p['first_reply_s']:.1f} s after the start. "
                f"Peak RSS: Rasa {memory['rasa']['peak_mb']:.0f} MB ({memory['rasa']['processes']} process(es); "
                f"largest sampled {memory['rasa']['sampled_peak_mb']:.0f} MB), action server "
                f"{memory['actions']['peak_mb']:.0f} MB ({memory['actions']['processes']} process(es)). "
                f"Warm-up: {p['warmup']['messages']} messages, not counted ({p['warmup']['errors']} errors).", ""]
        out += phase_table(p["phases"]) + [""]
        if p.get("outcomes"):
            out += ["What the assistant did with each kind of message (from its tracker store, all phases):", ""]
            out += outcome_table(p["outcomes"]) + [""]
        if p.get("profile"):
            out += profile_section(p["profile"])
    out += ["## Latency by kind of message, realistic load", ""] + kind_table(pipelines) + [""]
    out += [METHOD.format(**meta)]
    return "\n".join(out) + "\n"


METHOD = """## How it is measured

- **The servers** are started as `make run` starts them (`scripts/run.sh`: `rasa run actions`,
  then `rasa run` with the REST channel, the token-protected API, `endpoints.yml` with its SQLite
  tracker store, `credentials.yml`, CORS), on ports {rasa_port} and {actions_port}, with the tracker
  database, outbox and notification log in a temporary folder. The chat page and review app are not
  started. Both pipelines are measured in the same run, one after the other, with the same scripts.
- **Conversations** (`scripts/bench/conversations.py`): each has a new sender id (uuid) and about
  6 turns: held-out FAQ questions (never trained on, so some fall back to the article search, as
  real ones do) and "tell me more"; the surgery checklist, started and answered with buttons or
  typed answers; fallback questions the FAQ has no answer for; greetings and thanks. The tables
  above show what the assistant did with each kind, read back from its tracker store.
- **Realistic load**: {users} patients, each waiting for the reply and then pausing {think_min:g} to
  {think_max:g} s before the next message (a new patient takes over when a conversation ends).
  The next send is scheduled at reply + pause and each sample keeps its intended send time; the
  client's lag behind that schedule (its p99 is in the table) shows whether the client kept up.
  This closed-per-patient model is how chat traffic behaves (a patient does not send while
  waiting), which is why it is used rather than an open arrival schedule. Its blind spot is
  coordinated omission's: while the server is slow, waiting patients send less, so a slow spell
  counts once per waiting patient. With pauses of seconds and latencies well below that, the
  effect is small, and it shows as an offered rate below the nominal {users} / {think_mean:g} s =
  {nominal_rate:.1f} msgs/s. {ramp:g} s ramp, then {duration:g} s measured.
- **Saturation**: {levels} conversations in a closed loop without pauses, {sat_ramp:g} s ramp and
  {sat_duration:g} s measured each. Throughput is successful replies per second in the window; the
  highest is reported with the latency at that concurrency.
- **Latency** is per message, request sent to reply received, over every message whose intended
  send time falls in the window, **failed ones included** (a timeout counts with the
  {timeout:g} s it took). Percentiles are nearest-rank (never interpolated). Errors (non-200, an
  empty reply, timeouts, connection errors) are counted by type; the p95 target counts as met only
  with no errors. The client runs on the same machine and shares its 2 cores.
- **Start to ready**: from starting the action server (Rasa is started right after it, as
  `run.sh` does) until the action server answers `/health` and Rasa `/status` with a model loaded.
- **Peak RSS**: the kernel's high-water mark (VmHWM) of each server's process plus its children's.
- **Training**: `rasa train` and `rasa train nlu`, from scratch (an empty Rasa cache), to a
  temporary folder; wall-clock seconds, start-up included.
"""


def plot(result: Dict, path: Path) -> None:
    """Left: latency percentiles against throughput (for the realistic phase, the load
    offered), one colour per pipeline, stars for the realistic phase. Right: the same
    closed-loop latencies against the number of concurrent conversations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig, (by_load, by_users) = plt.subplots(1, 2, figsize=(12, 6.5), gridspec_kw={"width_ratios": [3, 2]})
    colours = {"ours": "tab:blue", "default": "tab:orange"}
    styles = {"p50_ms": ":", "p95_ms": "-", "p99_ms": "--"}
    for name, p in result["pipelines"].items():
        colour = colours.get(name, "tab:gray")
        closed = sorted((ph for ph in p["phases"] if ph["think_time_s"] is None), key=lambda ph: ph["concurrency"])
        for key, style in styles.items():
            ys = [ph["latency"][key] for ph in closed]
            by_load.plot([ph["throughput_per_s"] for ph in closed], ys, style, marker="o", color=colour,
                         label=f"{name} {key[:3]}, closed loop")
            by_users.plot([ph["concurrency"] for ph in closed], ys, style, marker="o", color=colour)
        for ph in closed:
            by_load.annotate(str(ph["concurrency"]), (ph["throughput_per_s"], ph["latency"]["p95_ms"]),
                             textcoords="offset points", xytext=(5, 3), fontsize=8, color=colour)
        realistic = p.get("realistic")
        if realistic:
            for key, marker in (("p50_ms", "v"), ("p95_ms", "*"), ("p99_ms", "^")):
                by_load.plot([realistic["offered_per_s"]], [realistic["latency"][key]], marker, color=colour,
                             markersize=13 if key == "p95_ms" else 7, linestyle="none",
                             label=f"{name} {key[:3]}, realistic ({realistic['concurrency']} patients)")
    by_load.axhline(150, color="gray", linestyle="-.", linewidth=1, label="p95 target, 150 ms")
    by_load.axvline(60, color="gray", linestyle=(0, (1, 3)), linewidth=1, label="throughput target, 60 msgs/s")
    by_load.set_xlabel("messages per second: throughput (closed loop), offered load (realistic)")
    by_load.set_title("Latency against load (numbers: concurrent conversations)"
                      + (": QUICK RUN" if result["meta"]["quick"] else ""), fontsize=10)
    by_users.set_xscale("log")
    by_users.set_xlabel("concurrent conversations, closed loop (log scale)")
    by_users.set_title("Latency against concurrency", fontsize=10)
    levels = sorted({ph["concurrency"] for p in result["pipelines"].values() for ph in p["phases"]
                     if ph["think_time_s"] is None})
    by_users.set_xticks(levels)
    by_users.xaxis.set_major_formatter(ScalarFormatter())
    by_users.xaxis.set_minor_formatter(NullFormatter())
    for ax in (by_load, by_users):
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(ScalarFormatter())
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.set_ylabel("latency per message, ms (log scale)")
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = by_load.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.08 + 0.025 * math.ceil(len(labels) / 4), 1, 1))  # room for the legend
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(result: Dict, out_dir: Path) -> Dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out_dir / "bench.md", "json": out_dir / "bench.json", "plot": out_dir / "bench_latency.png"}
    paths["json"].write_text(json.dumps(result, indent=2, default=str) + "\n")
    plot(result, paths["plot"])
    paths["markdown"].write_text(markdown(result))
    return paths
