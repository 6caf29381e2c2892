"""What the project-local servers of scripts/prod/ share: apt installs, ports, pid files, stopping.

Only the standard library is used.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional


class InstallError(RuntimeError):
    """A Debian package is missing and could not be installed."""


def apt_install(package: str, binary: str) -> Path:
    """Installs a Debian package when ``binary`` is not on the PATH; keeps its service from starting."""
    found = shutil.which(binary) or (f"/usr/sbin/{binary}" if os.path.exists(f"/usr/sbin/{binary}") else None)
    if found:
        return Path(found)
    if not shutil.which("apt-get"):
        raise InstallError(f"{binary} is not installed and there is no apt-get: install {package}")
    prefix: List[str] = []
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            raise InstallError(f"{binary} is not installed, and installing it needs root: "
                                   f"run 'apt-get install {package}' as root")
        prefix = ["sudo"] if sys.stdin.isatty() else ["sudo", "-n"]
    print(f"==> Installing Debian's {package} package (apt-get)", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", RUNLEVEL="1")
    # policy-rc.d: the package's service must not start (nothing system-wide is left running).
    policy = Path("/usr/sbin/policy-rc.d")
    added_policy = False
    if os.geteuid() == 0 and not policy.exists():
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        added_policy = True
    try:
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
            result = subprocess.run(prefix + command, env=env, capture_output=True, text=True)
            if result.returncode != 0:
                tail = " ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
                raise InstallError(f"could not install {package}: '{' '.join(prefix + command)}' exited "
                                       f"with {result.returncode}: {tail or 'no output'}")
    finally:
        if added_policy:
            policy.unlink()
    found = shutil.which(binary) or (f"/usr/sbin/{binary}" if os.path.exists(f"/usr/sbin/{binary}") else None)
    if not found:
        raise InstallError(f"apt-get installed {package}, but there is no {binary}")
    return Path(found)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return True
    return False


def read_pid(pid_file: Path) -> Optional[int]:
    """The pid in a server's pid file, when that process is alive."""
    try:
        pid = int(Path(pid_file).read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def stop_pid(current_pid: Callable[[], Optional[int]], first: int = signal.SIGTERM, wait_s: float = 10) -> None:
    """Sends `first`, waits for the process to go, then SIGKILL."""
    pid = current_pid()
    if pid is None:
        return
    os.kill(pid, first)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if current_pid() is None:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
