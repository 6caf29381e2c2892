"""A throwaway, project-local Redis for Rasa's lock store (and the tests).

    python3 -m scripts.prod.redis install               # Debian's redis-server package, if missing
    python3 -m scripts.prod.redis start [--dir var/redis] [--port 56379]
    python3 -m scripts.prod.redis status | stop | restart | destroy [--dir ...]
    python3 -m scripts.prod.redis env  [--dir ...]      # export lines for the endpoints file's ${VARS}

``start`` installs Redis when it is missing (``apt-get install redis-server``, through
sudo unless root, with the package's own service kept from starting), writes a config
on its first run and starts ``redis-server`` in the background. Layout (``var/redis``
by default; ``var/`` is git-ignored):

    redis.conf     bind 127.0.0.1, the port, the password, no persistence (locks are short-lived)
    password       generated at creation, mode 0600 (``requirepass``)
    redis.pid      the server's pid while it runs
    redis.log      its log

Nothing system-wide is started: the server runs as the calling user from this directory.
Only the standard library is used.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

from scripts.prod.daemon import InstallError, apt_install, port_is_free, read_pid, stop_pid

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_DIR = PROJECT_DIR / "var" / "redis"
DEFAULT_PORT = 56379


class RedisUnavailable(RuntimeError):
    """Redis is not installed and could not be installed, or did not start."""


def install() -> Path:
    try:
        return apt_install("redis-server", "redis-server")
    except InstallError as error:
        raise RedisUnavailable(str(error)) from error


class RedisServer:
    """One project-local redis-server, configured and run from ``directory``."""

    def __init__(self, directory: Path = DEFAULT_DIR, port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> None:
        self.directory = Path(directory).resolve()
        self.port, self.host = port, host
        if self.conf_file.exists():  # an existing set-up keeps its port
            for line in self.conf_file.read_text().splitlines():
                if line.startswith("port "):
                    self.port = int(line.split()[1])

    @property
    def conf_file(self) -> Path:
        return self.directory / "redis.conf"

    @property
    def password_file(self) -> Path:
        return self.directory / "password"

    @property
    def pid_file(self) -> Path:
        return self.directory / "redis.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / "redis.log"

    def password(self) -> str:
        return self.password_file.read_text().strip()

    def create(self) -> None:
        if self.conf_file.exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
        fd = os.open(self.conf_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(
                "# Written by scripts/prod/redis.py: Rasa's lock store, on this machine only.\n"
                f"bind {self.host}\nport {self.port}\nprotected-mode yes\n"
                f"requirepass {self.password()}\n"
                f"dir {self.directory}\npidfile {self.pid_file}\nlogfile {self.log_file}\n"
                "daemonize yes\nsave \"\"\nappendonly no\nmaxmemory 64mb\n"
                "maxmemory-policy noeviction\n")

    def pid(self) -> Optional[int]:
        return read_pid(self.pid_file)

    def is_running(self) -> bool:
        return self.pid() is not None

    def ping(self) -> bool:
        """PING with AUTH over the socket, answered PONG."""
        try:
            with socket.create_connection((self.host, self.port), timeout=2) as conn:
                conn.sendall(f"AUTH {self.password()}\r\nPING\r\n".encode())
                data = b""
                deadline = time.monotonic() + 2
                while b"PONG" not in data and time.monotonic() < deadline:
                    chunk = conn.recv(256)
                    if not chunk:
                        break
                    data += chunk
                return b"PONG" in data
        except OSError:
            return False

    def start(self) -> None:
        binary = install()
        self.create()
        if self.is_running():
            return
        if not port_is_free(self.port, self.host):
            raise RedisUnavailable(f"port {self.port} on {self.host} is in use")
        result = subprocess.run([str(binary), str(self.conf_file)], capture_output=True, text=True,
                                cwd=self.directory)
        if result.returncode != 0:
            raise RedisUnavailable(f"redis-server exited with {result.returncode}: {result.stderr or result.stdout}")
        for _ in range(100):
            if self.ping():
                return
            time.sleep(0.1)
        raise RedisUnavailable(f"redis-server did not answer on {self.host}:{self.port}; see {self.log_file}")

    def stop(self) -> None:
        stop_pid(self.pid)
        for _ in range(50):  # until the port is closed
            if port_is_free(self.port, self.host):
                return
            time.sleep(0.1)

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def url(self) -> str:
        return f"redis://:{self.password()}@{self.host}:{self.port}/0"

    def env(self) -> Dict[str, str]:
        return {"REDIS_HOST": self.host, "REDIS_PORT": str(self.port), "REDIS_PASSWORD": self.password()}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m scripts.prod.redis", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["install", "start", "status", "stop", "restart", "destroy", "env", "url"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="its directory (default: var/redis)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port on 127.0.0.1 (at creation)")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            install()
            return 0
        server = RedisServer(args.dir, port=args.port)
        if args.command == "start":
            server.start()
            print(f"Redis is running on {server.host}:{server.port} (password in {server.password_file}, "
                  f"log: {server.log_file}).")
        elif args.command == "destroy":
            server.destroy()
        elif not server.conf_file.exists():
            if args.command == "stop":
                return 0
            print(f"No Redis in {server.directory}: run 'python3 -m scripts.prod.redis start' first.", file=sys.stderr)
            return 1
        elif args.command == "status":
            running = server.is_running()
            print(f"{server.directory}: {'running' if running else 'stopped'} on {server.host}:{server.port}")
            return 0 if running else 3
        elif args.command == "stop":
            server.stop()
        elif args.command == "restart":
            server.restart()
        elif args.command == "env":
            print("\n".join(f"export {key}={value}" for key, value in server.env().items()))
        elif args.command == "url":
            print(server.url())
    except RedisUnavailable as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
