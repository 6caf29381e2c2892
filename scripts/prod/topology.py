"""The replicated set-up on one machine: what `make run-prod` starts and `make test-prod` tests.

    python -m scripts.prod.topology run     # start everything, print the URLs, Ctrl-C stops it all
    python -m scripts.prod.topology down    # stop whatever a killed `run` left behind
    eval "$(python -m scripts.prod.topology env)"   # its settings, e.g. for review.manage create-user

What runs (all on 127.0.0.1; ports from the environment, defaults below):

    PostgreSQL  PROD_PG_PORT (55432)      tracker store ("rasa" database), notification outbox,
                                           review app's own database ("review")
    Redis       PROD_REDIS_PORT (56379)   Rasa's lock store
    actions     PROD_ACTIONS_PORT (5155)  python -m actions.server, shared token required
    Rasa        PROD_RASA_PORTS ("5105 5106"), one replica per port, HTTP API with a token
    chat page   PROD_WEB_PORT (5180)      web/serve.py, reached through nginx
    review app  PROD_REVIEW_PORT (8181)   clinic staff; loopback only (REVIEW_HOST to change)
    nginx       PROD_PORT (8088)          the one public entry: /socket.io/ (sticky), /webhooks/,
                                           /health, and the chat page

Rasa and the action server read deploy/endpoints.prod.yml, whose ${VARS} this module
fills from the servers it started and from the secrets in var/prod/secrets.json
(generated once, mode 0600; RASA_API_TOKEN and ACTION_SERVER_TOKEN override them).
Logs are in var/prod/log/. Data stays in var/prod/ between runs (`down --destroy`
deletes it). The Topology class is also what tests/topology/ drives: it can kill,
stop and start each part.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from scripts.prod.nginx import Nginx
from scripts.prod.postgres import Cluster
from scripts.prod.redis import RedisServer

PROJECT_DIR = Path(__file__).resolve().parents[2]
ENDPOINTS = PROJECT_DIR / "deploy" / "endpoints.prod.yml"
READY_TIMEOUT_S = 300


def _env_port(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


@dataclass
class Ports:
    nginx: int = field(default_factory=lambda: _env_port("PROD_PORT", 8088))
    rasa: List[int] = field(default_factory=lambda: [int(p) for p in (os.environ.get("PROD_RASA_PORTS")
                                                                      or "5105 5106").split()])
    actions: int = field(default_factory=lambda: _env_port("PROD_ACTIONS_PORT", 5155))
    web: int = field(default_factory=lambda: _env_port("PROD_WEB_PORT", 5180))
    review: int = field(default_factory=lambda: _env_port("PROD_REVIEW_PORT", 8181))
    postgres: int = field(default_factory=lambda: _env_port("PROD_PG_PORT", 55432))
    redis: int = field(default_factory=lambda: _env_port("PROD_REDIS_PORT", 56379))


def venv_bin() -> Path:
    """The project's venv (the Makefile's VENV), else the running interpreter's."""
    candidate = PROJECT_DIR / ".venv" / "bin"
    return candidate if (candidate / "rasa").exists() else Path(sys.executable).parent


def model_path() -> str:
    result = subprocess.run([str(venv_bin() / "python"), "scripts/ensure_model.py", "--path"], cwd=PROJECT_DIR,
                            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(PROJECT_DIR)))
    if result.returncode != 0:
        raise RuntimeError(f"no model: scripts/ensure_model.py --path said: {result.stderr.strip()[-500:]}")
    return result.stdout.strip().splitlines()[-1]


def get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return 0


class Topology:
    """Starts, stops, kills and restarts the parts of the replicated set-up."""

    def __init__(self, var_dir: Path = PROJECT_DIR / "var" / "prod", ports: Optional[Ports] = None,
                 webhook_url: Optional[str] = None, extra_env: Optional[Dict[str, str]] = None,
                 model: Optional[str] = None, with_apps: bool = True) -> None:
        self.var_dir = Path(var_dir).resolve()
        self.ports = ports or Ports()
        self.webhook_url = webhook_url
        self.extra_env = dict(extra_env or {})
        self.model = model
        self.with_apps = with_apps
        self.log_dir = self.var_dir / "log"
        self.postgres = Cluster(self.var_dir / "postgres", port=self.ports.postgres)
        self.redis = RedisServer(self.var_dir / "redis", port=self.ports.redis)
        self.nginx = Nginx(self.var_dir / "nginx")
        self.processes: Dict[str, subprocess.Popen] = {}

    # -- secrets and environment ------------------------------------------------

    def secrets(self) -> Dict[str, str]:
        path = self.var_dir / "secrets.json"
        if not path.exists():
            self.var_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump({"rasa_api_token": secrets.token_hex(32),
                           "action_server_token": secrets.token_hex(32)}, handle)
        saved = json.loads(path.read_text())
        return {"rasa_api_token": os.environ.get("RASA_API_TOKEN") or saved["rasa_api_token"],
                "action_server_token": os.environ.get("ACTION_SERVER_TOKEN") or saved["action_server_token"]}

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.nginx}"

    def replica_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports.rasa[index]}"

    @property
    def action_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.actions}"

    def env(self) -> Dict[str, str]:
        keys = self.secrets()
        pg = self.postgres
        origins = f"http://localhost:{self.ports.nginx} http://127.0.0.1:{self.ports.nginx}"
        env = dict(os.environ)
        env.update({
            "PYTHONPATH": str(PROJECT_DIR), "TF_CPP_MIN_LOG_LEVEL": "2", "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            "RASA_TELEMETRY_ENABLED": "false", "ENDPOINTS_FILE": str(ENDPOINTS),
            "TRACKER_DB_HOST": pg.host, "TRACKER_DB_PORT": str(pg.port), "TRACKER_DB_USER": pg.role,
            "TRACKER_DB_PASSWORD": pg.password(), "TRACKER_DB_NAME": pg.database,
            "OUTBOX_DATABASE_URL": pg.url(), "REVIEW_DATABASE_URL": pg.url("review"),
            "NOTIFICATION_LOG": str(self.log_dir / "clinic_notifications.jsonl"),
            "REDIS_HOST": self.redis.host, "REDIS_PORT": str(self.redis.port), "REDIS_PASSWORD": self.redis.password(),
            "ACTION_SERVER_URL": f"{self.action_url}/webhook", "ACTION_SERVER_TOKEN": keys["action_server_token"],
            "RASA_API_TOKEN": keys["rasa_api_token"], "CORS_ORIGINS": origins,
            # A replica killed mid-turn leaves its ticket in Redis: it expires after this long.
            "TICKET_LOCK_LIFETIME": os.environ.get("TICKET_LOCK_LIFETIME", "20"),
        })
        if self.webhook_url:
            env["CLINIC_WEBHOOK_URL"] = self.webhook_url
        env.update(self.extra_env)
        return env

    # -- processes ----------------------------------------------------------------

    def _spawn(self, name: str, command: List[str]) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")
        process = subprocess.Popen(command, cwd=PROJECT_DIR, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.processes[name] = process
        self._save_pids()
        return process

    def _save_pids(self) -> None:
        pids = {name: process.pid for name, process in self.processes.items() if process.poll() is None}
        (self.var_dir / "pids.json").write_text(json.dumps(pids))

    def _wait_ready(self, name: str, url: str, timeout: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        process = self.processes[name]
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited ({process.returncode}); the end of its log:\n{tail}")
            if get(url) == 200:
                return
            time.sleep(1)
        raise RuntimeError(f"{name} was not ready at {url} after {timeout:.0f} s; see {self.log_dir}/{name}.log")

    def start_actions(self) -> None:
        self._spawn("actions", [str(venv_bin() / "python"), "-m", "actions.server", "--host", "127.0.0.1",
                                "--port", str(self.ports.actions)])
        self._wait_ready("actions", f"{self.action_url}/health", 120)

    def start_replica(self, index: int, wait: bool = True) -> None:
        keys = self.secrets()
        origins = self.env()["CORS_ORIGINS"].split()
        self.model = self.model or model_path()
        self._spawn(f"rasa-{index + 1}", [
            str(venv_bin() / "rasa"), "run", "--model", self.model, "--interface", "127.0.0.1",
            "--port", str(self.ports.rasa[index]), "--enable-api", "--auth-token", keys["rasa_api_token"],
            "--endpoints", str(ENDPOINTS), "--credentials", str(PROJECT_DIR / "credentials.yml"),
            "--cors", *origins])
        if wait:
            self.wait_replica(index)

    def wait_replica(self, index: int) -> None:
        self._wait_ready(f"rasa-{index + 1}", self.replica_url(index) + "/")

    def stop_process(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        self._save_pids()

    def kill_replica(self, index: int) -> None:
        """SIGKILL, as when a node dies: no shutdown handlers run."""
        self.stop_process(f"rasa-{index + 1}", signal.SIGKILL)

    def start(self) -> "Topology":
        self.var_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.var_dir, 0o711)  # PostgreSQL's own user must reach its directory inside
        print("==> PostgreSQL (tracker store, outbox, review app's database)", flush=True)
        self.postgres.start()
        self.postgres.create_database("review")
        print("==> Redis (lock store)", flush=True)
        self.redis.start()
        print(f"==> Action server on 127.0.0.1:{self.ports.actions} (shared token)", flush=True)
        self.start_actions()
        print(f"==> {len(self.ports.rasa)} Rasa replicas on 127.0.0.1:{', '.join(map(str, self.ports.rasa))} "
              "(loading the model)", flush=True)
        for index in range(len(self.ports.rasa)):
            self.start_replica(index, wait=False)
        for index in range(len(self.ports.rasa)):
            self.wait_replica(index)
        if self.with_apps:
            web = self.public_url
            print(f"==> Chat page on 127.0.0.1:{self.ports.web}, review app on 127.0.0.1:{self.ports.review}",
                  flush=True)
            self._spawn("web", [str(venv_bin() / "python"), "-m", "web.serve", "--host", "127.0.0.1",
                                "--port", str(self.ports.web), "--rasa-url", web,
                                f"http://localhost:{self.ports.nginx}", "--widget-server", web])
            review_host = os.environ.get("REVIEW_HOST", "127.0.0.1")
            self._spawn("review", [str(venv_bin() / "python"), "-m", "review", "--host", review_host,
                                   "--port", str(self.ports.review)])
            self._wait_ready("web", f"http://127.0.0.1:{self.ports.web}/", 60)
            reach = "127.0.0.1" if review_host in ("0.0.0.0", "::") else review_host
            self._wait_ready("review", f"http://{reach}:{self.ports.review}/login", 120)
        print(f"==> nginx on {self.public_url}", flush=True)
        self.nginx.start(f"127.0.0.1:{self.ports.nginx}", [f"127.0.0.1:{p}" for p in self.ports.rasa],
                         f"127.0.0.1:{self.ports.web}" if self.with_apps else None)
        return self

    def stop(self, destroy: bool = False) -> None:
        self.nginx.stop()
        for name in list(self.processes)[::-1]:
            self.stop_process(name)
        self.redis.stop()
        self.postgres.stop()
        if destroy:
            shutil.rmtree(self.var_dir, ignore_errors=True)

    def down(self, destroy: bool = False) -> None:
        """Stops what an earlier `run` left (found by port and pid files), then the servers."""
        self.nginx.stop()
        try:
            pids = json.loads((self.var_dir / "pids.json").read_text())
        except (OSError, ValueError):
            pids = {}
        for name, pid in pids.items():
            try:  # each was started in a session of its own: its pid is its process group
                os.killpg(int(pid), signal.SIGTERM)
                print(f"stopped {name} (pid {pid})")
            except (ProcessLookupError, PermissionError):
                pass
        self.stop(destroy)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.prod.topology", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["run", "down", "env"])
    parser.add_argument("--destroy", action="store_true", help="down: also delete var/prod (data and secrets)")
    args = parser.parse_args(argv)
    topology = Topology(webhook_url=os.environ.get("CLINIC_WEBHOOK_URL") or None)
    if args.command == "down":
        topology.down(args.destroy)
        return 0
    if args.command == "env":
        if not topology.postgres.initialised or not topology.redis.conf_file.exists():
            print("ERROR: nothing in var/prod yet: run 'make run-prod' first", file=sys.stderr)
            return 1
        names = ("ENDPOINTS_FILE", "TRACKER_DB_HOST", "TRACKER_DB_PORT", "TRACKER_DB_USER", "TRACKER_DB_PASSWORD",
                 "TRACKER_DB_NAME", "OUTBOX_DATABASE_URL", "REVIEW_DATABASE_URL", "REDIS_HOST", "REDIS_PORT",
                 "REDIS_PASSWORD", "ACTION_SERVER_URL", "ACTION_SERVER_TOKEN", "RASA_API_TOKEN")
        env = topology.env()
        print("\n".join(f"export {name}={env[name]}" for name in names))
        return 0

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # also when started with SIGINT ignored (a background job)
    try:
        topology.start()
        print(f"""==> Ready.
    Chat page:  {topology.public_url}/   (the widget, socket.io through nginx, sticky per browser)
    REST:       curl -s {topology.public_url}/webhooks/rest/webhook -d '{{"sender":"me","message":"what is a calcified disc?"}}'
    Replicas:   {', '.join(topology.replica_url(i) for i in range(len(topology.ports.rasa)))} (HTTP API: token in {topology.var_dir}/secrets.json)
    Review app: http://127.0.0.1:{topology.ports.review}/
    Logs:       {topology.log_dir}/   Press Ctrl-C to stop everything.""", flush=True)
        while True:
            for name, process in list(topology.processes.items()):
                if process.poll() is not None:
                    print(f"ERROR: {name} exited ({process.returncode}); see {topology.log_dir}/{name}.log",
                          file=sys.stderr)
                    return 1
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        print("==> Stopping...", flush=True)
        topology.stop()
        print("==> Stopped.", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
