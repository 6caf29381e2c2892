"""A real local HTTP server standing in for the clinic's notification webhook.

Records every POST (JSON body and Idempotency-Key); can answer with an error
status, and can be stopped and started again on the same port to play a target
that is down.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Dict, List, Type

from tests.local_server import LocalServer


class WebhookReceiver(LocalServer):
    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self.requests: List[Dict[str, Any]] = []
        self.status = 200
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/notify"

    def handler(self) -> Type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    status = receiver.status
                    if status < 300:
                        receiver.requests.append({
                            "json": json.loads(body or b"null"),
                            "idempotency_key": self.headers.get("Idempotency-Key"),
                        })
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def keys(self) -> List[str]:
        with self._lock:
            return [r["idempotency_key"] for r in self.requests]

    def wait_for(self, count: int, timeout: float = 30.0) -> List[str]:
        """Wait until at least `count` notifications arrived; return their keys."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.keys()) < count:
            time.sleep(0.1)
        return self.keys()
