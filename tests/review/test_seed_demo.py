"""The demo data: deterministic, written through Rasa's SQLTrackerStore, with every kind of conversation."""
from __future__ import annotations

import sqlite3

from review.store import ListFilter, Store
from review.tracker import TrackerReader
from tests.review.conftest import seed


def rows(path):
    with sqlite3.connect(path / "conversations.db") as db:
        return db.execute("SELECT sender_id, type_name, timestamp, intent_name, action_name, data "
                          "FROM events ORDER BY id").fetchall()


def test_the_same_seed_gives_the_same_data(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    seed(first, 25)
    seed(second, 25)
    assert rows(first) == rows(second)
    with sqlite3.connect(first / "outbox.db") as a, sqlite3.connect(second / "outbox.db") as b:
        query = "SELECT conversation_id, sign, payload, created_at, delivered_at FROM clinic_notifications ORDER BY id"
        assert a.execute(query).fetchall() == b.execute(query).fetchall()


def test_the_demo_has_every_kind_of_conversation(small_seed, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'r.db'}", TrackerReader(f"sqlite:///{small_seed / 'conversations.db'}"))
    store.refresh()

    def count(**args):
        return store.list_page(ListFilter.parse(args), 0.6, 10).total

    assert count() == 40
    for args in ({"escalated": "yes"}, {"checklist": "any"}, {"fallback": "1"}, {"unanswered": "1"},
                 {"lowconf": "1"}, {"q": "<script>"}, {"q": "@example.org"}):
        assert count(**args) > 0, args
    with sqlite3.connect(small_seed / "outbox.db") as db:
        statuses = {row[0] is not None for row in db.execute("SELECT delivered_at FROM clinic_notifications")}
    assert True in statuses
