"""Serves the clinic demo page and the chat widget (web/public) on port 8080.

    python -m web.serve [--port 8080] [--rasa-url URL ...] [--widget-server URL]

A static server from the standard library, with the headers a page holding a
health chat should have: a Content-Security-Policy that allows scripts, styles
and connections only from this server and from the Rasa server(s) given, no
framing, no MIME sniffing, no referrer. No directory listings, and nothing
outside web/public. With --widget-server (WIDGET_SERVER_URL), the demo page's
widget talks to that Rasa URL instead of this host's port 5005. A clinic that already has a web server serves web/public
from it instead (see the README's embed snippet).
"""
from __future__ import annotations

import argparse
import html
import logging
import os
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import List
from urllib.parse import urlsplit

PUBLIC = Path(__file__).resolve().parent / "public"
VENDOR = PUBLIC / "widget" / "vendor" / "socket.io.min.js"
DEFAULT_RASA_URLS = "http://localhost:5005 http://127.0.0.1:5005"

logger = logging.getLogger("web.serve")


def content_security_policy(rasa_urls: List[str]) -> str:
    connect = ["'self'"]
    for url in rasa_urls:
        parts = urlsplit(url)
        connect.append(f"{parts.scheme}://{parts.netloc}")
        connect.append(f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}")
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {' '.join(connect)}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class Handler(SimpleHTTPRequestHandler):
    csp = ""
    widget_server = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.widget_server and self.path.split("?")[0] in ("/", "/index.html"):
            page = (PUBLIC / "index.html").read_text(encoding="utf-8").replace(
                '<script src="/widget/widget.js"',
                f'<script src="/widget/widget.js" data-server="{html.escape(self.widget_server)}"')
            data = page.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        super().do_GET()

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", self.csp)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def list_directory(self, path):  # noqa: ANN001 - http.server's signature
        self.send_error(404, "Not found")
        return None

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.send_error(405, "This server only serves the chat page")

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        logger.debug("%s - %s", self.address_string(), format % args)


def make_server(port: int, rasa_urls: List[str], host: str = "0.0.0.0",
                widget_server: str = "") -> ThreadingHTTPServer:
    if not VENDOR.exists():
        raise SystemExit(f"{VENDOR} is missing: run `make setup` (it vendors socket.io-client from npm)")
    urls = rasa_urls + ([widget_server] if widget_server else [])
    handler = type("ClinicHandler", (Handler,), {"csp": content_security_policy(urls),
                                                 "widget_server": widget_server})
    ThreadingHTTPServer.allow_reuse_address = True
    return ThreadingHTTPServer((host, port), partial(handler, directory=str(PUBLIC)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("WEB_PORT", 8080)))
    parser.add_argument("--host", default=os.environ.get("WEB_HOST", "0.0.0.0"))
    parser.add_argument("--rasa-url", nargs="+",
                        default=os.environ.get("RASA_PUBLIC_URLS", DEFAULT_RASA_URLS).split())
    parser.add_argument("--widget-server", default=os.environ.get("WIDGET_SERVER_URL", ""))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    server = make_server(args.port, args.rasa_url, args.host, args.widget_server)
    logger.info("serving %s on http://localhost:%d/", PUBLIC, args.port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
