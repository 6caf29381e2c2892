"""Start the real action server and Rasa server for end-to-end tests.

Each server runs as a subprocess, from the project's venv, on free local ports,
with its own tracker database, outbox and notification log in a temporary folder.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

PROJECT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
READY_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, body: Any = None, raw: Optional[bytes] = None,
         headers: Optional[Dict[str, str]] = None, timeout: float = 60) -> tuple:
    """(status, parsed JSON or text) for one request; never raises on HTTP errors."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.5)
    raise RuntimeError(f"server at {url} not ready after {timeout} s:\n{log.read_text()[-3000:]}")


@dataclass
class Servers:
    """The assistant as `make run` starts it, in a sandbox folder."""

    workdir: Path
    model: Path
    webhook_url: str = ""
    extra_env: Dict[str, str] = field(default_factory=dict)
    rasa_port: int = field(default_factory=free_port)
    actions_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    rasa: Optional[subprocess.Popen] = None
    actions: Optional[subprocess.Popen] = None
    web: Optional[subprocess.Popen] = None

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def web_origins(self) -> List[str]:
        return [f"http://127.0.0.1:{self.web_port}", f"http://localhost:{self.web_port}"]

    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.update(
            PYTHONPATH=str(PROJECT),
            TF_CPP_MIN_LOG_LEVEL="2",
            RASA_TELEMETRY_ENABLED="false",
            SQLALCHEMY_SILENCE_UBER_WARNING="1",
            OUTBOX_DB=str(self.workdir / "outbox.db"),
            NOTIFICATION_LOG=str(self.workdir / "notifications.jsonl"),
            CLINIC_WEBHOOK_URL=self.webhook_url,
            CORS_ORIGINS=" ".join(self.web_origins),
        )
        env.update(self.extra_env)
        return env

    def endpoints_file(self) -> Path:
        endpoints = yaml.safe_load((PROJECT / "endpoints.yml").read_text())
        endpoints["action_endpoint"]["url"] = f"http://127.0.0.1:{self.actions_port}/webhook"
        endpoints["tracker_store"]["db"] = str(self.workdir / "conversations.db")
        path = self.workdir / "endpoints.yml"
        path.write_text(yaml.safe_dump(endpoints))
        return path

    def start_actions(self) -> None:
        log = self.workdir / "actions.log"
        self.actions = subprocess.Popen(
            [str(BIN / "rasa"), "run", "actions", "--actions", "actions",
             "--port", str(self.actions_port)],
            cwd=PROJECT, env=self.env(), stdout=open(log, "ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(f"http://127.0.0.1:{self.actions_port}/health", self.actions, log)

    def start_rasa(self) -> None:
        log = self.workdir / "rasa.log"
        self.rasa = subprocess.Popen(
            [str(BIN / "rasa"), "run", "--model", str(self.model), "--port", str(self.rasa_port),
             "--enable-api", f"--auth-token={self.token}",
             "--endpoints", str(self.endpoints_file()), "--credentials", str(PROJECT / "credentials.yml"),
             "--cors", *self.web_origins],
            cwd=PROJECT, env=self.env(), stdout=open(log, "ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(f"{self.rasa_url}/", self.rasa, log)

    def start_web(self) -> None:
        """The chat page, as `make run` serves it, with the widget pointed at this Rasa."""
        log = self.workdir / "web.log"
        self.web = subprocess.Popen(
            [sys.executable, "-m", "web.serve", "--host", "127.0.0.1", "--port", str(self.web_port),
             "--widget-server", self.rasa_url],
            cwd=PROJECT, env=self.env(), stdout=open(log, "ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(f"{self.web_url}/", self.web, log)

    @staticmethod
    def _stop(process: Optional[subprocess.Popen]) -> None:
        if process and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stop_actions(self) -> None:
        self._stop(self.actions)

    def stop_rasa(self) -> None:
        self._stop(self.rasa)

    def stop(self) -> None:
        self._stop(self.web)
        self.stop_rasa()
        self.stop_actions()

    # Talking to the assistant -------------------------------------------------

    def send(self, sender: str, message: Any, raw: Optional[bytes] = None) -> tuple:
        body = None if raw is not None else {"sender": sender, "message": message}
        return http("POST", f"{self.rasa_url}/webhooks/rest/webhook", body=body, raw=raw)

    def say(self, sender: str, message: str) -> List[Dict[str, Any]]:
        status, replies = self.send(sender, message)
        assert status == 200, (status, replies)
        return replies

    def tracker(self, sender: str) -> Dict[str, Any]:
        status, tracker = http("GET", f"{self.rasa_url}/conversations/{sender}/tracker?token={self.token}")
        assert status == 200, tracker
        return tracker

    def parse(self, text: str) -> Dict[str, Any]:
        status, parsed = http("POST", f"{self.rasa_url}/model/parse?token={self.token}", body={"text": text})
        assert status == 200, parsed
        return parsed


def texts(replies: List[Dict[str, Any]]) -> str:
    return "\n".join(reply.get("text") or "" for reply in replies)


def customs(replies: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [reply["custom"] for reply in replies if reply.get("custom")]


FAQ_RESPONSES = yaml.safe_load((PROJECT / "data/nlu/responses/faq.yml").read_text())["responses"]


def faq_first_sentence(response: str) -> str:
    """The first sentence of an FAQ answer (data/nlu/responses/faq.yml), to find it in a reply."""
    return FAQ_RESPONSES[response][0]["text"].split(". ")[0].strip()
