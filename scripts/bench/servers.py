"""Start and stop the assistant for the benchmark as `make run` starts it, and measure it.

The same commands and flags as scripts/run.sh (the action server, then Rasa with the
REST channel, the token-protected HTTP API, endpoints.yml with its SQLite tracker store,
credentials.yml and CORS), on ports of the benchmark's own, with the tracker database,
outbox and notification log in a temporary folder, so the benchmark never touches the
patients' conversations in var/. The chat page and the review app are not started:
they take no part in answering a message.

Measured here:
- time to ready: from starting the first process until the action server answers
  /health and Rasa answers /status with a loaded model (Rasa starts listening only once
  the model is loaded);
- peak resident memory of each server: the kernel's high-water mark (VmHWM in
  /proc/<pid>/status) of the process, plus that of each child process seen (an upper
  bound when there are children: their peaks need not coincide); the largest sum of
  current resident memory (VmRSS) seen when sampling every 0.2 s is kept alongside.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import yaml

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# What scripts/run.sh allows by default (its CORS_ORIGINS, for the chat page on 8080).
CORS_ORIGINS = ["http://localhost:8080", "http://127.0.0.1:8080"]


class ServerError(RuntimeError):
    pass


def _status(pid: int) -> Optional[Dict[str, int]]:
    """VmRSS and VmHWM of a process, in kB; None once it has gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values if len(values) == 2 else None


def process_tree(pid: int) -> List[int]:
    """The process and all its descendants (from the parent ids in /proc/*/stat)."""
    children: Dict[int, List[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far; 0 once it has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def tree_cpu_s(pid: int) -> float:
    return sum(process_cpu_s(member) for member in process_tree(pid))


def machine_busy_s() -> float:
    """CPU seconds all cores have spent busy since boot (everything but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / CLOCK_TICKS


@dataclass
class MemoryPeak:
    """Peak resident memory of one server's process tree."""

    hwm_kb: Dict[int, int] = field(default_factory=dict)  # pid -> its last seen VmHWM
    sampled_peak_kb: int = 0

    def sample(self, pid: int) -> None:
        total = 0
        for member in process_tree(pid):
            status = _status(member)
            if status:
                total += status["VmRSS"]
                self.hwm_kb[member] = max(self.hwm_kb.get(member, 0), status["VmHWM"])
        self.sampled_peak_kb = max(self.sampled_peak_kb, total)

    def to_dict(self) -> Dict[str, float]:
        return {
            "peak_mb": sum(self.hwm_kb.values()) / 1024,
            "sampled_peak_mb": self.sampled_peak_kb / 1024,
            "processes": len(self.hwm_kb),
        }


class MemorySampler(threading.Thread):
    def __init__(self, pids: Dict[str, int], interval_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peaks = {name: MemoryPeak() for name in pids}
        self.interval_s = interval_s
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval_s)

    def sample(self) -> None:
        for name, pid in self.pids.items():
            self.peaks[name].sample(pid)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.sample()  # the last word: the high-water marks just before the servers stop


def check_port_free(port: int) -> None:
    """Fail early, and clearly, when something already listens on a port the servers need."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do
        try:
            sock.bind(("0.0.0.0", port))  # Rasa and the action server listen on all interfaces
        except OSError as error:
            raise ServerError(f"port {port} is in use ({error.strerror}); choose others with "
                              "BENCH_RASA_PORT and BENCH_ACTIONS_PORT") from None


def _get(url: str, timeout: float = 2.0) -> Optional[object]:
    """The parsed JSON body of a 200 answer, or None."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read().decode() or "null") if response.status == 200 else None
    except (urllib.error.URLError, ConnectionError, OSError, ValueError):
        return None


@dataclass
class Stack:
    """The action server and the Rasa server for one model."""

    label: str
    model: Path
    workdir: Path            # temporary: tracker database, outbox, notification log
    logs: Path
    rasa_port: int
    actions_port: int
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    rasa: Optional[subprocess.Popen] = None
    actions: Optional[subprocess.Popen] = None
    sampler: Optional[MemorySampler] = None
    started: float = 0.0     # time.perf_counter() when the first server was started

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def webhook_url(self) -> str:
        return f"{self.rasa_url}/webhooks/rest/webhook"

    @property
    def tracker_db(self) -> Path:
        return self.workdir / "conversations.db"

    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.update(
            PYTHONPATH=str(PROJECT),  # as the Makefile exports
            TF_CPP_MIN_LOG_LEVEL="2",
            SQLALCHEMY_SILENCE_UBER_WARNING="1",
            RASA_TELEMETRY_ENABLED="false",
            CORS_ORIGINS=" ".join(CORS_ORIGINS),
            OUTBOX_DB=str(self.workdir / "outbox.db"),
            NOTIFICATION_LOG=str(self.workdir / "clinic_notifications.jsonl"),
            CLINIC_WEBHOOK_URL="",
        )
        return env

    def endpoints_file(self) -> Path:
        """endpoints.yml, with the benchmark's action server port and its own files."""
        endpoints = yaml.safe_load((PROJECT / "endpoints.yml").read_text())
        endpoints["action_endpoint"]["url"] = f"http://127.0.0.1:{self.actions_port}/webhook"
        endpoints["tracker_store"]["db"] = str(self.tracker_db)
        notifications = endpoints.get("clinic_notifications") or {}
        notifications.update(webhook_url="", outbox=str(self.workdir / "outbox.db"),
                             log=str(self.workdir / "clinic_notifications.jsonl"))
        endpoints["clinic_notifications"] = notifications
        path = self.workdir / "endpoints.yml"
        path.write_text(yaml.safe_dump(endpoints, sort_keys=False))
        return path

    def _popen(self, args: List[str], log: Path) -> subprocess.Popen:
        with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(args, cwd=PROJECT, env=self.env(), stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, timeout_s: float = 300.0) -> Dict[str, float]:
        """Start both servers as scripts/run.sh does; seconds until each was ready."""
        check_port_free(self.rasa_port)
        check_port_free(self.actions_port)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        endpoints = self.endpoints_file()
        rasa_log, actions_log = self.logs / f"{self.label}-rasa.log", self.logs / f"{self.label}-actions.log"
        self.started = started = time.perf_counter()
        self.actions = self._popen(
            [str(BIN / "rasa"), "run", "actions", "--actions", "actions", "--port", str(self.actions_port)],
            actions_log)
        self.rasa = self._popen(
            [str(BIN / "rasa"), "run", "--model", str(self.model), "--port", str(self.rasa_port),
             "--enable-api", f"--auth-token={self.token}",
             "--endpoints", str(endpoints), "--credentials", str(PROJECT / "credentials.yml"),
             "--cors", *CORS_ORIGINS],
            rasa_log)
        self.sampler = MemorySampler({"rasa": self.rasa.pid, "actions": self.actions.pid})
        self.sampler.start()
        ready: Dict[str, float] = {}
        deadline = started + timeout_s
        while len(ready) < 2:
            for name, process, log in (("rasa", self.rasa, rasa_log), ("actions", self.actions, actions_log)):
                if process.poll() is not None:
                    self.stop()
                    raise ServerError(f"the {name} server exited ({process.returncode}); "
                                      f"the end of {log}:\n{log.read_text(errors='replace')[-3000:]}")
            if "actions" not in ready and _get(f"http://127.0.0.1:{self.actions_port}/health") is not None:
                ready["actions"] = time.perf_counter() - started
            if "rasa" not in ready:
                status = _get(f"{self.rasa_url}/status?token={self.token}")
                if isinstance(status, dict) and status.get("model_id"):
                    ready["rasa"] = time.perf_counter() - started
            if time.perf_counter() > deadline:
                self.stop()
                raise ServerError(f"not ready after {timeout_s:.0f} s; see {self.logs}")
            time.sleep(0.05)
        ready["both"] = max(ready["rasa"], ready["actions"])
        return ready

    def cpu_s(self) -> Dict[str, float]:
        """CPU seconds each server's processes have used so far."""
        return {name: tree_cpu_s(process.pid) for name, process in
                (("rasa", self.rasa), ("actions", self.actions)) if process}

    def memory(self) -> Dict[str, Dict[str, float]]:
        if not self.sampler:
            return {}
        return {name: peak.to_dict() for name, peak in self.sampler.peaks.items()}

    @staticmethod
    def _stop(process: Optional[subprocess.Popen]) -> None:
        if process and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stop(self) -> None:
        """Stop both servers (reading the memory peaks first)."""
        if self.sampler and self.sampler.is_alive():
            self.sampler.stop()
        self._stop(self.rasa)
        self._stop(self.actions)
