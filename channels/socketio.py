"""The socket.io channel the web chat widget talks to.

Rasa 3.6's ``SocketIOInput`` has three problems with current python-socketio
(5.18, which Rasa's own pins resolve to), and this channel replaces its blueprint:

* It calls ``AsyncServer.enter_room`` without ``await`` (the method became a
  coroutine), so with session persistence the socket never joins its session's
  room and every bot reply is lost. Here it is awaited.
* ``send_custom_json`` passes the payload as keyword arguments to ``emit``, so a
  message carrying ``{"escalation": ...}`` raises ``TypeError``. Here each bot
  message is one ``bot_uttered`` event: ``{"text", "quick_replies", "custom"}``,
  so the widget gets the text and its emergency payload together.
* It accepts any origin and any input. Here a browser connection must come from
  an allowed origin (``CORS_ORIGINS``, space-separated; the same list Rasa's
  ``--cors`` gets), the session id must look like one, and the message must be a
  string of at most 20,000 characters; otherwise the client gets an ``input_error``
  event with a clear message, and nothing reaches Rasa.

When the tracker store or the lock store can't be reached (channels/rest.py
``unavailable_reason``), the turn is not processed and the client gets a
``bot_uttered`` message saying so, with ``custom: {"error": <reason>, "retry": true}``.

Conversations are keyed by the session id the widget stores, so a page reload
(or a reconnect after a Rasa restart) continues the same conversation.
"""
from __future__ import annotations

import json
import logging
import os
import re
import uuid
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.socketio import SocketBlueprint
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from channels.rest import MAX_MESSAGE_CHARS, UNAVAILABLE_MESSAGE, unavailable_reason

logger = logging.getLogger(__name__)

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
DEFAULT_ORIGINS = "http://localhost:8080 http://127.0.0.1:8080"


def allowed_origins(configured: Any = None) -> List[str]:
    """Origins from credentials.yml (a list or a space-separated string), else CORS_ORIGINS."""
    value = configured if configured else os.environ.get("CORS_ORIGINS") or DEFAULT_ORIGINS
    items = value.split() if isinstance(value, str) else list(value)
    return [str(origin).rstrip("/") for origin in items if origin]


def origin_allowed(origin: Optional[str], allowed: List[str]) -> bool:
    # Clients that send no Origin are not browsers, and CORS does not apply to them.
    return origin is None or "*" in allowed or origin.rstrip("/") in allowed


def bot_event(message: Dict[Text, Any]) -> Dict[Text, Any]:
    """One bot message as the widget receives it."""
    event: Dict[Text, Any] = {}
    if message.get("text"):
        event["text"] = message["text"]
    buttons = message.get("buttons") or message.get("quick_replies") or []
    if buttons:
        event["quick_replies"] = [
            {"title": str(b.get("title", "")), "payload": str(b.get("payload") or b.get("title", ""))}
            for b in buttons
        ]
    for key in ("custom", "image", "attachment"):
        if message.get(key):
            event[key] = message[key]
    return event


class WidgetOutput(OutputChannel):
    @classmethod
    def name(cls) -> Text:
        return "socketio"

    def __init__(self, sio: AsyncServer, bot_message_evt: Text) -> None:
        self.sio = sio
        self.bot_message_evt = bot_message_evt

    async def _emit(self, room: Text, event: Dict[Text, Any]) -> None:
        if event:
            await self.sio.emit(self.bot_message_evt, event, room=room)

    async def send_response(self, recipient_id: Text, message: Dict[Text, Any]) -> None:
        await self._emit(recipient_id, bot_event(message))

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self._emit(recipient_id, {"text": text})

    async def send_text_with_buttons(self, recipient_id: Text, text: Text,
                                     buttons: List[Dict[Text, Any]], **kwargs: Any) -> None:
        await self._emit(recipient_id, bot_event({"text": text, "buttons": buttons}))

    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        await self._emit(recipient_id, {"custom": json_message})

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        await self._emit(recipient_id, {"image": image})


class WidgetSocketIOInput(InputChannel):
    """socket.io at /socket.io, with session persistence, for the web widget."""

    @classmethod
    def name(cls) -> Text:
        return "socketio"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        credentials = credentials or {}
        return cls(
            user_message_evt=credentials.get("user_message_evt", "user_uttered"),
            bot_message_evt=credentials.get("bot_message_evt", "bot_uttered"),
            socketio_path=credentials.get("socketio_path", "/socket.io"),
            origins=allowed_origins(credentials.get("allowed_origins")),
        )

    def __init__(self, user_message_evt: Text = "user_uttered", bot_message_evt: Text = "bot_uttered",
                 socketio_path: Text = "/socket.io", origins: Optional[List[str]] = None) -> None:
        self.user_message_evt = user_message_evt
        self.bot_message_evt = bot_message_evt
        self.socketio_path = socketio_path
        self.origins = origins if origins is not None else allowed_origins()
        self.sio: Optional[AsyncServer] = None

    def get_output_channel(self) -> Optional[OutputChannel]:
        return WidgetOutput(self.sio, self.bot_message_evt) if self.sio else None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        # CORS headers for the polling transport come from Rasa's --cors (sanic-cors);
        # engine.io's own would duplicate them, so its CORS handling is off ([]) and
        # the origin is checked on connect instead.
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=[])
        self.sio = sio
        blueprint = SocketBlueprint(sio, self.socketio_path, "socketio_webhook", __name__)
        output = WidgetOutput(sio, self.bot_message_evt)
        origins = self.origins

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("connect")
        async def connect(sid: Text, environ: Dict, auth: Optional[Dict] = None) -> bool:
            origin = environ.get("HTTP_ORIGIN")
            if not origin_allowed(origin, origins):
                logger.warning("socket.io: refused a connection from origin %s", origin)
                return False
            return True

        @sio.on("session_request")
        async def session_request(sid: Text, data: Any = None) -> None:
            requested = data.get("session_id") if isinstance(data, dict) else None
            session_id = requested if isinstance(requested, str) and SESSION_ID.match(requested) else uuid.uuid4().hex
            await sio.enter_room(sid, session_id)
            await sio.save_session(sid, {"session_id": session_id})
            await sio.emit("session_confirm", session_id, room=sid)

        @sio.on(self.user_message_evt)
        async def handle_message(sid: Text, data: Any = None) -> None:
            session = await sio.get_session(sid)
            session_id = session.get("session_id")
            if not session_id:
                await sio.emit("input_error", {"error": "send session_request before any message"}, room=sid)
                return
            if not isinstance(data, dict) or not isinstance(data.get("message"), str):
                await sio.emit("input_error", {"error": 'expected {"message": "<text>"}'}, room=sid)
                return
            text = data["message"]
            if len(text) > MAX_MESSAGE_CHARS:
                await sio.emit("input_error", {"error": f"the message is {len(text)} characters long; "
                                                  f"the limit is {MAX_MESSAGE_CHARS}"}, room=sid)
                return
            metadata = data.get("metadata") or {}
            if isinstance(metadata, str):
                try:
                    metadata = json.loads(metadata)
                except ValueError:
                    metadata = {}
            if not isinstance(metadata, dict):
                metadata = {}
            try:
                await on_new_message(UserMessage(text, output, session_id,
                                                 input_channel=self.name(), metadata=metadata))
            except Exception as error:
                reason = unavailable_reason(error)
                if reason is None:
                    raise
                # Nothing of the turn was stored: tell the patient to send it again.
                logger.error("socket.io: a turn was refused (%s): %s: %s", reason, type(error).__name__, error)
                await sio.emit(self.bot_message_evt, {
                    "text": UNAVAILABLE_MESSAGE, "custom": {"error": reason, "retry": True}}, room=sid)

        return blueprint
