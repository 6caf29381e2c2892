"""A real HTTP server on 127.0.0.1 in a background thread, for stand-ins of outside services."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional, Type


class LocalServer:
    """Subclasses return their request handler from `handler()`; port 0 picks a free port."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._server: Optional[ThreadingHTTPServer] = None

    def handler(self) -> Type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self):
        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler())
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
