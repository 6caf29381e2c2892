"""Rasa's REST channel, with its input checked before anything else sees it.

Stock ``RestInput`` answers a list body with a 500, and a missing or non-text
message with an empty 200 (and a missing sender puts everyone in one shared
"default" conversation). This subclass keeps the same URL,
``POST /webhooks/rest/webhook``, and the same replies, but turns bad requests into
clear 4xx JSON errors:

* 400 when the body is not a JSON object, ``sender`` is not a non-empty string of
  at most MAX_SENDER_CHARS characters, ``message`` is not a string, or
  ``metadata`` is present and not an object;
* 413 when ``message`` is longer than MAX_MESSAGE_CHARS characters.

Empty, emoji-only, foreign-language or control-character messages are valid
requests: the NLU pipeline's input guard gives them a clear reply.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Text

from rasa.core.channels.rest import RestInput
from sanic.exceptions import InvalidUsage, PayloadTooLarge
from sanic.request import Request

MAX_MESSAGE_CHARS = 20_000
MAX_SENDER_CHARS = 128


def _body(request: Request) -> Dict[str, Any]:
    body = request.json
    if not isinstance(body, dict):
        raise InvalidUsage('The body must be a JSON object: {"sender": "...", "message": "..."}')
    return body


class ValidatingRestInput(RestInput):
    """``POST /webhooks/rest/webhook`` with its input validated."""

    @classmethod
    def name(cls) -> Text:
        return "rest"

    async def _extract_sender(self, req: Request) -> Optional[Text]:
        sender = _body(req).get("sender")
        if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_CHARS:
            raise InvalidUsage(
                f'"sender" must be a non-empty string of at most {MAX_SENDER_CHARS} characters'
            )
        return sender

    def _extract_message(self, req: Request) -> Optional[Text]:
        message = _body(req).get("message")
        if not isinstance(message, str):
            raise InvalidUsage('"message" must be a string')
        if len(message) > MAX_MESSAGE_CHARS:
            raise PayloadTooLarge(
                f'"message" is {len(message)} characters long; the limit is {MAX_MESSAGE_CHARS}'
            )
        return message

    def get_metadata(self, request: Request) -> Optional[Dict[Text, Any]]:
        metadata = _body(request).get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidUsage('"metadata" must be a JSON object when given')
        return metadata
