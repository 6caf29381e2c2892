"""A stand-in for the Telegram Bot API on 127.0.0.1, for channel tests with no internet.

Rasa's Telegram connector (aiogram) is pointed at it with TELEGRAM_API_BASE. It
answers getMe, setWebhook and sendMessage the way Telegram does
(``{"ok": true, "result": ...}``) and records every call, so a test can check
which chat got which text.
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any, Dict, List, Optional, Type
from urllib.parse import parse_qs

from tests.local_server import LocalServer

BOT_USERNAME = "example_clinic_bot"


def _parse(content_type: str, body: bytes) -> Dict[str, Any]:
    if not body:
        return {}
    if content_type.startswith("application/json"):
        return json.loads(body)
    if content_type.startswith("multipart/form-data"):
        from email.parser import BytesParser
        from email.policy import HTTP

        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        return {part.get_param("name", header="content-disposition"): part.get_content()
                for part in message.iter_parts()}
    return {key: values[-1] for key, values in parse_qs(body.decode()).items()}


class FakeTelegramAPI(LocalServer):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.calls: List[Dict[str, Any]] = []
        self._lock = threading.Lock()
        self._message_id = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _result(self, method: str, params: Dict[str, Any]) -> Any:
        if method == "getMe":
            return {"id": 1000, "is_bot": True, "first_name": "Clinic", "username": BOT_USERNAME}
        if method in ("setWebhook", "deleteWebhook"):
            return True
        if method == "sendMessage":
            self._message_id += 1
            return {"message_id": self._message_id, "date": int(time.time()),
                    "chat": {"id": int(params["chat_id"]), "type": "private"}, "text": params.get("text", "")}
        return True

    def handler(self) -> Type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                params = _parse(self.headers.get("Content-Type", ""), body)
                prefix, _, method = self.path.lstrip("/").partition("/")
                if prefix != f"bot{api.token}":
                    self._reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
                    return
                with api._lock:
                    api.calls.append({"method": method, "params": params})
                    result = api._result(method, params)
                self._reply(200, {"ok": True, "result": result})

            do_GET = do_POST  # noqa: N815

            def _reply(self, status: int, payload: Dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def sent(self, chat_id: Optional[int] = None) -> List[Dict[str, Any]]:
        """sendMessage calls, optionally only those to one chat."""
        with self._lock:
            calls = [c["params"] for c in self.calls if c["method"] == "sendMessage"]
        return [c for c in calls if chat_id is None or int(c["chat_id"]) == chat_id]

    def methods(self) -> List[str]:
        with self._lock:
            return [c["method"] for c in self.calls]
