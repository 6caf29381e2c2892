"""Rasa's SQL tracker store, made to survive database restarts and to fail loudly, not quietly.

Configured in endpoints.yml with the same keys as Rasa's ``type: SQL`` (dialect, url,
port, db, username, password, login_db, query; SQLite by default), plus two of its own:

    tracker_store:
      type: tracker_stores.resilient_sql.ResilientSQLTrackerStore
      dialect: "postgresql"
      url: ${TRACKER_DB_HOST}
      port: ${TRACKER_DB_PORT}
      username: ${TRACKER_DB_USER}
      password: ${TRACKER_DB_PASSWORD}
      db: ${TRACKER_DB_NAME}
      attempts: 5       # tries per read or write while the database is unreachable
      backoff: 0.5      # seconds before the second try, doubling up to 4 s

Rasa 3.6 loads it with ``_load_from_module_name_in_endpoint_config``: it imports the
class from ``type`` and calls it with ``host=url``, the domain, the event broker and the
other keys.

What stock Rasa 3.6 does (rasa/core/tracker_store.py, rasa/core/agent.py):

* ``SQLTrackerStore`` keeps its connections in SQLAlchemy's pool with no liveness check
  and never retries. After PostgreSQL restarts (an upgrade, a failover, a proxy or
  firewall dropping idle connections), the pooled connections are dead and the next read
  or write on them raises ``OperationalError`` ("server closed the connection
  unexpectedly"). SQLAlchemy then discards the pool, so only that one operation fails.
* Rasa's ``Agent`` wraps every tracker store in ``FailSafeTrackerStore``. A failed read is
  logged and answered with "no conversation", so the turn starts from a new, empty
  tracker: the patient's context (earlier turns, slots, an open checklist form) is
  forgotten. A failed write is logged and the tracker goes to an ``InMemoryTrackerStore``
  that is never read back. And the new tracker is then written under Rasa's rule "append
  the events beyond those already stored for this session": being shorter than what is
  stored, its events are skipped. The turn is lost from the record, and nothing fails
  where anyone would see it; during a longer outage every turn goes the same way.
* At start-up ``SQLTrackerStore`` waits for the database, retrying every 5 s.

What this store changes:

* ``pool_pre_ping``: each connection taken from the pool is checked with a cheap ping
  first; a dead one is replaced (and the rest of the pool with it). The first read or
  write after a restart just works.
* Retries: a read or write that fails because the database can't be reached
  (``OperationalError``, ``InterfaceError``, ``DisconnectionError``, or any error that
  invalidated its connection) is tried again, ``attempts`` times in all, after 0.5, 1,
  2, 4, 4… seconds (``asyncio.sleep``: the server keeps serving other conversations). By
  default that rides out about 7.5 s of downtime, a restart or a failover. Other database
  errors (a missing table, a constraint) are raised at once: trying again won't fix them.
* Saving again is safe: each attempt is one transaction that counts what the database
  already holds for the session and appends only the rest (Rasa's rule), so a retry after
  a commit whose acknowledgement was lost adds nothing twice. New events go to the event
  broker once, before the write, not once per attempt.
* When the database stays down it raises ``TrackerStoreUnavailable``, naming the
  database (without its password), the attempts and the last error. Until an operation
  succeeds again, later ones try once and raise at once, so during a long outage a turn
  (which reads and writes the tracker several times) doesn't wait out the retries at
  every step. Called directly (a script, a test) this stops the caller. Inside ``rasa
  run``, Rasa's fail-safe wrapper would catch it and carry on from an empty, in-memory
  tracker; importing this module installs tracker_stores/fail_loudly.py, which makes
  the wrapper raise it again. The turn then fails loudly: nothing of it is stored, the
  REST channel answers 503 with a JSON error and the socket.io channel an ``error``
  event (channels/), and the client sends the message again. So no event is lost, and
  none is stored twice; restarts and short outages are ridden out without the patient
  noticing.
* Rasa's loader quietly replaces a custom tracker store whose constructor raises
  ``ImportError`` or ``AttributeError`` (a database driver that isn't installed, say)
  with an ``InMemoryTrackerStore``, a warning being the only sign. This store raises
  those as ``TrackerStoreConfigError``, so Rasa refuses to start instead.
* The engine has ``hide_parameters``: a database error never carries patient text.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from functools import partial
from typing import Any, Awaitable, Callable, Dict, Iterable, Optional, Text, TypeVar

import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import ConnectionException, RasaException
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from tracker_stores import fail_loudly

logger = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 5
DEFAULT_BACKOFF = 0.5  # seconds before the second attempt, doubling
MAX_BACKOFF = 4.0

T = TypeVar("T")


class TrackerStoreUnavailable(ConnectionException):
    """The database stayed unreachable for every attempt."""


class TrackerStoreConfigError(RasaException):
    """The tracker store can't be created as configured."""


# Inside `rasa run`, let TrackerStoreUnavailable fail the turn instead of Rasa's
# fail-safe wrapper swallowing it (tracker_stores/fail_loudly.py).
fail_loudly.install(TrackerStoreUnavailable)


def is_connection_error(error: BaseException) -> bool:
    """Whether a database error means the database couldn't be reached (worth trying again)."""
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError))


def _describe(error: BaseException) -> str:
    """The error's type and first line, without the SQL statement."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _setting(value: Any, name: str, kind: Callable[[Any], T], minimum: float) -> T:
    try:
        number = kind(value)
    except (TypeError, ValueError) as error:
        raise TrackerStoreConfigError(f"tracker_store: {name} must be a number, not {value!r}") from error
    if number < minimum:
        raise TrackerStoreConfigError(f"tracker_store: {name} must be at least {minimum}")
    return number


class ResilientSQLTrackerStore(SQLTrackerStore):
    """SQLTrackerStore with pre-pinged connections and bounded retries; see the module docstring."""

    def __init__(
        self,
        domain: Optional[Domain] = None,
        dialect: Text = "sqlite",
        host: Optional[Text] = None,
        port: Optional[int] = None,
        db: Text = "rasa.db",
        username: Optional[Text] = None,
        password: Optional[Text] = None,
        event_broker: Optional[EventBroker] = None,
        login_db: Optional[Text] = None,
        query: Optional[Dict] = None,
        attempts: Any = DEFAULT_ATTEMPTS,
        backoff: Any = DEFAULT_BACKOFF,
        **kwargs: Any,
    ) -> None:
        self.attempts = _setting(attempts, "attempts", int, 1)
        self.backoff = _setting(backoff, "backoff", float, 0)
        self._unreachable = False  # the retries ran out, and nothing has succeeded since
        try:
            super().__init__(domain=domain, dialect=dialect, host=host, port=port, db=db, username=username,
                             password=password, event_broker=event_broker, login_db=login_db, query=query,
                             **kwargs)
        except (ImportError, AttributeError) as error:
            # Rasa's loader would swallow these and carry on with an in-memory store.
            raise TrackerStoreConfigError(
                f"the tracker store can't be created ({type(error).__name__}: {error}); "
                "is the database driver for this dialect installed?") from error
        self._pre_pinged_engine()

    def _pre_pinged_engine(self) -> None:
        """Replaces Rasa's engine (already used to create the table) with one that checks connections."""
        url = self.engine.url
        self.engine.dispose()
        self.engine = sa.create_engine(url, pool_pre_ping=True, hide_parameters=True, **create_engine_kwargs(url))
        self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)

    @property
    def where(self) -> str:
        """The database, for messages (no password)."""
        return self.engine.url.render_as_string(hide_password=True)

    async def _with_retries(self, action: str, operation: Callable[[], Awaitable[T]]) -> T:
        """Runs ``operation``, trying again while the database can't be reached.

        Once the retries have run out, later operations try once, until one succeeds:
        a long outage costs each turn one failed connection, not the whole retry budget.
        """
        started = time.monotonic()
        delay = self.backoff
        attempts = 1 if self._unreachable else self.attempts
        for attempt in range(1, attempts + 1):
            try:
                result = await operation()
            except sa.exc.SQLAlchemyError as error:
                if not is_connection_error(error):
                    raise
                if attempt == attempts:
                    already = " (and was at the previous operation)" if self._unreachable else ""
                    self._unreachable = True
                    raise TrackerStoreUnavailable(
                        f"The tracker store at {self.where} could not {action}: the database was unreachable "
                        f"for {attempt} attempt(s) over {time.monotonic() - started:.1f} s{already}. "
                        f"Last error: {_describe(error)}") from error
                logger.warning("Tracker store at %s: could not %s (%s); attempt %d of %d in %.2f s",
                               self.where, action, _describe(error), attempt + 1, attempts, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
            else:
                if attempt > 1 or self._unreachable:
                    logger.info("Tracker store at %s: the database is reachable again", self.where)
                self._unreachable = False
                return result
        raise AssertionError("unreachable")  # the loop returns or raises

    # -- reads ---------------------------------------------------------------

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        return await self._with_retries("read a conversation", partial(super().retrieve, sender_id))

    async def retrieve_full_tracker(self, conversation_id: Text) -> Optional[DialogueStateTracker]:
        return await self._with_retries("read a conversation",
                                        partial(super().retrieve_full_tracker, conversation_id))

    async def keys(self) -> Iterable[Text]:
        return await self._with_retries("list the conversations", super().keys)

    # -- writes --------------------------------------------------------------

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Streams the new events to the event broker (once), then stores them, retrying."""
        await self.stream_events(tracker)
        await self._with_retries("save a conversation", partial(self._append_new_events, tracker))
        logger.debug("Tracker with sender_id '%s' stored to database", tracker.sender_id)

    async def _append_new_events(self, tracker: DialogueStateTracker) -> None:
        """One transaction: the events the database doesn't hold yet, as SQLTrackerStore.save writes them."""
        with self.session_scope() as session:
            for event in self._additional_events(session, tracker):
                data = event.as_dict()
                session.add(self.SQLEvent(
                    sender_id=tracker.sender_id,
                    type_name=event.type_name,
                    timestamp=data.get("timestamp"),
                    intent_name=data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
                    action_name=data.get("name"),
                    data=json.dumps(data),
                ))
            session.commit()
