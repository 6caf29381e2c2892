"""The widget's socket.io channel, spoken to directly: origins, sessions and bad input."""
from __future__ import annotations

import asyncio

import pytest
import socketio

TIMEOUT_S = 30


async def connected(servers, origin: str, wait: float = TIMEOUT_S) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(servers.rasa_url, headers={"Origin": origin}, transports=["polling"],  # engine.io's websocket client needs a newer aiohttp than Rasa pins
                         socketio_path="/socket.io", wait_timeout=wait)
    return client


async def next_event(client: socketio.AsyncClient, name: str, send=None):
    """Emit `send` (event, data) and return the data of the next `name` event."""
    future = asyncio.get_running_loop().create_future()
    client.on(name, lambda data=None: future.done() or future.set_result(data))
    if send:
        await client.emit(*send)
    return await asyncio.wait_for(future, TIMEOUT_S)


async def test_a_page_from_another_origin_cannot_connect(servers):
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connected(servers, "https://evil.example", wait=5)


async def test_a_session_gets_answers_with_text_buttons_and_payload_in_one_event(servers):
    client = await connected(servers, servers.web_origins[0])
    try:
        session = await next_event(client, "session_confirm", ("session_request", {"session_id": None}))
        assert len(session) == 32
        reply = await next_event(client, "bot_uttered",
                                 ("user_uttered", {"message": "I wet myself and can't feel the toilet paper",
                                                   "session_id": session}))
        assert "emergency" in reply["text"].lower()
        assert reply["custom"]["escalation"]["level"] == "emergency"
    finally:
        await client.eio.disconnect(abort=True)  # no wait for the pending long-poll


@pytest.mark.parametrize(
    "data,error",
    [({"message": 42}, "expected"), ("just a string", "expected"), ({"message": "x" * 20_001}, "limit")],
)
async def test_bad_input_gets_a_clear_error_and_the_server_stays_up(servers, data, error):
    client = await connected(servers, servers.web_origins[0])
    try:
        await next_event(client, "session_confirm", ("session_request", {"session_id": "not valid!"}))
        problem = await next_event(client, "input_error", ("user_uttered", data))
        assert error in problem["error"]
        # The same connection still works.
        reply = await next_event(client, "bot_uttered", ("user_uttered", {"message": "hello"}))
        assert reply["text"]
    finally:
        await client.eio.disconnect(abort=True)  # no wait for the pending long-poll
