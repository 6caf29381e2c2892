"""nginx in front of the Rasa replicas and the chat page, project-local (var/nginx).

    python3 -m scripts.prod.nginx install
    python3 -m scripts.prod.nginx start --rasa 127.0.0.1:5105 --rasa 127.0.0.1:5106 --web 127.0.0.1:5180 [--port 8088]
    python3 -m scripts.prod.nginx status | stop | reload | destroy [--dir var/nginx]

``start`` installs Debian's nginx when it is missing (its own service kept from
starting), writes ``nginx.conf`` and starts a master process running as the calling
user (one worker), with its pid, logs and temporary files in the directory. The
routes, on ``127.0.0.1:<port>`` (``--listen`` for another address):

* ``/socket.io/``: the Rasa replicas, with the WebSocket upgrade headers and *sticky
  sessions*. Rasa's socket.io channel keeps each connection's state in the process
  that accepted it, so every request of one socket.io session (the long-polling
  handshake, then the upgrade) must reach the same replica. nginx open source has no
  sticky cookie, so this is one: requests are spread by ``hash $rasa_route
  consistent``, where ``$rasa_route`` is the ``rasa_route`` cookie, or a fresh
  ``$request_id`` when there is none; and the reply sets the cookie to the key it used.
  (``ip_hash`` would do for clients on separate addresses, but sends everyone behind
  one NAT, or a whole test on 127.0.0.1, to one replica.)
* ``/webhooks/``: the REST and messaging channels, spread the same way (a client with
  no cookie lands anywhere: the replicas share the tracker store and the Redis lock).
  A replica that refuses connections (killed, restarting) is skipped: nginx passes the
  request to the other one (``proxy_next_upstream error``), which it may do even for a
  POST because nothing was sent. ``X-Served-By`` names the replica that answered.
* ``/health``: Rasa's ``GET /`` on any replica.
* everything else: the chat page's static server.

Rasa's HTTP API (``/conversations``, ``/model``) is not routed: it stays on the
replicas' loopback ports, behind its token. The access log has no query strings
(``$uri``, not ``$request``) and no bodies, so no token or patient text.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

from scripts.prod.daemon import InstallError, apt_install, port_is_free, read_pid, stop_pid

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_DIR = PROJECT_DIR / "var" / "nginx"
DEFAULT_PORT = 8088


class NginxError(RuntimeError):
    """nginx could not be installed, configured or started."""


def install() -> Path:
    try:
        return apt_install("nginx", "nginx")
    except InstallError as error:
        raise NginxError(str(error)) from error


def render_config(directory: Path, listen: str, rasa: List[str], web: Optional[str],
                  max_body: str = "256k") -> str:
    """The whole nginx.conf, for these upstreams."""
    rasa_servers = "\n".join(f"        server {address} max_fails=1 fail_timeout=5s;" for address in rasa)
    web_block = (f"    upstream web {{\n        server {web};\n    }}\n" if web else "")
    web_location = ("        location / {\n            proxy_pass http://web;\n"
                    "            proxy_set_header Host $host;\n        }\n" if web else
                    "        location / {\n            return 404 '{\"error\": \"not found\"}';\n        }\n")
    d = directory
    return f"""# Written by scripts/prod/nginx.py. Regenerated at every start: edit the script, not this file.
worker_processes 1;
daemon on;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    default_type application/json;
    # No query strings (tokens) and no bodies (patient text) in the log.
    log_format nobody '$remote_addr [$time_local] "$request_method $uri" $status $body_bytes_sent '
                      'upstream=$upstream_addr rt=$request_time';
    access_log {d}/access.log nobody;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    client_max_body_size {max_body};
    server_tokens off;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
    # The sticky key: the rasa_route cookie, or a fresh random one.
    map $cookie_rasa_route $rasa_route {{
        ""      $request_id;
        default $cookie_rasa_route;
    }}

    upstream rasa {{
        hash $rasa_route consistent;
{rasa_servers}
        keepalive 16;
    }}
{web_block}
    server {{
        listen {listen};
        proxy_connect_timeout 2s;
        proxy_next_upstream error timeout;
        proxy_next_upstream_tries 2;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;

        location /socket.io/ {{
            proxy_pass http://rasa;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_read_timeout 120s;
            add_header Set-Cookie "rasa_route=$rasa_route; Path=/; HttpOnly; SameSite=Lax" always;
            add_header X-Served-By $upstream_addr always;
        }}
        location /webhooks/ {{
            proxy_pass http://rasa;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_read_timeout 60s;
            add_header Set-Cookie "rasa_route=$rasa_route; Path=/; HttpOnly; SameSite=Lax" always;
            add_header X-Served-By $upstream_addr always;
        }}
        # nginx's own errors (no replica answered) as JSON, like Rasa's.
        error_page 502 503 504 = @unavailable;
        location @unavailable {{
            default_type application/json;
            add_header Retry-After 5 always;
            return 503 '{{"error": "the assistant is not reachable just now; please send your message again", "retry": true}}';
        }}
        location = /health {{
            proxy_pass http://rasa/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
{web_location}    }}
}}
"""


class Nginx:
    def __init__(self, directory: Path = DEFAULT_DIR) -> None:
        self.directory = Path(directory).resolve()

    @property
    def conf_file(self) -> Path:
        return self.directory / "nginx.conf"

    @property
    def pid_file(self) -> Path:
        return self.directory / "nginx.pid"

    def pid(self) -> Optional[int]:
        return read_pid(self.pid_file)

    def _nginx(self, *args: str) -> subprocess.CompletedProcess:
        binary = install()
        # -e: the error log before the config is read (the package's default may not be writable)
        return subprocess.run([str(binary), "-p", str(self.directory), "-e", str(self.directory / "error.log"),
                               "-c", str(self.conf_file), *args], capture_output=True, text=True)

    def configure(self, listen: str, rasa: List[str], web: Optional[str]) -> None:
        if not rasa:
            raise NginxError("at least one Rasa replica (--rasa HOST:PORT) is needed")
        (self.directory / "tmp").mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # the master runs as root, its worker as nobody: the worker writes tmp/
            import pwd
            nobody = pwd.getpwnam("nobody")
            os.chown(self.directory / "tmp", nobody.pw_uid, nobody.pw_gid)
        self.conf_file.write_text(render_config(self.directory, listen, rasa, web))
        result = self._nginx("-t")
        if result.returncode != 0:
            raise NginxError(f"nginx -t rejected {self.conf_file}: {result.stderr.strip()}")

    def start(self, listen: str, rasa: List[str], web: Optional[str]) -> None:
        self.configure(listen, rasa, web)
        if self.pid():
            self._nginx("-s", "reload")
            return
        host, _, port = listen.rpartition(":")
        if not port_is_free(int(port), host or "127.0.0.1"):
            raise NginxError(f"port {listen} is in use")
        result = self._nginx()
        if result.returncode != 0:
            raise NginxError(f"nginx did not start: {result.stderr.strip()}")
        for _ in range(50):
            if self.pid():
                return
            time.sleep(0.1)
        raise NginxError(f"nginx did not start; see {self.directory / 'error.log'}")

    def stop(self) -> None:
        stop_pid(self.pid, signal.SIGQUIT)  # graceful: finishes open requests

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m scripts.prod.nginx", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["install", "start", "status", "stop", "destroy", "config"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--listen", help="address:port to listen on (default 127.0.0.1:--port)")
    parser.add_argument("--rasa", action="append", default=[], help="a Rasa replica, HOST:PORT (repeat)")
    parser.add_argument("--web", help="the chat page's server, HOST:PORT")
    args = parser.parse_args(argv)
    listen = args.listen or f"127.0.0.1:{args.port}"
    server = Nginx(args.dir)
    try:
        if args.command == "install":
            install()
        elif args.command == "start":
            server.start(listen, args.rasa, args.web)
            print(f"nginx is running on {listen} -> Rasa {', '.join(args.rasa)}; web {args.web or '-'}")
        elif args.command == "config":
            print(render_config(server.directory, listen, args.rasa or ["127.0.0.1:5005"], args.web))
        elif args.command == "status":
            pid = server.pid()
            print(f"{server.directory}: {'running (pid %d)' % pid if pid else 'stopped'}")
            return 0 if pid else 3
        elif args.command == "stop":
            server.stop()
        elif args.command == "destroy":
            server.destroy()
    except NginxError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
