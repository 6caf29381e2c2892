"""The review app as `make run` starts it (waitress, a real subprocess), over a seeded demo store.

Everything lives in one temporary folder: the tracker store (written by Rasa's own
SQLTrackerStore through review.seed_demo), the outbox, the app's database and an
endpoints.yml pointing at them. Used by tests/e2e/test_review_browser.py and by
scripts/review_screenshots.py.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional

import yaml

from tests.e2e.servers import PROJECT, free_port, wait_for

DEMO_END = "2025-06-30"  # a fixed last day, so the demo data is the same on every run


@dataclass
class ReviewServer:
    workdir: Path
    conversations: int = 400
    extra_env: Dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tracker(self) -> Path:
        return self.workdir / "conversations.db"

    @property
    def outbox(self) -> Path:
        return self.workdir / "outbox.db"

    @property
    def log(self) -> Path:
        return self.workdir / "review.log"

    def endpoints_file(self) -> Path:
        endpoints = yaml.safe_load((PROJECT / "endpoints.yml").read_text())
        endpoints["tracker_store"] = {"type": "SQL", "dialect": "sqlite", "db": str(self.tracker)}
        endpoints["clinic_notifications"]["outbox"] = str(self.outbox)
        path = self.workdir / "endpoints.yml"
        path.write_text(yaml.safe_dump(endpoints))
        return path

    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.update(
            PYTHONPATH=str(PROJECT),
            SQLALCHEMY_SILENCE_UBER_WARNING="1",
            RASA_TELEMETRY_ENABLED="false",
            ENDPOINTS_FILE=str(self.endpoints_file()),
            OUTBOX_DB=str(self.outbox),
            REVIEW_DATABASE_URL=f"sqlite:///{self.workdir / 'review.db'}",
            PYTHONWARNINGS="ignore",
        )
        env.update(self.extra_env)
        return env

    def seed(self, end: str = DEMO_END) -> None:
        subprocess.run(
            [sys.executable, "-m", "review.seed_demo", "--conversations", str(self.conversations),
             "--tracker", str(self.tracker), "--outbox", str(self.outbox), "--end", end],
            cwd=PROJECT, env=self.env(), check=True, capture_output=True, timeout=600,
        )

    def manage(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "review.manage", *args], cwd=PROJECT, env=self.env(),
                              input=stdin, capture_output=True, text=True, timeout=120)

    def create_user(self, name: str, role: str, password: str) -> None:
        result = self.manage("create-user", name, "--role", role, "--password-stdin", stdin=password + "\n")
        assert result.returncode == 0, result.stderr

    def start(self) -> "ReviewServer":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "review", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=PROJECT, env=self.env(), stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(f"{self.url}/health", self.process, self.log, timeout=120)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
