"""When the action server is down or hangs, the patient still gets a visible reply, fast.

Stock Rasa 3.6 waits up to 5 minutes for an action-server reply
(``DEFAULT_REQUEST_TIMEOUT``), and when the call fails (connection refused, a timeout,
a 5xx) ``MessageProcessor._run_action`` logs the exception and carries on with no
events: the patient gets silence. This project's FAQ answers and the urgent red-flag
message are domain responses uttered by rules, so they never need the action server;
what does need it is the article search (the fallback), "tell me more", the clinic's
contact and the surgery checklist.

``install()`` changes ``RemoteAction`` in two ways:

* its request timeout is ``ACTION_SERVER_TIMEOUT`` seconds (default 3);
* when a call fails because the action server can't be reached, timed out or answered
  with an error status, the action returns a bot message instead of nothing: the
  domain response ``utter_action_server_unavailable`` when the domain has one,
  otherwise a built-in text that says what happened, gives the clinic's phone number
  (``clinic.phone`` in endpoints.yml or ``CLINIC_PHONE``) and repeats what to do for
  the red-flag signs. It is said once per turn, however many custom actions fail in it.
  After a failure, further calls fail at once for ``ACTION_SERVER_RETRY_AFTER`` seconds
  (default 10), so a hung action server costs one timeout, not one per action.

An action server that *rejects* an action (HTTP 400, ``ActionExecutionRejection``,
used by forms) is handled by Rasa as before. The bot message carries
``{"custom": {"error": "action_server_unavailable"}}`` so clients and tests can tell it.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from typing import Any, Dict, List, Optional, Text

import aiohttp
import rasa.core.actions.action as rasa_action
from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
from rasa.shared.core.events import BotUttered, Event, UserUttered
from rasa.shared.exceptions import RasaException

from common.settings import endpoints_section

logger = logging.getLogger(__name__)

RESPONSE_NAME = "utter_action_server_unavailable"
ERROR_MARK = "action_server_unavailable"
_INSTALLED = "_visible_when_action_server_down"


def _seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name) or default)
    except ValueError:
        logger.warning("%s=%r is not a number; using %s", name, os.environ.get(name), default)
        return default
    return value if value > 0 else default


def timeout_s() -> float:
    return _seconds("ACTION_SERVER_TIMEOUT", 3.0)


def retry_after_s() -> float:
    return _seconds("ACTION_SERVER_RETRY_AFTER", 10.0)


def fallback_text() -> str:
    clinic = endpoints_section("clinic")
    phone = os.environ.get("CLINIC_PHONE") or clinic.get("phone") or ""
    emergency = os.environ.get("CLINIC_EMERGENCY") or clinic.get("emergency") or "your local emergency number"
    contact = f" or call the clinic on {phone}" if phone else " or contact the clinic"
    return (
        "Sorry, part of the assistant is not available right now, so I can't do that. "
        f"Please try again in a minute{contact}. If you have new loss of bladder or bowel "
        "control, numbness between your legs, a dropping foot or weakness in both legs, "
        f"get emergency care now: {emergency}."
    )


class _Breaker:
    """After a failure, calls fail at once for a while (per Rasa process)."""

    open_until = 0.0

    @classmethod
    def is_open(cls) -> bool:
        return time.monotonic() < cls.open_until

    @classmethod
    def trip(cls) -> None:
        cls.open_until = time.monotonic() + retry_after_s()

    @classmethod
    def reset(cls) -> None:
        cls.open_until = 0.0


def _is_unreachable(error: BaseException) -> bool:
    """A failure of the action server itself (down, hung, 5xx), not a rejection by it.

    RemoteAction.run turns connection errors and error statuses into RasaException;
    a timeout arrives as asyncio.TimeoutError.
    """
    if isinstance(error, ActionExecutionRejection):
        return False
    return isinstance(error, (asyncio.TimeoutError, aiohttp.ClientError, RasaException))


def _already_said_this_turn(tracker: Any) -> bool:
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            return False
        if isinstance(event, BotUttered) and ((event.data or {}).get("custom") or {}).get("error") == ERROR_MARK:
            return True
    return False


async def _unavailable_events(action: RemoteAction, nlg: Any, tracker: Any, domain: Any) -> List[Event]:
    if _already_said_this_turn(tracker):
        return []
    message: Optional[Dict[Text, Any]] = None
    if RESPONSE_NAME in (domain.responses or {}):
        try:
            message = await nlg.generate(RESPONSE_NAME, tracker, "")
        except Exception:  # the built-in text below still goes out
            logger.exception("Could not render %s", RESPONSE_NAME)
    message = dict(message or {"text": fallback_text()})
    custom = dict(message.get("custom") or {})
    custom.update(error=ERROR_MARK, action=action.name())
    data: Dict[Text, Any] = {"custom": custom}
    if message.get("buttons"):
        data["buttons"] = message["buttons"]
    return [BotUttered(message.get("text"), data=data, metadata={"utter_action": RESPONSE_NAME})]


def _wrap(run: Any) -> Any:
    @functools.wraps(run)
    async def wrapped(self: RemoteAction, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> List[Event]:
        if _Breaker.is_open():
            logger.warning("Action server unavailable (recent failure): '%s' not run", self.name())
            return await _unavailable_events(self, nlg, tracker, domain)
        try:
            events = await run(self, output_channel, nlg, tracker, domain)
        except Exception as error:
            if not _is_unreachable(error):
                raise
            _Breaker.trip()
            logger.error("Action server unavailable: '%s' failed (%s: %s); the patient is told, and "
                         "calls fail at once for %.0f s", self.name(), type(error).__name__, error,
                         retry_after_s())
            return await _unavailable_events(self, nlg, tracker, domain)
        _Breaker.reset()
        return events

    setattr(wrapped, _INSTALLED, True)
    return wrapped


def install() -> None:
    """Short timeout and a visible reply when the action server is down (idempotent)."""
    rasa_action.DEFAULT_REQUEST_TIMEOUT = timeout_s()
    if not getattr(RemoteAction.run, _INSTALLED, False):
        RemoteAction.run = _wrap(RemoteAction.run)  # type: ignore[assignment]
