"""A throwaway, project-local PostgreSQL cluster for Rasa's tracker store (and the tests).

    python3 -m scripts.prod.postgres install             # Debian's postgresql package, if missing
    python3 -m scripts.prod.postgres start [--dir var/postgres] [--port 55432]
    python3 -m scripts.prod.postgres status | stop | restart | destroy [--dir ...]
    python3 -m scripts.prod.postgres env  [--dir ...]    # export lines for endpoints.yml's ${VARS}
    python3 -m scripts.prod.postgres url  [--dir ...]    # the SQLAlchemy URL, password included

``start`` installs PostgreSQL when it is missing (``apt-get update``, then ``apt-get
install postgresql``; through sudo unless run as root), creates the cluster on its
first run (``initdb``) and starts it, then makes sure the tracker store's role and
database exist (``rasa``/``rasa``). Layout of the cluster directory (``var/postgres``
by default; ``var/`` is git-ignored):

    data/          the cluster (PGDATA), mode 0700
    socket/        its unix socket; the only way in for the superuser (peer authentication)
    postgres.log   the server's log
    password       the ``rasa`` role's password, generated at creation, mode 0600
    cluster.json   port, role, database, binaries, the OS user that runs the server

The server listens on 127.0.0.1 only; TCP connections need the password
(scram-sha-256). ``initdb`` refuses to run as root, so when this runs as root the
cluster belongs to, and runs as, Debian's ``postgres`` system user; otherwise it runs
as the calling user. Nothing here talks to the network except apt.

Only the standard library is used, so it runs with any Python 3.9+ (before .venv exists).
"""
from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_DIR = PROJECT_DIR / "var" / "postgres"
DEFAULT_PORT = 55432
DEBIAN_BIN_ROOT = Path("/usr/lib/postgresql")
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
SOCKET_PATH_MAX = 107  # sun_path, less the terminating NUL


class PostgresUnavailable(RuntimeError):
    """PostgreSQL is not installed and could not be installed."""


class ClusterError(RuntimeError):
    """The cluster could not be created, started or stopped; the message says why."""


# -- installing ---------------------------------------------------------------


def find_bin_dir() -> Optional[Path]:
    """Where initdb and pg_ctl are: Debian's newest /usr/lib/postgresql/<version>/bin, or the PATH."""
    versions = []
    for candidate in DEBIAN_BIN_ROOT.glob("*/bin/initdb"):
        version = candidate.parent.parent.name
        if version.isdigit():
            versions.append((int(version), candidate.parent))
    if versions:
        return max(versions)[1]
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def install(quiet: bool = False) -> Path:
    """Installs Debian's postgresql package when no PostgreSQL is found; returns its bin directory."""
    found = find_bin_dir()
    if found:
        return found
    if not shutil.which("apt-get"):
        raise PostgresUnavailable(
            "PostgreSQL is not installed and there is no apt-get to install it with: "
            "install PostgreSQL 13 or newer (initdb, pg_ctl, psql) with your package manager")
    prefix: List[str] = []
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            raise PostgresUnavailable(
                "PostgreSQL is not installed, and installing it needs root (there is no sudo): "
                "run 'apt-get install postgresql' as root")
        prefix = ["sudo"] if sys.stdin.isatty() else ["sudo", "-n"]  # -n: never wait for a password
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not quiet:
        print("==> Installing Debian's postgresql package (apt-get)", flush=True)
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
        result = subprocess.run(prefix + command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            tail = " ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
            raise PostgresUnavailable(
                f"could not install PostgreSQL: '{' '.join(prefix + command)}' exited with "
                f"{result.returncode}: {tail or 'no output'}. Install it with 'apt-get install postgresql'.")
    found = find_bin_dir()
    if not found:
        raise PostgresUnavailable(f"apt-get installed postgresql, but no initdb under {DEBIAN_BIN_ROOT}")
    return found


# -- the cluster ----------------------------------------------------------------


def _current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def _server_user() -> str:
    """The OS user that owns and runs the cluster: postgres when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return _current_user()
    try:
        pwd.getpwnam("postgres")
    except KeyError as error:
        raise ClusterError("running as root, and there is no 'postgres' user to run the cluster as "
                           "(Debian's postgresql package creates it)") from error
    return "postgres"


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether nothing listens there (a port a stopped server left in TIME_WAIT counts as free:
    PostgreSQL binds with SO_REUSEADDR)."""
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return True
    return False


@dataclass
class Cluster:
    """One project-local cluster, in ``directory``."""

    directory: Path
    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    role: str = "rasa"
    database: str = "rasa"
    bin_dir: Optional[Path] = None
    os_user: Optional[str] = None

    def __post_init__(self) -> None:
        self.directory = Path(self.directory).resolve()
        for name in (self.role, self.database):
            if not IDENTIFIER.match(name):
                raise ClusterError(f"{name!r}: use lower-case letters, digits and _ for role and database names")
        if self.state_file.exists():  # an existing cluster keeps the settings it was created with
            saved = json.loads(self.state_file.read_text())
            self.port, self.host = int(saved["port"]), saved["host"]
            self.role, self.database = saved["role"], saved["database"]
            self.bin_dir, self.os_user = Path(saved["bin_dir"]), saved["os_user"]

    # paths
    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path:
        return self.directory / "socket"

    @property
    def log_file(self) -> Path:
        return self.directory / "postgres.log"

    @property
    def password_file(self) -> Path:
        return self.directory / "password"

    @property
    def state_file(self) -> Path:
        return self.directory / "cluster.json"

    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists() and self.state_file.exists()

    # running things as the cluster's user
    def _as_server_user(self) -> Dict[str, object]:
        """subprocess options that run a command as the cluster's OS user (when that isn't us)."""
        assert self.os_user
        if self.os_user == _current_user():
            return {}
        account = pwd.getpwnam(self.os_user)
        return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def _run(self, program: str, *args: str, input: Optional[str] = None,
             check: bool = True) -> subprocess.CompletedProcess:
        assert self.bin_dir
        command = [str(self.bin_dir / program), *args]
        # The server's own output goes to the log file (-l), so nothing holds these pipes open.
        result = subprocess.run(command, input=input, capture_output=True, text=True, cwd=self.directory,
                                env=dict(os.environ, LC_ALL="C", PGTZ="UTC"), **self._as_server_user())
        if check and result.returncode != 0:
            output = (result.stderr or result.stdout).strip()
            raise ClusterError(f"{program} {' '.join(args[:2])} failed ({result.returncode}): {output}"
                               f"{self._log_tail()}")
        return result

    def _log_tail(self, lines: int = 8) -> str:
        try:
            tail = self.log_file.read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return ""
        return "\n  server log (" + str(self.log_file) + "):\n  " + "\n  ".join(tail) if tail else ""

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Runs SQL as the superuser, over the unix socket (peer authentication); returns its output."""
        result = self._run("psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir),
                           "-p", str(self.port), "-U", self.os_user or "", "-d", database, "-f", "-", input=sql)
        return result.stdout.strip()

    # lifecycle
    def create(self) -> None:
        """initdb, the settings, a generated password; once."""
        if self.initialised:
            return
        self.bin_dir = self.bin_dir or install()
        self.os_user = self.os_user or _server_user()
        account = pwd.getpwnam(self.os_user)
        socket_path = self.socket_dir / f".s.PGSQL.{self.port}"
        if len(str(socket_path)) > SOCKET_PATH_MAX:
            raise ClusterError(f"{self.directory} is too deep for a unix socket path ({socket_path}); "
                               "use a shorter --dir")
        for path in (self.directory, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, account.pw_uid, account.pw_gid)
        os.chmod(self.directory, 0o700)
        if subprocess.run(["test", "-w", str(self.directory)], **self._as_server_user()).returncode != 0:
            raise ClusterError(f"the {self.os_user} user can't reach {self.directory} (a parent directory "
                               "is closed to other users): use a --dir it can reach, under /tmp for example")
        if self.data_dir.exists():  # left by a creation that failed half way (cluster.json comes last)
            shutil.rmtree(self.data_dir)
        self._write_private(self.password_file, secrets.token_urlsafe(24) + "\n")
        self._run("initdb", "-D", str(self.data_dir), "-U", self.os_user, "-E", "UTF8", "--no-locale",
                  "--auth-local=peer", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions")
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                "\n# Added by scripts/prod/postgres.py: a small local cluster.\n"
                f"listen_addresses = '{self.host}'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "shared_buffers = 32MB\n"
                "max_connections = 100\n"
                "password_encryption = 'scram-sha-256'\n")
        state = {key: str(value) if isinstance(value, Path) else value for key, value in asdict(self).items()}
        self.state_file.write_text(json.dumps(state, indent=2) + "\n")

    @staticmethod
    def _write_private(path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)

    def is_running(self) -> bool:
        if not self.initialised:
            return False
        return self._run("pg_ctl", "-D", str(self.data_dir), "status", check=False).returncode == 0

    def start(self) -> None:
        """Creates the cluster if needed, starts it, and makes sure the role and database exist."""
        self.create()
        if not self.is_running():
            if not port_is_free(self.port, self.host):
                raise ClusterError(f"port {self.port} on {self.host} is in use: stop what listens there, "
                                   "or create the cluster with another --port")
            self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60", "start")
        self._ensure_role()
        self.create_database(self.database)

    def stop(self) -> None:
        if self.is_running():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop")

    def restart(self) -> None:
        """A fast restart: open connections are cut, as when the database server restarts in production."""
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-m", "fast", "-w",
                  "-t", "60", "restart")

    def destroy(self) -> None:
        """Stops the cluster and deletes its directory (data, password and all)."""
        if self.initialised:
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    # roles and databases
    def password(self) -> str:
        return self.password_file.read_text().strip()

    def _ensure_role(self) -> None:
        # The password is generated (URL-safe characters only) and goes in on stdin, not the command line.
        self.psql(
            f"SELECT 'CREATE ROLE {self.role} LOGIN PASSWORD ''{self.password()}''' "
            f"WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{self.role}') \\gexec\n")

    def create_database(self, name: str) -> str:
        """Creates a database owned by the role, if missing; returns its URL."""
        if not IDENTIFIER.match(name):
            raise ClusterError(f"{name!r} is not a plain database name")
        self.psql(f"SELECT 'CREATE DATABASE {name} OWNER {self.role}' "
                  f"WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '{name}') \\gexec\n")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        if not IDENTIFIER.match(name):
            raise ClusterError(f"{name!r} is not a plain database name")
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);\n")

    def url(self, database: Optional[str] = None) -> str:
        """The SQLAlchemy URL (the password is URL-safe, so it needs no quoting)."""
        return f"postgresql://{self.role}:{self.password()}@{self.host}:{self.port}/{database or self.database}"

    def env(self) -> Dict[str, str]:
        """The variables the endpoints.yml snippet in the README reads."""
        return {"TRACKER_DB_HOST": self.host, "TRACKER_DB_PORT": str(self.port), "TRACKER_DB_USER": self.role,
                "TRACKER_DB_PASSWORD": self.password(), "TRACKER_DB_NAME": self.database}


# -- command line -----------------------------------------------------------------


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m scripts.prod.postgres", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["install", "start", "status", "stop", "restart", "destroy", "env", "url"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the cluster directory (default: var/postgres)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port, on 127.0.0.1 (at creation)")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            if not find_bin_dir():  # quiet when there is nothing to do (make test runs this every time)
                print(f"PostgreSQL installed: {install()}")
            return 0
        cluster = Cluster(args.dir, port=args.port)
        if args.command == "start":
            cluster.start()
            print(f"PostgreSQL is running on {cluster.host}:{cluster.port}: database {cluster.database}, "
                  f"role {cluster.role}, password in {cluster.password_file} (log: {cluster.log_file}).")
            print(f'Use it: eval "$(python3 -m scripts.prod.postgres env --dir {args.dir})"; '
                  f"stop it: python3 -m scripts.prod.postgres stop --dir {args.dir}")
        elif args.command == "destroy":
            cluster.destroy()
        elif not cluster.initialised:
            if args.command == "stop":
                return 0
            print(f"No cluster in {cluster.directory}: run 'python3 -m scripts.prod.postgres start' first.",
                  file=sys.stderr)
            return 1
        elif args.command == "status":
            running = cluster.is_running()
            print(f"{cluster.directory}: {'running' if running else 'stopped'} on {cluster.host}:{cluster.port}")
            return 0 if running else 3
        elif args.command == "stop":
            cluster.stop()
        elif args.command == "restart":
            cluster.restart()
        elif args.command == "env":
            print("\n".join(f"export {key}={value}" for key, value in cluster.env().items()))
        elif args.command == "url":
            print(cluster.url())
    except (PostgresUnavailable, ClusterError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
