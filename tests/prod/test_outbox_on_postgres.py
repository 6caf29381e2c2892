"""The notification outbox in a live PostgreSQL (OUTBOX_DATABASE_URL), as the replicated set-up uses it."""
from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from common.outbox import Outbox, OutboxSettings, PostgresOutbox, database_url, escalation_notifications
from review.retention import clean_outbox
from review.tracker import TrackerReader, notifications
from tests.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


def make_outbox(tmp_path, postgres, database, url=None) -> Outbox:
    return Outbox(OutboxSettings(db_path=tmp_path / "unused.db", webhook_url=url,
                                 log_path=tmp_path / "log.jsonl", database_url=postgres.url(database)))


def payloads(conversation, *signs):
    return escalation_notifications(conversation, list(signs), [], time.time())


def make_due(postgres, database) -> None:
    engine = sa.create_engine(postgres.url(database))
    with engine.begin() as db:
        db.execute(sa.text("UPDATE clinic_notifications SET next_attempt_at = 0, lease_until = 0"))
    engine.dispose()


def test_the_url_picks_postgresql_and_sqlite_stays_the_default(tmp_path, postgres, database, monkeypatch):
    assert isinstance(make_outbox(tmp_path, postgres, database), PostgresOutbox)
    assert not (tmp_path / "unused.db").exists()
    sqlite_box = Outbox(OutboxSettings(db_path=tmp_path / "o.db", webhook_url=None, log_path=tmp_path / "l"))
    assert type(sqlite_box) is Outbox and (tmp_path / "o.db").exists()
    monkeypatch.delenv("OUTBOX_DATABASE_URL", raising=False)
    assert database_url({"database_url": "${UNSET_VARIABLE_HERE}"}) is None
    assert database_url({"database_url": "sqlite:///x.db"}) is None
    monkeypatch.setenv("OUTBOX_DATABASE_URL", "postgresql://u:p@h/d")
    assert database_url({}) == "postgresql://u:p@h/d"


def test_once_per_conversation_and_sign_from_two_writers(tmp_path, postgres, database):
    first, second = make_outbox(tmp_path, postgres, database), make_outbox(tmp_path, postgres, database)
    assert first.enqueue("c1", payloads("c1", "foot_drop", "bladder_control")) == ["foot_drop", "bladder_control"]
    assert second.enqueue("c1", payloads("c1", "foot_drop")) == []
    assert second.enqueue("c2", payloads("c2", "foot_drop")) == ["foot_drop"]
    assert len(first.pending()) == 3
    assert first.status("c1", ["foot_drop", "other"]) == {"foot_drop": "queued", "other": "unknown"}


def test_two_workers_deliver_each_notification_exactly_once(tmp_path, postgres, database, receiver):
    boxes = [make_outbox(tmp_path, postgres, database, receiver.url) for _ in range(2)]
    for n in range(20):
        boxes[n % 2].enqueue(f"c{n}", payloads(f"c{n}", "foot_drop"))
    threads = [threading.Thread(target=box.deliver_due) for box in boxes for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keys = receiver.keys()
    assert sorted(keys) == sorted(f"c{n}:foot_drop" for n in range(20))
    assert boxes[0].pending() == []


def test_a_target_that_is_down_is_retried_and_the_review_app_shows_it(tmp_path, postgres, database, receiver):
    box = make_outbox(tmp_path, postgres, database, receiver.url)
    box.enqueue("c1", payloads("c1", "saddle_numbness"))
    receiver.status = 503
    assert box.deliver_due() == 0
    [row] = notifications(postgres.url(database), "c1")
    assert row["status"] == "retrying" and row["attempts"] == 1 and "503" in row["last_error"]
    receiver.status = 200
    make_due(postgres, database)
    assert box.deliver_due() == 1
    assert receiver.keys() == ["c1:saddle_numbness"]
    [row] = notifications(postgres.url(database), "c1")
    assert row["status"] == "delivered" and row["delivered_at"]


def test_a_database_restart_costs_a_retry_not_the_worker(tmp_path, running, database, receiver):
    box = make_outbox(tmp_path, running, database, receiver.url)
    box.enqueue("c1", payloads("c1", "foot_drop"))
    running.restart()
    assert box.deliver_due() == 1  # pre-ping replaced the dead connection
    assert box.enqueue("c1", payloads("c1", "foot_drop")) == []


def test_the_retention_purge_cleans_the_outbox_in_postgresql(tmp_path, postgres, database, receiver):
    box = make_outbox(tmp_path, postgres, database, receiver.url)
    for conversation in ("gone", "kept", "pending"):
        box.enqueue(conversation, payloads(conversation, "foot_drop"))
    assert box.deliver_due() == 3
    box.enqueue("pending2", payloads("pending2", "foot_drop"))  # not delivered yet
    engine = sa.create_engine(postgres.url(database))
    with engine.begin() as db:  # a tracker store with one conversation left in it
        db.execute(sa.text("CREATE TABLE events (id SERIAL PRIMARY KEY, sender_id TEXT, type_name TEXT, "
                           "timestamp FLOAT, intent_name TEXT, action_name TEXT, data TEXT)"))
        db.execute(sa.text("INSERT INTO events (sender_id, type_name, timestamp, data) "
                           "VALUES ('kept', 'user', 1, '{}')"))
    engine.dispose()
    reader = TrackerReader(postgres.url(database))
    deleted, kept = clean_outbox(postgres.url(database), ["pending2"], time.time() + 1, reader)
    assert (deleted, kept) == (2, 1)  # "gone" and "pending" (no events left); "pending2" still to deliver
    assert [row["conversation_id"] for row in box.pending()] == ["pending2"]
    assert box.status("kept", ["foot_drop"]) == {"foot_drop": "delivered"}
