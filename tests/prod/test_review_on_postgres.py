"""The clinic review app over a live PostgreSQL tracker store, configured as in production.

Demo conversations (review.seed_demo, the review tests' own data) are replayed into
PostgreSQL through Rasa's SQLTrackerStore; the app finds them from an endpoints.yml with
``dialect: postgresql`` and its settings in ``${TRACKER_DB_…}`` variables (type SQL, or
the resilient store), and keeps its own data in PostgreSQL too (REVIEW_DATABASE_URL). The same
conversations in SQLite, where tests/review checks every filter against the raw events,
are the reference: the list, every filter, every transcript and the statistics must come
out the same. Retention is checked against the rows left in PostgreSQL, and the app
against a PostgreSQL restart and against events committed after others with higher ids.
"""
from __future__ import annotations

import asyncio
import html
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import warnings
from datetime import date
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain

from common.settings import PROJECT_DIR
from review.app import create_app
from review.config import ReviewConfig
from review.retention import purge
from review.store import ListFilter
from review.tracker import TrackerReader
from scripts.prod.postgres import Cluster
from tests.prod.conftest import endpoints_file as tracker_store_endpoints, new_database, store_settings
from tests.review.conftest import ADMIN, VIEWER, add_conversation, config_for, csrf_of, do_login, seed

CONVERSATIONS = 200
DAY = 86400
RESILIENT = "tracker_stores.resilient_sql.ResilientSQLTrackerStore"


@pytest.fixture(scope="module")
def domain() -> Domain:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Domain.load(str(PROJECT_DIR / "domain"))


def copy_to_postgres(sqlite_file: Path, cluster: Cluster, database: str, domain: Domain) -> None:
    """Every conversation of a SQLite tracker store, saved into PostgreSQL by Rasa's SQLTrackerStore
    (in the order they were first written)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = SQLTrackerStore(domain=domain, dialect="sqlite", db=str(sqlite_file))
        target = SQLTrackerStore(domain=domain, **store_settings(cluster, database))
    with sqlite3.connect(sqlite_file) as db:
        senders = [row[0] for row in db.execute("SELECT sender_id FROM events GROUP BY sender_id ORDER BY min(id)")]

    async def copy() -> None:
        for sender in senders:
            await target.save(await source.retrieve_full_tracker(sender))

    asyncio.run(copy())
    source.engine.dispose()
    target.engine.dispose()


def endpoints_file(directory: Path, store_type: str = "SQL") -> Path:
    """endpoints.yml's tracker_store as the README gives it, every value from the environment."""
    return tracker_store_endpoints(directory / f"endpoints-{store_type.rsplit('.', 1)[-1].lower()}.yml", store_type)


def tracker_env(cluster: Cluster, database: str) -> Dict[str, str]:
    """The variables `python3 -m scripts.prod.postgres env` prints, for another database."""
    return dict(cluster.env(), TRACKER_DB_NAME=database)


def production_config(cluster: Cluster, tracker_db: str, directory: Path, outbox: Path,
                      store_type: str = "SQL") -> ReviewConfig:
    """ReviewConfig.from_env as `make run` builds it: endpoints.yml, REVIEW_DATABASE_URL, OUTBOX_DB."""
    env = {"REVIEW_DATABASE_URL": cluster.url(new_database(cluster, "review")), "OUTBOX_DB": str(outbox)}
    with pytest.MonkeyPatch.context() as patch:  # Rasa's reader takes ${VARS} from os.environ
        for key, value in tracker_env(cluster, tracker_db).items():
            patch.setenv(key, value)
        return ReviewConfig.from_env(env, endpoints_file=endpoints_file(directory, store_type))


def app_for(config: ReviewConfig):
    app = create_app(config)
    app.testing = True
    accounts = app.extensions["review"]["accounts"]
    accounts.create_user(ADMIN[0], ADMIN[1], "admin")
    accounts.create_user(VIEWER[0], VIEWER[1], "viewer")
    return app


def signed_in(app):
    client = app.test_client()
    assert do_login(client, *ADMIN).status_code == 302
    return client


def exported_ids(client, query: str = "") -> List[str]:
    """The conversation ids the list shows for a query, newest first (through the JSON export)."""
    data = json.loads(client.get(f"/export/conversations.json?{query}").get_data(as_text=True))
    store = client.application.extensions["review"]["store"]
    return [store.summary_by_pk(item["review_id"])["conversation_id"] for item in data["items"]]


@pytest.fixture(scope="module")
def demo(tmp_path_factory, postgres, domain) -> Dict[str, object]:
    """The demo conversations in SQLite (the reference) and, copied, in PostgreSQL."""
    directory = tmp_path_factory.mktemp("pg-demo")
    seed(directory, CONVERSATIONS)
    database = new_database(postgres, "tracker")
    copy_to_postgres(directory / "conversations.db", postgres, database, domain)
    return {"dir": directory, "database": database}


@pytest.fixture(scope="module")
def pg_app(demo, postgres, tmp_path_factory):
    directory = tmp_path_factory.mktemp("pg-app")
    return app_for(production_config(postgres, demo["database"], directory, demo["dir"] / "outbox.db"))


@pytest.fixture(scope="module")
def sqlite_app(demo, tmp_path_factory):
    return app_for(config_for(demo["dir"], tmp_path_factory.mktemp("sqlite-app") / "review.db"))


@pytest.fixture(scope="module")
def pg_client(pg_app):
    return signed_in(pg_app)


@pytest.fixture(scope="module")
def sqlite_client(sqlite_app):
    return signed_in(sqlite_app)


def pg_events(cluster: Cluster, database: str, sql: str) -> List[tuple]:
    engine = sa.create_engine(cluster.url(database), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as db:
            return [tuple(row) for row in db.execute(sa.text(sql))]
    finally:
        engine.dispose()


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize("store_type", ["SQL", RESILIENT])
def test_the_app_reads_postgresql_from_endpoints_yml(postgres, demo, tmp_path, store_type):
    config = production_config(postgres, demo["database"], tmp_path, demo["dir"] / "outbox.db", store_type)
    url = config.tracker_url
    assert (url.get_backend_name(), url.host, url.port, url.database) == (
        "postgresql", postgres.host, postgres.port, demo["database"])
    assert config.database_url.startswith("postgresql://")
    reader = TrackerReader(url)
    assert reader.engine.dialect.name == "postgresql" and reader.available()
    assert len(reader.senders_since(0, reader.max_event_id())) == CONVERSATIONS
    assert postgres.password() not in reader.fingerprint()
    reader.engine.dispose()


def test_the_copy_in_postgresql_holds_every_event(postgres, demo):
    counts = "SELECT count(*), count(DISTINCT sender_id) FROM events"
    with sqlite3.connect(demo["dir"] / "conversations.db") as db:
        expected = db.execute(counts).fetchone()
    assert pg_events(postgres, demo["database"], counts) == [expected]


# -- the list, its filters, transcripts ---------------------------------------------------------


def test_the_list_over_postgresql(pg_app, pg_client, sqlite_client):
    page = pg_client.get("/").get_data(as_text=True)
    assert f"<strong>{CONVERSATIONS}</strong> conversations" in page and "could not be read" not in page
    assert page.count('href="/conversations/') == 50 and "Page 1 of 4" in page
    assert pg_app.extensions["review"]["store"].engine.dialect.name == "postgresql"  # its own data too
    assert exported_ids(pg_client) == exported_ids(sqlite_client)


@pytest.mark.parametrize("query", [
    "escalated=yes", "escalated=no", "checklist=any", "checklist=none", "checklist=discuss_surgery",
    "checklist=urgent_care", "checklist=incomplete", "fallback=1", "unanswered=1", "lowconf=1",
    "q=toilet+paper", "q=BLADDER", "from=2025-06-20&to=2025-06-25", "escalated=yes&checklist=urgent_care",
])
def test_every_filter_gives_what_it_gives_over_sqlite(pg_client, sqlite_client, query):
    over_postgres = exported_ids(pg_client, query)
    assert over_postgres == exported_ids(sqlite_client, query)
    assert 0 < len(over_postgres) < CONVERSATIONS, query


def test_the_escalated_filter_matches_postgresqls_raw_events(pg_client, postgres, demo):
    raw = pg_events(postgres, demo["database"], "SELECT sender_id, data FROM events WHERE type_name = 'bot'")
    escalated = {sender for sender, data in raw
                 if ((json.loads(data).get("data") or {}).get("custom") or {}).get("escalation")}
    assert escalated and set(exported_ids(pg_client, "escalated=yes")) == escalated


def test_every_transcript_reads_the_same_as_from_sqlite(postgres, demo):
    over_postgres = TrackerReader(postgres.url(demo["database"]))
    over_sqlite = TrackerReader(f"sqlite:///{demo['dir'] / 'conversations.db'}")
    senders = over_sqlite.senders_since(0, over_sqlite.max_event_id())
    assert len(senders) == CONVERSATIONS
    for sender in senders:
        expected = over_sqlite.conversation(sender)
        assert over_postgres.conversation(sender) == expected, sender
    over_postgres.engine.dispose()


def test_a_transcript_page_over_postgresql(pg_app, pg_client):
    store = pg_app.extensions["review"]["store"]
    row = next(store.iter_filtered(ListFilter(escalated="yes", checklist="urgent_care"), 0.6))
    convo = store.reader.conversation(row["conversation_id"])
    response = pg_client.get(f"/conversations/{row['id']}")
    assert response.status_code == 200
    page = html.unescape(response.get_data(as_text=True))
    shown = [m.text for m in convo.user_messages if not re.search(r"\d{3}|@", m.text)]  # contacts are masked
    assert shown and all(text in page for text in shown)
    assert all(label in page for escalation in convo.escalations for label in escalation["labels"])
    assert "urgent care" in page


def test_tags_notes_and_handled_marks_in_postgresql(postgres, demo, tmp_path):
    app = app_for(production_config(postgres, demo["database"], tmp_path, demo["dir"] / "outbox.db"))
    store = app.extensions["review"]["store"]
    store.refresh()
    escalated = [r["conversation_id"] for r in store.iter_filtered(ListFilter(escalated="yes"), 0.6)]
    assert store.mark_handled(escalated[0], "alice") and not store.mark_handled(escalated[0], "bob")
    assert store.add_tag(escalated[1], "callback", "alice") and not store.add_tag(escalated[1], "callback", "bob")
    store.add_note(escalated[1], "called back", "alice")
    client = signed_in(app)
    assert exported_ids(client, "escalated=handled") == [escalated[0]]
    assert set(exported_ids(client, "escalated=unhandled")) == set(escalated[1:])
    assert exported_ids(client, "tag=callback") == [escalated[1]]
    assert [n["text"] for n in store.notes_of(escalated[1])] == ["called back"]


def test_statistics_over_postgresql(pg_app, pg_client, sqlite_app):
    assert pg_client.get("/stats?from=2025-05-01&to=2025-06-30").status_code == 200
    span = (date(2025, 5, 1), date(2025, 6, 30))
    over_postgres = pg_app.extensions["review"]["store"].stats(*span, 0.6)
    assert over_postgres["totals"]["conversations"] > 0
    assert over_postgres == sqlite_app.extensions["review"]["store"].stats(*span, 0.6)


# -- new events, and events committed late ---------------------------------------------------


def test_events_committed_late_with_lower_ids_are_picked_up(postgres, tmp_path, domain):
    """PostgreSQL takes an event's id at INSERT and shows it at COMMIT: the refresh must not skip it."""
    now = time.time()
    for sender, age in (("early", 60), ("late", 30), ("newer", 10)):
        (tmp_path / sender).mkdir()
        add_conversation(tmp_path / sender, sender, f"a question from {sender}", ts=now - age)
    database = new_database(postgres)
    copy_to_postgres(tmp_path / "early" / "conversations.db", postgres, database, domain)
    app = app_for(production_config(postgres, database, tmp_path, tmp_path / "outbox.db"))
    store = app.extensions["review"]["store"]
    store.refresh()
    with sqlite3.connect(tmp_path / "late" / "conversations.db") as db:  # the rows Rasa wrote, as they are
        late_rows = [dict(zip(("s", "t", "ts", "i", "a", "d"), row)) for row in db.execute(
            "SELECT sender_id, type_name, timestamp, intent_name, action_name, data FROM events ORDER BY id")]

    engine = sa.create_engine(postgres.url(database), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as late:
            transaction = late.begin()
            late.execute(sa.text("INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, "
                                 "data) VALUES (:s, :t, :ts, :i, :a, :d)"), late_rows)  # ids taken, not visible
            copy_to_postgres(tmp_path / "newer" / "conversations.db", postgres, database, domain)  # higher ids
            store.refresh()
            assert store.summary_by_id("newer") is not None and store.summary_by_id("late") is None
            transaction.commit()
    finally:
        engine.dispose()
    store.refresh()
    assert store.summary_by_id("late")["user_turns"] == 1
    assert store.list_page(ListFilter(), 0.6, 50).total == 3


# -- retention -------------------------------------------------------------------------------


@pytest.fixture
def aged(tmp_path, postgres, domain) -> Iterator[Dict[str, object]]:
    """Conversations of different ages (as tests/review/test_retention.py has them), in PostgreSQL."""
    now = time.time()
    add_conversation(tmp_path, "recent", "what is a calcified disc?", ts=now - 5 * DAY)
    add_conversation(tmp_path, "mixed", "first question long ago", ts=now - 400 * DAY)
    add_conversation(tmp_path, "mixed", "and a follow-up this week", ts=now - 2 * DAY)
    add_conversation(tmp_path, "old-a", "an old question", ts=now - 200 * DAY)
    add_conversation(tmp_path, "old-b", "a very old question", ts=now - 400 * DAY)
    database = new_database(postgres)
    copy_to_postgres(tmp_path / "conversations.db", postgres, database, domain)
    yield {"dir": tmp_path, "database": database}
    postgres.drop_database(database)


def senders(cluster: Cluster, database: str) -> Dict[str, int]:
    return dict(pg_events(cluster, database, "SELECT sender_id, count(*) FROM events GROUP BY sender_id"))


def test_retention_purges_old_conversations_from_postgresql(postgres, aged, tmp_path):
    app = app_for(production_config(postgres, aged["database"], tmp_path, tmp_path / "outbox.db"))
    ext = app.extensions["review"]
    ext["store"].refresh()
    ext["store"].add_tag("old-a", "follow-up", "alice")
    before = senders(postgres, aged["database"])
    assert set(before) == {"recent", "mixed", "old-a", "old-b"}

    preview = purge(ext["store"], ext["audit"], 100, "tester", dry_run=True)
    assert sorted(preview.conversation_ids) == ["old-a", "old-b"]
    assert senders(postgres, aged["database"]) == before

    client = signed_in(app)
    done = client.post("/admin/purge", data={"csrf_token": csrf_of(client), "days": "100", "step": "confirm",
                                             "confirm": "DELETE"})
    assert done.status_code == 200 and "deleted 2 conversation(s)" in done.get_data(as_text=True)
    assert senders(postgres, aged["database"]) == {"recent": before["recent"], "mixed": before["mixed"]}
    assert ext["store"].summary_by_id("old-a") is None and ext["store"].tags_of(["old-a"]) == {}
    audit = ext["audit"]
    assert "old-a" not in str(audit.entries())
    assert len(audit.entries(conversation_id=audit.pseudonym("old-a"))) == 1
    assert purge(ext["store"], ext["audit"], 100, "tester").conversations == 0


def test_the_purge_command_against_postgresql_in_a_real_process(postgres, aged, tmp_path):
    """The cron line from the README, with endpoints.yml and REVIEW_DATABASE_URL pointing at PostgreSQL."""
    env = dict(os.environ, **tracker_env(postgres, aged["database"]), PYTHONPATH=str(PROJECT_DIR),
               PYTHONWARNINGS="ignore", ENDPOINTS_FILE=str(endpoints_file(tmp_path, RESILIENT)),
               OUTBOX_DB=str(tmp_path / "outbox.db"),
               REVIEW_DATABASE_URL=postgres.url(new_database(postgres, "review")))
    command = [sys.executable, "-m", "review.manage", "purge", "--older-than-days", "300"]
    result = subprocess.run(command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "deleted 1 conversation(s)" in result.stdout
    assert set(senders(postgres, aged["database"])) == {"recent", "mixed", "old-a"}


# -- a PostgreSQL restart ----------------------------------------------------------------------


def test_the_app_keeps_working_across_a_postgresql_restart(postgres, aged, tmp_path, domain):
    app = app_for(production_config(postgres, aged["database"], tmp_path, tmp_path / "outbox.db"))
    client = signed_in(app)
    assert "<strong>4</strong> conversations" in client.get("/").get_data(as_text=True)
    pk = app.extensions["review"]["store"].summary_by_id("recent")["id"]

    postgres.restart()
    more = tmp_path / "more"
    more.mkdir()
    add_conversation(more, "after-restart", "a question after the restart")
    copy_to_postgres(more / "conversations.db", postgres, aged["database"], domain)
    listing = client.get("/")
    assert listing.status_code == 200
    body = listing.get_data(as_text=True)
    assert "could not be read" not in body and "<strong>5</strong> conversations" in body
    assert client.get(f"/conversations/{pk}").status_code == 200
