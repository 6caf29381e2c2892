"""channels/action_server_down.py: Rasa's RemoteAction against an action server that is down,
hangs, answers 500 or rejects the action, over real sockets on 127.0.0.1."""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, List

import pytest
import rasa.core.actions.action as rasa_action
from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

import channels  # noqa: F401  (installs the fix, as every `rasa run` does)
from channels import action_server_down
from channels.action_server_down import ERROR_MARK, _Breaker

DOMAIN = Domain.empty()
NLG = TemplatedNaturalLanguageGenerator({})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tracker() -> DialogueStateTracker:
    return DialogueStateTracker.from_events("patient", [UserUttered("how do I contact the clinic?")])


def remote(url: str) -> RemoteAction:
    return RemoteAction("action_show_clinic_contact", EndpointConfig(url))


@pytest.fixture(autouse=True)
def closed_breaker() -> Iterator[None]:
    _Breaker.reset()
    yield
    _Breaker.reset()


class Server:
    """A real HTTP server that answers every POST with one status and body, or never answers."""

    def __init__(self, status: int = 200, body: object = None, hang: bool = False) -> None:
        outer = self
        self.calls = 0
        self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                outer.calls += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if hang:
                    outer.release.wait(10)
                    return
                data = json.dumps(body if body is not None else {"events": [], "responses": []}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/webhook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def unavailable(events: List) -> bool:
    return any(isinstance(e, BotUttered) and (e.data.get("custom") or {}).get("error") == ERROR_MARK
               for e in events)


async def test_a_server_that_is_down_gets_a_visible_reply_at_once():
    started = time.monotonic()
    events = await remote(f"http://127.0.0.1:{free_port()}/webhook").run(
        CollectingOutputChannel(), NLG, tracker(), DOMAIN)
    assert time.monotonic() - started < 2
    assert unavailable(events)
    [message] = [e for e in events if isinstance(e, BotUttered)]
    assert "not available" in message.text and "emergency" in message.text


async def test_a_server_that_hangs_times_out_then_the_breaker_answers_at_once(monkeypatch):
    monkeypatch.setattr(rasa_action, "DEFAULT_REQUEST_TIMEOUT", 1.0)
    server = Server(hang=True)
    try:
        started = time.monotonic()
        events = await remote(server.url).run(CollectingOutputChannel(), NLG, tracker(), DOMAIN)
        assert 0.9 < time.monotonic() - started < 3
        assert unavailable(events)
        started = time.monotonic()  # the next call, another turn: no new request, no wait
        events = await remote(server.url).run(CollectingOutputChannel(), NLG, tracker(), DOMAIN)
        assert time.monotonic() - started < 0.5 and unavailable(events) and server.calls == 1
    finally:
        server.close()


async def test_the_message_is_said_once_per_turn():
    url = f"http://127.0.0.1:{free_port()}/webhook"
    current = tracker()
    first = await remote(url).run(CollectingOutputChannel(), NLG, current, DOMAIN)
    for event in first:
        current.update(event)
    second = await remote(url).run(CollectingOutputChannel(), NLG, current, DOMAIN)
    assert unavailable(first) and second == []


async def test_a_500_is_unavailable_too_and_a_working_server_resets_the_breaker():
    failing, working = Server(status=500, body={"error": "boom"}), Server()
    try:
        assert unavailable(await remote(failing.url).run(CollectingOutputChannel(), NLG, tracker(), DOMAIN))
        _Breaker.reset()  # as after ACTION_SERVER_RETRY_AFTER seconds
        assert await remote(working.url).run(CollectingOutputChannel(), NLG, tracker(), DOMAIN) == []
        assert not _Breaker.is_open()
    finally:
        failing.close()
        working.close()


async def test_a_rejection_is_still_rasas_to_handle():
    server = Server(status=400, body={"action_name": "action_show_clinic_contact", "error": "no"})
    try:
        with pytest.raises(ActionExecutionRejection):
            await remote(server.url).run(CollectingOutputChannel(), NLG, tracker(), DOMAIN)
        assert not _Breaker.is_open()
    finally:
        server.close()


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("ACTION_SERVER_TIMEOUT", "2.5")
    monkeypatch.setenv("ACTION_SERVER_RETRY_AFTER", "not a number")
    monkeypatch.setenv("CLINIC_PHONE", "+44 20 0000 0000")
    assert action_server_down.timeout_s() == 2.5
    assert action_server_down.retry_after_s() == 10.0
    assert "+44 20 0000 0000" in action_server_down.fallback_text()
