"""Rasa's fail-safe tracker store wrapper, made to let an unreachable database fail the turn.

Inside ``rasa run`` every tracker store is wrapped in ``FailSafeTrackerStore``
(rasa/core/agent.py ``Agent._create_tracker_store``). It catches *every* exception:

* a failed ``retrieve`` becomes "no such conversation", so the turn starts from an
  empty tracker and the patient is answered from a forgotten context;
* a failed ``save`` goes to an ``InMemoryTrackerStore`` that is never read back, so the
  turn's events are lost from the record.

``install()`` changes one thing: ``TrackerStoreUnavailable`` (raised by
``ResilientSQLTrackerStore`` once its retries have run out) is re-raised instead of
being swallowed. Every other error, and every other tracker store, is handled as
before. The exception then leaves ``Agent.handle_message``; the Redis (or in-memory)
lock is released by the lock store's ``finally``; and the input channel answers the
client with an error it can act on (channels/rest.py: HTTP 503 with a JSON body;
channels/socketio.py: an ``error`` event), so the patient can send the message again.
Nothing of the failed turn is stored, so nothing is stored twice when it is resent.

It is installed when ``tracker_stores.resilient_sql`` is imported, which Rasa does when
it loads that store from the endpoints file, before the agent wraps it.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Dict

from rasa.core.tracker_store import FailSafeTrackerStore

_MARK = "_reraises_tracker_store_unavailable"
_ORIGINALS: Dict[str, Callable[..., Any]] = {}


def _reraising(method: Callable[..., Any], unavailable: type) -> Callable[..., Any]:
    @functools.wraps(method)
    def callback(self: FailSafeTrackerStore, error: Exception) -> None:
        if isinstance(error, unavailable):
            raise error  # out of FailSafeTrackerStore's `except`, before any fallback
        method(self, error)

    setattr(callback, _MARK, True)
    return callback


def install(unavailable: type) -> None:
    """Make ``FailSafeTrackerStore`` re-raise ``unavailable`` errors (idempotent).

    Its ``retrieve``, ``retrieve_full_tracker``, ``save`` and ``keys`` call one of two
    callbacks with the exception they caught, before falling back; those callbacks
    now raise it again when it is an ``unavailable`` error.
    """
    for name in ("on_tracker_store_error", "on_tracker_store_retrieve_error"):
        method = getattr(FailSafeTrackerStore, name)
        if not getattr(method, _MARK, False):
            _ORIGINALS[name] = method
            setattr(FailSafeTrackerStore, name, _reraising(method, unavailable))


def installed() -> bool:
    return getattr(FailSafeTrackerStore.on_tracker_store_error, _MARK, False)


def uninstall() -> None:
    """Stock Rasa's behaviour again (for the tests that show what it does)."""
    for name, method in _ORIGINALS.items():
        setattr(FailSafeTrackerStore, name, method)
