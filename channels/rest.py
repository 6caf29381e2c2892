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

And when a store the turn needs can't be reached, the reply is a 503 with
``{"error": ..., "reason": ..., "retry": true}`` and a ``Retry-After`` header, instead
of stock Rasa's 200 with whatever was said so far (often nothing): nothing of the turn
was stored, and the client sends the message again. The reasons:

* ``tracker_store_unavailable``: ``TrackerStoreUnavailable``, raised by
  tracker_stores/resilient_sql.py once its retries have run out;
* ``lock_store_unavailable``: Redis, the lock store of the replicated set-up, refused
  the connection or timed out (its ``socket_timeout``), so the turn could not take the
  conversation's lock (Rasa raises its ``LockError`` with the Redis error as the cause).

Patient text is never logged here.

Empty, emoji-only, foreign-language or control-character messages are valid
requests: the NLU pipeline's input guard gives them a clear reply.
"""
from __future__ import annotations

import inspect
import logging
from asyncio import CancelledError
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from rasa.utils.endpoints import bool_arg
from sanic import Blueprint, response
from sanic.exceptions import InvalidUsage, PayloadTooLarge
from sanic.request import Request
from sanic.response import HTTPResponse

from redis import exceptions as redis_exceptions

from tracker_stores.resilient_sql import TrackerStoreUnavailable

logger = logging.getLogger(__name__)


def unavailable_reason(error: BaseException) -> Optional[str]:
    """Why a turn could not run, when a store it needs is unreachable; None for other errors."""
    seen = set()
    while error is not None and id(error) not in seen:  # Rasa wraps Redis errors in its LockError
        seen.add(id(error))
        if isinstance(error, TrackerStoreUnavailable):
            return "tracker_store_unavailable"
        if isinstance(error, (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError)):
            return "lock_store_unavailable"
        error = error.__cause__ or error.__context__
    return None

MAX_MESSAGE_CHARS = 20_000
MAX_SENDER_CHARS = 128
RETRY_AFTER_S = 5
UNAVAILABLE_MESSAGE = (
    "The assistant can't reach its conversation store just now, so your message was not "
    "processed. Please send it again in a few seconds. If you have new loss of bladder or "
    "bowel control, numbness between your legs, a dropping foot or weakness in both legs, "
    "get emergency care now."
)


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

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Stock RestInput's routes; a turn the tracker store couldn't record is a 503."""
        module = inspect.getmodule(self)
        webhook = Blueprint(f"custom_webhook_{type(self).__name__}", module.__name__ if module else None)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> Any:
            sender_id = await self._extract_sender(request)
            text = self._extract_message(request)
            input_channel = self._extract_input_channel(request)
            metadata = self.get_metadata(request)
            if bool_arg(request, "stream", default=False):
                return response.stream(
                    self.stream_response(on_new_message, text, sender_id, input_channel, metadata),
                    content_type="text/event-stream")
            collector = CollectingOutputChannel()
            try:
                await on_new_message(UserMessage(text, collector, sender_id, input_channel=input_channel,
                                                 metadata=metadata))
            except CancelledError:
                logger.error("REST: a message timed out")
            except Exception as error:
                reason = unavailable_reason(error)
                if reason is None:
                    logger.exception("REST: a message could not be handled")
                else:
                    logger.error("REST: a turn was refused (%s): %s: %s", reason, type(error).__name__, error)
                    return response.json({"error": UNAVAILABLE_MESSAGE, "reason": reason, "retry": True},
                                         status=503, headers={"Retry-After": str(RETRY_AFTER_S)})
            return response.json(collector.messages)

        return webhook
