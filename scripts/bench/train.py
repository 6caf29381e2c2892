"""Training times, and the benchmark's own cache of trained models.

Each training is a real `rasa train` (full: NLU and dialogue) or `rasa train nlu` (NLU
only, what retraining after an NLU data change costs), run as `make model` runs it, with:
- a fresh, empty Rasa training cache (RASA_CACHE_DIRECTORY in a temporary folder), so
  no component is restored from an earlier training: the times are from scratch;
- the model written to a temporary folder with --fixed-model-name, never to models/.
Measured: wall-clock seconds of the command (Python and TensorFlow start-up included, as
a developer waits for them) and the CPU seconds it used.

A full training's model is kept in var/bench/models/, named after a hash of everything
that went into it (the config, data, domain, custom components, knowledge and the Rasa
version), so a quick run can reuse it instead of training again.
"""
from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

from tqdm import tqdm

from scripts.ensure_model import PROJECT, input_files

BIN = Path(sys.executable).parent
CACHE = PROJECT / "var/bench/models"


def model_hash(config: Path) -> str:
    """A hash of the model's inputs, with `config` instead of config.yml."""
    import rasa

    digest = hashlib.sha256(f"rasa=={rasa.__version__}\n".encode())
    digest.update(b"config\0" + config.read_bytes() + b"\0")
    for path in input_files():
        if path != PROJECT / "config.yml":
            digest.update(str(path.relative_to(PROJECT)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cached_model(label: str, config: Path) -> Path:
    return CACHE / f"{label}-{model_hash(config)}.tar.gz"


class TrainingError(RuntimeError):
    pass


@dataclass
class Training:
    kind: str          # "full" or "nlu"
    wall_s: float
    cpu_s: float
    log: str

    def to_dict(self) -> Dict[str, object]:
        return {"kind": self.kind, "wall_s": self.wall_s, "cpu_s": self.cpu_s, "log": self.log}


def _last_line(log: Path) -> str:
    """The end of the training's output, for the progress bar (Rasa redraws its own bars with \\r)."""
    try:
        with open(log, "rb") as handle:
            handle.seek(max(0, log.stat().st_size - 400))
            tail = handle.read().decode(errors="replace")
    except OSError:
        return ""
    parts = [p.strip() for p in tail.replace("\r", "\n").split("\n") if p.strip()]
    if not parts:
        return ""
    line = parts[-1]
    if " INFO " in line or " WARNING " in line:  # a log record: its message, without time and logger
        line = line.rsplit(" - ", 1)[-1]
    return line[:70]


def train(label: str, config: Path, kind: str, logs: Path, keep_as: Optional[Path] = None,
          progress: bool = True) -> Training:
    """Train once from scratch and time it; keep the model at `keep_as` if given."""
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{label}-train-{kind}.log"
    with tempfile.TemporaryDirectory(prefix="bench-train-") as scratch:
        out, cache = Path(scratch) / "out", Path(scratch) / "rasa-cache"
        name = f"{label}-{kind}"
        command = [str(BIN / "rasa"), "train"] + (["nlu"] if kind == "nlu" else []) + [
            "--config", str(config), "--domain", "domain", "--out", str(out), "--fixed-model-name", name]
        command += ["--nlu", "data/nlu"] if kind == "nlu" else ["--data", "data"]
        env = dict(os.environ, PYTHONPATH=str(PROJECT), TF_CPP_MIN_LOG_LEVEL="2",
                   SQLALCHEMY_SILENCE_UBER_WARNING="1", RASA_TELEMETRY_ENABLED="false",
                   RASA_CACHE_DIRECTORY=str(cache))
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        with open(log, "wb") as output:
            process = subprocess.Popen(command, cwd=PROJECT, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            _wait_with_progress(process, log, f"{label}: train {kind}", progress)
        except BaseException:  # interrupted: don't leave the training running
            process.terminate()
            process.wait()
            raise
        wall = time.perf_counter() - started
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        model = out / f"{name}.tar.gz"
        if process.returncode != 0 or not model.exists():
            raise TrainingError(f"`{' '.join(command)}` failed ({process.returncode}); see {log}")
        if keep_as:
            keep_as.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(model), keep_as)
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    return Training(kind=kind, wall_s=wall, cpu_s=cpu, log=str(log.relative_to(PROJECT)))


def _wait_with_progress(process: subprocess.Popen, log: Path, label: str, progress: bool) -> None:
    """Wait for the training, showing the seconds so far and its latest output line."""
    if not progress:
        process.wait()
        return
    done = threading.Event()
    bar = tqdm(desc=label, unit="s", file=sys.stderr, bar_format="{desc}: {n:.0f} s {postfix}")

    def tick() -> None:
        started = time.perf_counter()
        while not done.wait(1.0):
            bar.n = time.perf_counter() - started
            bar.set_postfix_str(_last_line(log), refresh=True)

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        process.wait()
    finally:
        done.set()
        ticker.join()
        bar.close()
