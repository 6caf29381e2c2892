"""The steps of `make eval`: train, test on the held-out set, cross-validate, report.

Options come from the environment (so `make eval FOLDS=3` works) or the command line:

    FOLDS=5                  cross-validation folds
    EVAL_SKIP_CV=1           held-out set only (a cross-validation of unchanged inputs
                             from an earlier run is still reported)
    EVAL_CV_ALL=1            cross-validate the compared configs too, not only ours (the
                             default pipeline's 5 folds take about 3 hours on 2 cores)
    EVAL_SKIP_DEFAULT=1      our config only, no comparison with Rasa's default pipeline
    EVAL_FORCE=1             retrain and re-run cross-validation even when inputs are unchanged
    EVAL_CONFIG=config.yml   our config
    EVAL_DEFAULT_CONFIG=scripts/default_config.yml
    EVAL_EXTRA_CONFIGS=name=path,...   more configs to compare (e.g. a tuning candidate)
    EVAL_NLU=data/nlu        training data
    EVAL_HELDOUT=tests/nlu/heldout.yml
    EVAL_OUT=reports         where eval.md, eval.json and eval/*.png go
    EVAL_WORK=results/eval   models, Rasa's outputs and logs
    EVAL_NO_README=1         don't update the README's block of headline figures

What a run compares: every config on the held-out set (trained on the same data), and
ours cross-validated as well. The default pipeline trains for about 40 minutes on 2 cores
(DIETClassifier and ResponseSelector, 100 epochs each, on char n-grams), so its 5-fold
cross-validation is opt-in (EVAL_CV_ALL=1); one from an earlier run on unchanged inputs is
reported. A model needs no training when one exists for unchanged inputs: our own earlier
one in EVAL_WORK, or the full model `make bench` trained and kept in var/bench/models/
(same config, same data; its NLU part is what is evaluated).

The README's block (between ``<!-- make-eval:start -->`` and ``<!-- make-eval:end -->``)
is only rewritten by a complete run (every config on the held-out set, ours
cross-validated, the default among the configs) that writes to reports/.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from scripts.evaluate import metrics, render

PROJECT = Path(__file__).resolve().parents[2]
RASA = Path(sys.executable).parent / "rasa"
# Inputs of a trained model besides the config and the training data: the custom
# components and the knowledge they load at training time.
CODE_INPUTS = ["components", "knowledge", "common"]
SUFFIXES = {".yml", ".yaml", ".py", ".txt", ".json"}
RASA_LOG_LEVEL = os.environ.get("LOG_LEVEL") or "INFO"  # configure_logging_and_warnings changes the variable
HEARTBEAT_SECONDS = float(os.environ.get("EVAL_HEARTBEAT", "60"))
IMAGES = {"intent confusion matrix": "intent_confusion_matrix.png",
          "response selection confusion matrix": "response_selection_confusion_matrix.png"}
IMAGE_SUFFIX = {"intent confusion matrix": "intent_confusion", "response selection confusion matrix": "rs_confusion"}


# --- progress ------------------------------------------------------------------

class Progress:
    def __init__(self) -> None:
        self.started = time.monotonic()

    @staticmethod
    def duration(seconds: float) -> str:
        minutes, secs = divmod(int(seconds), 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"

    def say(self, message: str) -> None:
        print(f"[{self.duration(time.monotonic() - self.started)}] {message}", flush=True)


class LogWatcher:
    """Follows a Rasa log: which fold, which component, how far its epochs are."""

    EPOCHS = re.compile(r"Epochs:\s*(\d+)%[^|]*\|[^|]*\|\s*(\d+/\d+)")
    COMPONENT = re.compile(r"Starting to train component '([^']+)'")

    def __init__(self, path: Path) -> None:
        self.path, self.position = path, 0
        self.folds = 0
        self.component: Optional[str] = None
        self.epochs: Optional[str] = None
        self.predicting = False

    def poll(self) -> str:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.position)
                chunk = handle.read().decode("utf-8", "replace")
                self.position = handle.tell()
        except OSError:
            return ""
        for piece in re.split(r"[\r\n]+", chunk):
            started = self.COMPONENT.search(piece)
            if started:
                if self.folds == 0 or self.predicting:  # the first training, or the one after a fold's predictions
                    self.folds += 1
                self.component, self.epochs, self.predicting = started.group(1), None, False
            epochs = self.EPOCHS.search(piece)
            if epochs:
                self.epochs = f"epochs {epochs.group(1)}% ({epochs.group(2)})"
            if "Running model for predictions" in piece:
                self.predicting = True
        if self.predicting:
            state = "predicting"
        elif self.component:
            state = f"training {self.component}" + (f", {self.epochs}" if self.epochs else "")
        else:
            state = "starting"
        return state


def quiet_rasa_logging() -> None:
    """Rasa's warnings only, in this process (its debug log would print every parse).
    The Rasa commands run as subprocesses keep logging at INFO, which LogWatcher reads."""
    import logging

    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    configure_logging_and_warnings(logging.WARNING)
    configure_structlog(logging.WARNING)


def run_logged(progress: Progress, command: Sequence[str], log: Path, folds: Optional[int] = None) -> float:
    """Runs a command with its output in ``log``, printing a heartbeat; returns seconds."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "TF_CPP_MIN_LOG_LEVEL": "2",
           "LOG_LEVEL": RASA_LOG_LEVEL}
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    started = time.monotonic()
    watcher = LogWatcher(log)
    with log.open("wb") as out:
        process = subprocess.Popen(list(command), cwd=PROJECT, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            while True:
                try:
                    process.wait(timeout=HEARTBEAT_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    state = watcher.poll()
                    fold = f"fold {max(watcher.folds, 1)}/{folds}, " if folds else ""
                    progress.say(f"  ... {Progress.duration(time.monotonic() - started)}: {fold}{state}")
        except BaseException:
            process.terminate()
            process.wait()
            raise
    seconds = time.monotonic() - started
    if process.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").replace("\r", "\n").strip().splitlines()[-15:]
        raise RuntimeError(f"exit status {process.returncode}; log {log}:\n    " + "\n    ".join(tail))
    return seconds


# --- caching -------------------------------------------------------------------

def inputs_key(config: Path, nlu: Path, *extra: str) -> str:
    """A hash of everything a trained model depends on (and ``extra``, e.g. the folds)."""
    import rasa

    digest = hashlib.sha256(f"rasa=={rasa.__version__}\n".encode())
    digest.update(b"config\0" + config.read_bytes() + b"\0")
    files: List[Path] = []
    for root in [nlu, *(PROJECT / name for name in CODE_INPUTS)]:
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files += [p for p in sorted(root.rglob("*"))
                      if p.is_file() and p.suffix in SUFFIXES and "__pycache__" not in p.parts]
    for path in files:
        digest.update(str(path.resolve()).encode() + b"\0" + path.read_bytes() + b"\0")
    for item in extra:
        digest.update(item.encode() + b"\0")
    return digest.hexdigest()[:16]


def read_meta(folder: Path) -> Dict[str, Any]:
    try:
        return json.loads((folder / "eval-meta.json").read_text())
    except (OSError, ValueError):
        return {}


def write_meta(folder: Path, **meta: Any) -> None:
    (folder / "eval-meta.json").write_text(json.dumps(meta, indent=2))


# --- the steps -----------------------------------------------------------------

def bench_model(name: str, config: Path, settings: argparse.Namespace) -> Optional[Path]:
    """The full model `make bench` trained for this config on unchanged inputs, if it kept one.
    Only when the training data is the project's: the bench trains on data/."""
    if settings.nlu.resolve() != (PROJECT / "data/nlu").resolve():
        return None
    from scripts.bench.train import cached_model

    model = cached_model(name, config)
    return model if model.exists() else None


def train(progress: Progress, name: str, config: Path,
          settings: argparse.Namespace) -> Tuple[Path, Optional[float], Optional[str]]:
    """An NLU model for ``config``, its training seconds (None when not trained now or
    before), and where a reused model came from (None when trained in this run)."""
    folder = settings.work / name / "model"
    key = inputs_key(config, settings.nlu)
    model = folder / f"nlu-{key}.tar.gz"
    meta = read_meta(folder)
    if model.exists() and meta.get("key") == key and not settings.force:
        progress.say(f"{name}: NLU model for unchanged inputs reused ({rel(model)})")
        return model, meta.get("seconds"), "an earlier make eval"
    from_bench = None if settings.force else bench_model(name, config, settings)
    if from_bench:
        progress.say(f"{name}: make bench's full model for unchanged inputs reused ({rel(from_bench)})")
        return from_bench, None, "make bench (full model)"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    log = settings.work / name / "train.log"
    progress.say(f"{name}: training an NLU model with {rel(config)} on {rel(settings.nlu)} (log {rel(log)})")
    seconds = run_logged(progress, [str(RASA), "train", "nlu", "--config", str(config), "--nlu", str(settings.nlu),
                                    "--out", str(folder), "--fixed-model-name", model.name[: -len(".tar.gz")]], log)
    if not model.exists():
        raise RuntimeError(f"training wrote no model at {model}; see {log}")
    write_meta(folder, key=key, seconds=seconds, finished=now())
    progress.say(f"{name}: trained in {Progress.duration(seconds)}")
    return model, seconds, None


def rasa_test_heldout(progress: Progress, name: str, model: Path, settings: argparse.Namespace) -> Path:
    folder = settings.work / name / "heldout"
    shutil.rmtree(folder, ignore_errors=True)
    log = settings.work / name / "heldout.log"
    progress.say(f"{name}: rasa test nlu on {rel(settings.heldout)} (log {rel(log)})")
    seconds = run_logged(progress, [str(RASA), "test", "nlu", "--nlu", str(settings.heldout), "--model", str(model),
                                    "--out", str(folder)], log)
    progress.say(f"{name}: held-out reports in {Progress.duration(seconds)}")
    return folder


def load_gold(path: Path) -> List[Dict[str, Any]]:
    """The held-out messages with their intent and, for FAQ questions, their topic."""
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    return [
        {"text": m.get("text"), "gold_intent": m.get("intent"), "gold_key": m.get("intent_response_key")}
        for m in data.nlu_examples
        if m.get("text") and m.get("intent")
    ]


def count_examples(path: Path) -> int:
    from rasa.shared.nlu.training_data.loading import load_data

    return len(load_data(str(path)).nlu_examples)


def red_flag_items(path: Path) -> List[Tuple[str, bool]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [(item["text"], True) for item in data.get("positives") or []] + \
           [(text, False) for text in data.get("negatives") or []]


def parse_messages(progress: Progress, name: str, model: Path, gold: List[Dict[str, Any]],
                   red_flag_sets: Sequence[Path]) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """Every held-out and red-flag-set message through the model, as records; and the
    red-flag sets scored by scripts/eval_red_flags.py (which also checks the signs)."""
    from rasa.core.agent import Agent
    from scripts import eval_red_flags

    progress.say(f"{name}: parsing the held-out and red-flag messages with the model")
    quiet_rasa_logging()
    agent = Agent.load(str(model))
    loop = asyncio.new_event_loop()
    cache: Dict[str, Dict[str, Any]] = {}

    def parse(text: str) -> Dict[str, Any]:
        if text not in cache:
            cache[text] = loop.run_until_complete(agent.parse_message(text))
        return cache[text]

    try:
        records = [metrics.make_record(g["text"], parse(g["text"]), "heldout", g["gold_intent"], g["gold_key"])
                   for g in gold]
        strict: Dict[str, Any] = {}
        for path in red_flag_sets:
            records += [metrics.make_record(text, parse(text), path.name, gold_red_flag=positive)
                        for text, positive in red_flag_items(path)]
            result = eval_red_flags.evaluate(path, eval_red_flags.parse_detector(parse))
            strict[path.name] = {k: result[k] for k in ("positives", "negatives", "recall", "false_alarm_rate",
                                                        "per_sign_recall")}
    finally:
        loop.close()
    progress.say(f"{name}: parsed {len(cache)} distinct messages")
    return records, strict


def cross_validate(progress: Progress, name: str, config: Path, settings: argparse.Namespace,
                   run: bool) -> Optional[Tuple[Path, float, bool]]:
    folder = settings.work / name / "cv"
    key = inputs_key(config, settings.nlu, f"folds={settings.folds}")
    meta = read_meta(folder)
    if meta.get("key") == key and (folder / "intent_report.json").exists() and not settings.force:
        progress.say(f"{name}: cross-validation of unchanged inputs reused ({rel(folder)}, {meta.get('finished')})")
        return folder, meta.get("seconds"), True
    if not run:
        return None
    shutil.rmtree(folder, ignore_errors=True)
    log = settings.work / name / "cv.log"
    progress.say(f"{name}: {settings.folds}-fold cross-validation with {rel(config)} (log {rel(log)}); "
                 f"this takes long (ours about 20 to 30 min on 2 cores, the default pipeline about 3 hours)")
    seconds = run_logged(progress, [str(RASA), "test", "nlu", "--nlu", str(settings.nlu), "--config", str(config),
                                    "--cross-validation", "--folds", str(settings.folds), "--successes",
                                    "--out", str(folder)],
                         log, folds=settings.folds)
    write_meta(folder, key=key, seconds=seconds, finished=now())
    progress.say(f"{name}: cross-validation done in {Progress.duration(seconds)}")
    return folder, seconds, False


# --- results -------------------------------------------------------------------

def read_report(path: Path) -> Optional[Dict[str, Any]]:
    return json.loads(path.read_text()) if path.exists() else None


def rasa_reports(folder: Path) -> Dict[str, Any]:
    """Scores, weakest labels and per-label F1 from Rasa's intent and response-selection reports."""
    out: Dict[str, Any] = {}
    for part, filename, kind in (("intent", "intent_report.json", "intent"),
                                 ("response_selection", "response_selection_report.json", "topic")):
        report = read_report(folder / filename)
        if report is None:
            continue
        out[part] = metrics.report_scores(report)
        out[f"weakest_{kind}s"] = metrics.weakest(report)
        out[f"f1_by_{kind}"] = {label: row.get("f1-score") for label, row in metrics.label_rows(report).items()}
    return out


def threshold_sweep(folder: Path) -> Optional[List[Dict[str, Any]]]:
    """The answer-fallback threshold sweep over Rasa's pooled response-selection predictions."""
    selections: List[Dict[str, Any]] = []
    for filename in ("response_selection_successes.json", "response_selection_errors.json"):
        found = read_report(folder / filename)
        if found is None:
            return None
        selections += found
    return metrics.answer_threshold_sweep(selections)


def answer_fallback_threshold(config: Path) -> Optional[float]:
    """The ResponseSelectionFallback's threshold in a config, if it has one."""
    pipeline = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("pipeline") or []
    for component in pipeline:
        if str(component.get("name", "")).endswith("ResponseSelectionFallback"):
            return component.get("threshold")
    return None


def copy_images(folder: Path, name: str, part: str, settings: argparse.Namespace) -> Dict[str, str]:
    images = {}
    target_dir = settings.out / "eval"
    target_dir.mkdir(parents=True, exist_ok=True)
    for label, filename in IMAGES.items():
        source = folder / filename
        if source.exists():
            target = target_dir / f"{name}_{part}_{IMAGE_SUFFIX[label]}.png"
            shutil.copyfile(source, target)
            images[label] = f"eval/{target.name}"
    return images


def comparison_plot(results: Dict[str, Any], settings: argparse.Namespace) -> Optional[str]:
    """A bar chart of the headline figures, one bar per config."""
    with warnings.catch_warnings():  # matplotlib's pyparsing deprecation warnings
        warnings.simplefilter("ignore")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

    keys = [k for k in render.README_KEYS]
    names = results["order"]
    values = {n: [render.value(results["configs"][n], k) for k in keys] for n in names}
    if not any(v is not None for n in names for v in values[n]):
        return None
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        xs = [x + i * width for x in range(len(keys))]
        heights = [v if v is not None else 0 for v in values[name]]
        bars = ax.bar(xs, heights, width, label=name)
        for bar, v in zip(bars, values[name]):
            ax.annotate("–" if v is None else f"{v:.2f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=7)
    ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(keys))])
    ax.set_xticklabels([k.replace("_", "\n", 1) for k in keys], fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_title("make eval: headline figures (fallback and false alarms: lower is better)")
    ax.legend()
    fig.tight_layout()
    target = settings.out / "eval" / "comparison.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return f"eval/{target.name}"


def write_outputs(results: Dict[str, Any], settings: argparse.Namespace, final: bool) -> None:
    settings.out.mkdir(parents=True, exist_ok=True)
    if final:
        results["comparison_plot"] = comparison_plot(results, settings)
    tuning_log = settings.out / "tuning_log.md"
    text = tuning_log.read_text(encoding="utf-8") if tuning_log.exists() else ""
    (settings.out / "eval.md").write_text(render.render_report(results, text), encoding="utf-8")
    (settings.out / "eval.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")


def maybe_update_readme(results: Dict[str, Any], settings: argparse.Namespace, progress: Progress) -> None:
    configs = results["configs"]
    complete = "default" in configs and configs["ours"].get("cv") and all(c.get("heldout") for c in configs.values())
    if not complete or settings.out.resolve() != (PROJECT / "reports").resolve() or settings.no_readme:
        return
    readme = PROJECT / "README.md"
    updated = render.update_readme(readme.read_text(encoding="utf-8"), render.readme_block(results))
    if updated is None:
        progress.say(f"README.md has no {render.README_START} block; headline figures not copied there")
        return
    readme.write_text(updated, encoding="utf-8")
    progress.say("README.md: headline figures updated")


# --- helpers -------------------------------------------------------------------

def rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(PROJECT))
    except ValueError:
        return str(path)


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT,
                               capture_output=True, text=True).stdout.strip()
        return head + (" with uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    def path(value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else PROJECT / p

    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m scripts.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=int(env("FOLDS") or 5))
    parser.add_argument("--skip-cv", action="store_true", default=env_flag("EVAL_SKIP_CV"))
    parser.add_argument("--cv-all", action="store_true", default=env_flag("EVAL_CV_ALL"),
                        help="cross-validate every config, not only ours")
    parser.add_argument("--skip-default", action="store_true", default=env_flag("EVAL_SKIP_DEFAULT"))
    parser.add_argument("--force", action="store_true", default=env_flag("EVAL_FORCE"))
    parser.add_argument("--no-readme", action="store_true", default=env_flag("EVAL_NO_README"))
    parser.add_argument("--config", type=path, default=path(env("EVAL_CONFIG") or "config.yml"))
    parser.add_argument("--default-config", type=path,
                        default=path(env("EVAL_DEFAULT_CONFIG") or "scripts/default_config.yml"))
    parser.add_argument("--extra-configs", default=env("EVAL_EXTRA_CONFIGS") or "",
                        help="name=path,... more configs to compare")
    parser.add_argument("--nlu", type=path, default=path(env("EVAL_NLU") or "data/nlu"))
    parser.add_argument("--heldout", type=path, default=path(env("EVAL_HELDOUT") or "tests/nlu/heldout.yml"))
    parser.add_argument("--out", type=path, default=path(env("EVAL_OUT") or "reports"))
    parser.add_argument("--work", type=path, default=path(env("EVAL_WORK") or "results/eval"))
    settings = parser.parse_args(argv)
    if settings.folds < 2:
        parser.error("FOLDS must be at least 2")
    configs = [("ours", settings.config)]
    if not settings.skip_default:
        configs.append(("default", settings.default_config))
    for item in filter(None, (s.strip() for s in settings.extra_configs.split(","))):
        name, _, value = item.partition("=")
        if not value or not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name in ("ours", "default"):
            parser.error(f"EVAL_EXTRA_CONFIGS: expected name=path, got {item!r}")
        configs.append((name, path(value)))
    for _, config in configs:
        if not config.is_file():
            parser.error(f"no config at {config}")
    settings.configs = configs
    return settings


def main(argv: Sequence[str]) -> int:
    settings = parse_args(argv)
    os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    progress = Progress()
    from scripts import eval_red_flags

    red_flag_sets = list(eval_red_flags.EVAL_SETS)
    progress.say(f"make eval: configs {', '.join(f'{n}={rel(c)}' for n, c in settings.configs)}; "
                 f"held-out {rel(settings.heldout)}; "
                 + ("cross-validation skipped" if settings.skip_cv else
                    f"{settings.folds}-fold cross-validation of " + ("every config" if settings.cv_all else "ours")))
    gold = load_gold(settings.heldout)
    results: Dict[str, Any] = {
        "generated": now(),
        "commit": commit(),
        "folds": settings.folds,
        "training_data": rel(settings.nlu),
        "training_examples": count_examples(settings.nlu),
        "heldout_file": rel(settings.heldout),
        "heldout_messages": len(gold),
        "red_flag_sets": [rel(p) for p in red_flag_sets],
        "work": rel(settings.work),
        "order": [name for name, _ in settings.configs],
        "configs": {name: {"config": rel(config), "heldout": None, "cv": None, "status": {},
                           "answer_fallback_threshold": answer_fallback_threshold(config)}
                    for name, config in settings.configs},
    }
    for pattern in ("comparison.png", "*_heldout_*_confusion.png", "*_cv_*_confusion.png"):
        for stale in (settings.out / "eval").glob(pattern):
            stale.unlink()
    failed = False

    # Held-out set first: minutes, where cross-validation takes an hour or more.
    for name, config in settings.configs:
        entry = results["configs"][name]
        try:
            model, train_seconds, reused_from = train(progress, name, config, settings)
            folder = rasa_test_heldout(progress, name, model, settings)
            records, strict = parse_messages(progress, name, model, gold, red_flag_sets)
            (settings.work / name / "predictions.json").write_text(json.dumps(records, indent=1))
            entry["heldout"] = {
                **rasa_reports(folder),
                "summary": metrics.heldout_summary(records),
                "red_flags": metrics.red_flag_rates(records),
                "red_flag_sets_strict": strict,
                "train_seconds": train_seconds,
                "model_reused": reused_from,
                "images": copy_images(folder, name, "heldout", settings),
            }
            entry["status"]["heldout"] = f"model from {reused_from}" if reused_from else "done"
        except Exception as error:  # noqa: BLE001 - report it, go on with the others
            failed = True
            entry["status"]["heldout"] = f"failed: {str(error).splitlines()[0]}"
            progress.say(f"{name}: held-out evaluation FAILED: {error}")
    write_outputs(results, settings, final=False)
    progress.say(f"held-out figures written to {rel(settings.out / 'eval.md')}")

    for name, config in settings.configs:
        entry = results["configs"][name]
        try:
            done = cross_validate(progress, name, config, settings,
                                  run=not settings.skip_cv and (name == "ours" or settings.cv_all))
        except Exception as error:  # noqa: BLE001
            failed = True
            entry["status"]["cv"] = f"failed: {str(error).splitlines()[0]}"
            progress.say(f"{name}: cross-validation FAILED: {error}")
            continue
        if done is None:
            entry["status"]["cv"] = "skipped" if settings.skip_cv else "not run (EVAL_CV_ALL=1)"
            continue
        folder, seconds, cached = done
        entry["cv"] = {**rasa_reports(folder), "seconds": seconds, "reused": cached,
                       "answer_threshold_sweep": threshold_sweep(folder),
                       "images": copy_images(folder, name, "cv", settings)}
        entry["status"]["cv"] = "reused" if cached else "done"
        write_outputs(results, settings, final=False)

    write_outputs(results, settings, final=True)
    maybe_update_readme(results, settings, progress)
    progress.say(f"report: {rel(settings.out / 'eval.md')}, figures: {rel(settings.out / 'eval.json')}")
    print(render.summary_line(results), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
