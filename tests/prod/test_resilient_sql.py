"""The resilient tracker store against a live PostgreSQL that restarts, and stock Rasa 3.6 by contrast.

Every check of what was stored reads the ``events`` table through a connection of its
own, and compares it, in order, with the tracker's events: nothing lost, nothing twice.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import sqlalchemy as sa
from rasa.core.brokers.file import FileEventBroker
from rasa.core.tracker_store import FailSafeTrackerStore, InMemoryTrackerStore, SQLTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config

from tests.prod.conftest import endpoints_file, store_settings
from tracker_stores import fail_loudly
from tracker_stores.resilient_sql import ResilientSQLTrackerStore, TrackerStoreConfigError, TrackerStoreUnavailable

DOMAIN = Domain.empty()
SENDER = "patient-1"
T0 = 1_750_000_000.0
RESILIENT = "tracker_stores.resilient_sql.ResilientSQLTrackerStore"


def session_start() -> List[Event]:
    return [ActionExecuted("action_session_start", timestamp=T0), SessionStarted(timestamp=T0),
            ActionExecuted("action_listen", timestamp=T0)]


def turn(number: int) -> List[Event]:
    ts = T0 + 10 * number
    return [UserUttered(f"question {number}", intent={"name": "faq", "confidence": 0.9}, timestamp=ts),
            ActionExecuted("utter_faq", timestamp=ts + 1), BotUttered(f"answer {number}", timestamp=ts + 2),
            ActionExecuted("action_listen", timestamp=ts + 3)]


def new_tracker(*turns: int) -> DialogueStateTracker:
    events = session_start() + [event for number in turns for event in turn(number)]
    return DialogueStateTracker.from_events(SENDER, events, DOMAIN.slots)


def add_turn(tracker: DialogueStateTracker, number: int) -> None:
    for event in turn(number):
        tracker.update(event)


def label(data: Dict[str, Any]) -> str:
    return f"{data['event']}:{data.get('text') or data.get('name') or ''}"


def labels(events) -> List[str]:
    return [label(event.as_dict()) for event in events]


def stored(cluster, database: str) -> List[str]:
    """The conversation's rows in the events table, in id order, through a fresh connection."""
    engine = sa.create_engine(cluster.url(database), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as db:
            rows = db.execute(sa.text("SELECT data FROM events WHERE sender_id = :sender ORDER BY id"),
                              {"sender": SENDER}).all()
    finally:
        engine.dispose()
    return [label(json.loads(row.data)) for row in rows]


def resilient(cluster, database: str, **options: Any) -> ResilientSQLTrackerStore:
    return ResilientSQLTrackerStore(domain=DOMAIN, **store_settings(cluster, database), **options)


# -- created by Rasa from endpoints.yml ---------------------------------------------------


async def test_rasa_creates_it_from_endpoints_yml_on_postgresql(tmp_path, postgres, database, monkeypatch):
    """The snippet for endpoints.yml, with the variables `python3 -m scripts.prod.postgres env` prints."""
    for key, value in dict(postgres.env(), TRACKER_DB_NAME=database).items():
        monkeypatch.setenv(key, value)
    endpoints = endpoints_file(tmp_path / "endpoints.yml", RESILIENT, attempts=3, backoff=0.2)
    store = TrackerStore.create(read_endpoint_config(str(endpoints), "tracker_store"), domain=DOMAIN)
    assert type(store) is ResilientSQLTrackerStore
    assert (store.attempts, store.backoff) == (3, 0.2)
    url = store.engine.url
    assert (url.get_backend_name(), url.host, url.port, url.database) == ("postgresql", postgres.host,
                                                                          postgres.port, database)
    assert postgres.password() not in store.where
    tracker = new_tracker(1)
    await store.save(tracker)
    assert stored(postgres, database) == labels(tracker.events)
    assert labels((await store.retrieve(SENDER)).events) == labels(tracker.events)


async def test_rasa_creates_it_from_endpoints_yml_on_sqlite(tmp_path):
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(f'tracker_store:\n  type: {RESILIENT}\n  dialect: "sqlite"\n'
                         f'  db: "{tmp_path / "conversations.db"}"\n')
    store = TrackerStore.create(read_endpoint_config(str(endpoints), "tracker_store"), domain=DOMAIN)
    assert type(store) is ResilientSQLTrackerStore and store.attempts == 5
    tracker = new_tracker(1, 2)
    await store.save(tracker)
    await store.save(tracker)  # saving again adds nothing
    with sqlite3.connect(tmp_path / "conversations.db") as db:
        rows = [json.loads(row[0]) for row in db.execute("SELECT data FROM events ORDER BY id")]
    assert [label(row) for row in rows] == labels(tracker.events)


def test_a_missing_database_driver_stops_rasa_instead_of_falling_back_to_memory(tmp_path):
    """Rasa's loader swallows ImportError from a custom store's constructor and keeps conversations in memory."""
    def create(store_type: str):
        endpoints = tmp_path / "endpoints.yml"
        endpoints.write_text(f'tracker_store:\n  type: {store_type}\n  dialect: "postgresql+pg8000"\n'
                             '  url: "127.0.0.1"\n  db: "rasa"\n')
        return TrackerStore.create(read_endpoint_config(str(endpoints), "tracker_store"), domain=DOMAIN)

    with pytest.warns(UserWarning, match="not found"):
        quietly = create("rasa.core.tracker_store.SQLTrackerStore")  # stock class, loaded by module path
    assert type(quietly) is InMemoryTrackerStore
    with pytest.raises(TrackerStoreConfigError, match="driver"):
        create(RESILIENT)


@pytest.mark.parametrize("options, message", [({"attempts": "many"}, "attempts must be a number"),
                                              ({"attempts": 0}, "attempts must be at least 1"),
                                              ({"backoff": -1}, "backoff must be at least 0")])
def test_bad_retry_settings_are_refused(tmp_path, options, message):
    with pytest.raises(TrackerStoreConfigError, match=message):
        ResilientSQLTrackerStore(domain=DOMAIN, db=str(tmp_path / "c.db"), **options)


# -- a PostgreSQL restart -------------------------------------------------------------------


async def test_resilient_store_survives_restarts_without_losing_or_duplicating(running, database):
    store = resilient(running, database)
    tracker = new_tracker(1, 2)
    await store.save(tracker)

    running.restart()
    retrieved = await store.retrieve(SENDER)  # a read is the first use after the restart
    assert labels(retrieved.events) == labels(tracker.events)

    add_turn(retrieved, 3)
    await store.save(retrieved)
    running.restart()
    add_turn(retrieved, 4)
    await store.save(retrieved)  # a write is the first use after the restart

    assert stored(running, database) == labels(retrieved.events)
    assert len(stored(running, database)) == 3 + 4 * 4


async def test_stock_sql_tracker_store_fails_on_first_use_after_a_restart(running, database):
    stock = SQLTrackerStore(domain=DOMAIN, **store_settings(running, database))
    tracker = new_tracker(1)
    await stock.save(tracker)

    running.restart()
    with pytest.raises(sa.exc.OperationalError):
        await stock.retrieve(SENDER)

    await stock.retrieve(SENDER)  # SQLAlchemy has dropped the dead pool by now
    running.restart()
    add_turn(tracker, 2)
    with pytest.raises(sa.exc.OperationalError):
        await stock.save(tracker)
    assert "user:question 2" not in stored(running, database)


@pytest.mark.parametrize("store_class", [SQLTrackerStore, ResilientSQLTrackerStore])
async def test_the_first_turn_after_a_restart_inside_rasas_fail_safe_wrapper(running, database, store_class):
    """What `rasa run` does: Agent wraps every tracker store in FailSafeTrackerStore, and the processor
    fetches the tracker, adds the turn's events and saves it (rasa/core/processor.py)."""
    store = FailSafeTrackerStore(store_class(domain=DOMAIN, **store_settings(running, database)))
    first = new_tracker(1)
    await store.save(first)

    running.restart()
    tracker = await store.get_or_create_tracker(SENDER)
    add_turn(tracker, 2)
    await store.save(tracker)  # no error reaches the caller in either case

    if store_class is SQLTrackerStore:
        # Stock: the patient's context is forgotten, and the turn never reaches the database.
        assert "user:question 1" not in labels(tracker.events)
        assert stored(running, database) == labels(first.events)
    else:
        assert labels(tracker.events) == labels(first.events) + labels(turn(2))
        assert stored(running, database) == labels(tracker.events)


@pytest.fixture
def broker(tmp_path) -> Iterator[FileEventBroker]:
    """Rasa's file event broker (one JSON event a line), as `event_broker: type: file` makes it."""
    broker = FileEventBroker(str(tmp_path / "events.jsonl"))
    yield broker
    for handler in list(broker.event_logger.handlers):  # Rasa hangs it on a shared logger
        handler.close()
        broker.event_logger.removeHandler(handler)


def published(broker: FileEventBroker) -> List[str]:
    return [label(json.loads(line)) for line in Path(broker.path).read_text().splitlines()]


async def test_a_save_in_flight_waits_for_the_database_to_come_back(running, database, broker):
    store = ResilientSQLTrackerStore(domain=DOMAIN, event_broker=broker, attempts=6, backoff=0.25,
                                     **store_settings(running, database))  # waits up to 7.75 s
    tracker = new_tracker(1)
    await store.save(tracker)

    running.stop()
    comeback = threading.Timer(1.0, running.start)
    comeback.start()
    add_turn(tracker, 2)
    started = time.monotonic()
    try:
        await store.save(tracker)
    finally:
        comeback.join()
    assert time.monotonic() - started >= 1.0  # it did wait for the database
    assert stored(running, database) == labels(tracker.events)
    assert published(broker) == labels(tracker.events)  # each event streamed once, retries or not


# -- when the database stays down ---------------------------------------------------------


async def test_it_fails_loudly_when_the_database_stays_down_and_loses_nothing_on_the_next_save(
        running, database, caplog):
    store = resilient(running, database, attempts=4, backoff=0.5)  # waits up to 3.5 s
    tracker = new_tracker(1)
    await store.save(tracker)

    running.stop()
    add_turn(tracker, 2)
    caplog.set_level(logging.WARNING, logger="tracker_stores.resilient_sql")
    started = time.monotonic()
    with pytest.raises(TrackerStoreUnavailable) as raised:
        await store.save(tracker)
    assert time.monotonic() - started >= 3.5  # waited 0.5, 1 and 2 s
    message = str(raised.value)
    assert "could not save a conversation" in message and "4 attempt(s)" in message
    assert f"{running.host}:{running.port}/{database}" in message
    assert running.password() not in message and "question 2" not in message
    retries = [r for r in caplog.records if r.name == "tracker_stores.resilient_sql"]
    assert [r.levelno for r in retries] == [logging.WARNING] * 3

    # Still down: the next operations try once and fail at once.
    started = time.monotonic()
    with pytest.raises(TrackerStoreUnavailable, match=r"could not read a conversation.*1 attempt\(s\)"):
        await store.retrieve(SENDER)
    assert time.monotonic() - started < 0.5

    running.start()
    await store.save(tracker)  # the same tracker again, once the database is back
    assert stored(running, database) == labels(tracker.events)

    running.stop()  # and a success brings the retries back
    comeback = threading.Timer(0.5, running.start)
    comeback.start()
    add_turn(tracker, 3)
    try:
        await store.save(tracker)
    finally:
        comeback.join()
    assert stored(running, database) == labels(tracker.events)


@pytest.fixture
def stock_fail_safe() -> Iterator[None]:
    """Rasa's FailSafeTrackerStore as it ships, without tracker_stores/fail_loudly.py."""
    fail_loudly.uninstall()
    try:
        yield
    finally:
        fail_loudly.install(TrackerStoreUnavailable)


async def test_stock_fail_safe_wrapper_answers_a_long_outage_from_a_forgotten_context(
        running, database, stock_fail_safe, caplog):
    """Without the fix: the database down for longer than the retries, Rasa's wrapper logs the error,
    starts the turn from an empty tracker, keeps its events in memory, and nothing fails."""
    assert not fail_loudly.installed()
    store = FailSafeTrackerStore(resilient(running, database, attempts=2, backoff=0.1))
    await store.save(new_tracker(1))
    running.stop()
    try:
        with caplog.at_level(logging.ERROR, logger="rasa.core.tracker_store"):
            tracker = await store.get_or_create_tracker(SENDER)  # no error reaches the caller
            add_turn(tracker, 2)
            await store.save(tracker)
    finally:
        running.start()
    assert "user:question 1" not in labels(tracker.events)  # the context is forgotten
    errors = [r.getMessage() for r in caplog.records if r.name == "rasa.core.tracker_store"]
    assert errors and "unreachable for" in errors[0]
    assert stored(running, database) == labels(new_tracker(1).events)  # and the turn is lost


async def test_with_the_fix_a_long_outage_fails_the_turn_loudly_and_loses_nothing(running, database):
    """With tracker_stores/fail_loudly.py (installed by importing the resilient store): the same outage
    raises TrackerStoreUnavailable out of Rasa's wrapper, before any fallback; the turn, sent again once
    the database is back, is stored with its context, once."""
    assert fail_loudly.installed()
    store = FailSafeTrackerStore(resilient(running, database, attempts=2, backoff=0.1))
    await store.save(new_tracker(1))
    running.stop()
    try:
        with pytest.raises(TrackerStoreUnavailable, match="could not read a conversation"):
            await store.get_or_create_tracker(SENDER)
        tracker = new_tracker(1)  # a turn whose read worked just before the outage
        add_turn(tracker, 2)
        with pytest.raises(TrackerStoreUnavailable, match="could not save a conversation"):
            await store.save(tracker)
        with pytest.raises(TrackerStoreUnavailable):
            await store.keys()
    finally:
        running.start()
    tracker = await store.get_or_create_tracker(SENDER)  # the patient sends the message again
    assert labels(tracker.events) == labels(new_tracker(1).events)
    add_turn(tracker, 2)
    await store.save(tracker)
    assert stored(running, database) == labels(new_tracker(1, 2).events)
    # Other errors are still Rasa's to handle: the wrapper swallows them as before.
    broken = FailSafeTrackerStore(InMemoryTrackerStore(DOMAIN))
    broken._tracker_store.retrieve = lambda sender: (_ for _ in ()).throw(RuntimeError("other"))  # type: ignore
    assert await broken.retrieve(SENDER) is None


async def test_other_database_errors_are_raised_at_once(running, database):
    store = resilient(running, database, attempts=5, backoff=2.0)
    await store.save(new_tracker(1))
    engine = sa.create_engine(running.url(database), poolclass=sa.pool.NullPool)
    with engine.begin() as db:
        db.execute(sa.text("DROP TABLE events"))
    engine.dispose()
    started = time.monotonic()
    with pytest.raises(sa.exc.ProgrammingError):
        await store.retrieve(SENDER)
    assert time.monotonic() - started < 2.0  # not retried
