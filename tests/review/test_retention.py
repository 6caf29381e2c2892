"""Retention: conversations older than N days leave the tracker store and the app, and it is audited.

The tracker store is a real SQLite file written by Rasa's own SQLTrackerStore.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest

from review import manage
from review.retention import RetentionError, check_days, purge
from tests.review.conftest import ADMIN, add_conversation, config_for, csrf_of, pk_of

DAY = 86400
PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def senders(tracker_dir):
    with sqlite3.connect(tracker_dir / "conversations.db") as db:
        return {row[0]: row[1] for row in db.execute("SELECT sender_id, count(*) FROM events GROUP BY sender_id")}


@pytest.fixture
def aged(tmp_path):
    """Conversations of different ages; the oldest written last, so it holds the highest event ids."""
    now = time.time()
    add_conversation(tmp_path, "recent", "what is a calcified disc?", ts=now - 5 * DAY)
    add_conversation(tmp_path, "mixed", "first question long ago", ts=now - 400 * DAY)
    add_conversation(tmp_path, "mixed", "and a follow-up this week", ts=now - 2 * DAY)
    add_conversation(tmp_path, "old-a", "an old question", ts=now - 200 * DAY)
    add_conversation(tmp_path, "old-b", "a very old question", ts=now - 400 * DAY)
    return tmp_path


def review_marks(app, conversation_id):
    store = app.extensions["review"]["store"]
    return {"summary": store.summary_by_id(conversation_id) is not None,
            "tags": store.tags_of([conversation_id]).get(conversation_id, []),
            "notes": len(store.notes_of(conversation_id)),
            "handled": store.handled_of(conversation_id) is not None}


def mark(app, conversation_id):
    store = app.extensions["review"]["store"]
    store.refresh()
    store.add_tag(conversation_id, "follow-up", "alice")
    store.add_note(conversation_id, "called back", "alice")
    store.mark_handled(conversation_id, "alice")


def test_dry_run_counts_and_deletes_nothing(aged, make_app):
    app = make_app(aged)
    ext = app.extensions["review"]
    before = senders(aged)
    result = purge(ext["store"], ext["audit"], 100, "tester", dry_run=True)
    assert sorted(result.conversation_ids) == ["old-a", "old-b"] and result.events_deleted == 0
    assert senders(aged) == before
    assert ext["audit"].entries(action="purge") == []


def test_purge_deletes_old_conversations_everywhere_and_audits(aged, make_app):
    app = make_app(aged)
    ext = app.extensions["review"]
    for conversation in ("old-a", "recent"):
        mark(app, conversation)
    before = senders(aged)
    result = purge(ext["store"], ext["audit"], 100, "tester", ip="192.0.2.3")
    assert sorted(result.conversation_ids) == ["old-a", "old-b"]
    assert result.events_deleted == before["old-a"] + before["old-b"]
    assert set(senders(aged)) == {"recent", "mixed"}  # a conversation active this week stays whole
    assert senders(aged)["mixed"] == before["mixed"]
    assert review_marks(app, "old-a") == {"summary": False, "tags": [], "notes": 0, "handled": False}
    assert review_marks(app, "recent") == {"summary": True, "tags": ["follow-up"], "notes": 1, "handled": True}
    rows = ext["audit"].entries(action="purge")
    pseudonyms = sorted(ext["audit"].pseudonym(cid) for cid in ("old-a", "old-b"))
    assert sorted(r["conversation_id"] for r in rows if r["conversation_id"]) == pseudonyms
    summary = [r for r in rows if r["conversation_id"] is None][0]
    assert summary["actor"] == "tester" and summary["ip"] == "192.0.2.3"
    assert "deleted 2 conversation(s)" in summary["detail"]
    # Nothing older is left, and a second run has nothing to do.
    assert purge(ext["store"], ext["audit"], 100, "tester").conversations == 0


def test_conversations_after_a_purge_are_still_picked_up(aged, make_app):
    """SQLite reuses the highest ids once they are deleted: the summary must not skip new events."""
    app = make_app(aged)
    ext = app.extensions["review"]
    ext["store"].refresh()
    purge(ext["store"], ext["audit"], 100, "tester")
    add_conversation(aged, "after-purge", "a new question after the purge")
    ext["store"].refresh()
    assert ext["store"].summary_by_id("after-purge") is not None
    assert ext["store"].list_page(_all(), 0.6, 50).total == 3


def _all():
    from review.store import ListFilter
    return ListFilter()


@pytest.mark.parametrize("days", [0, -3, "abc", "", 10**7])
def test_bad_day_counts_are_refused(days):
    with pytest.raises(RetentionError):
        check_days(days)


def test_admin_purges_from_the_app_with_confirmation(aged, make_app, sign_in):
    app = make_app(aged)
    client = sign_in(app)
    token = csrf_of(client)
    preview = client.post("/admin/purge", data={"csrf_token": token, "days": "100", "step": "preview"})
    assert preview.status_code == 200 and "would delete <strong>2</strong>" in preview.get_data(as_text=True)
    unconfirmed = client.post("/admin/purge", data={"csrf_token": token, "days": "100", "step": "confirm",
                                                    "confirm": "yes"})
    assert unconfirmed.status_code == 400 and len(senders(aged)) == 4
    assert client.post("/admin/purge", data={"csrf_token": token, "days": "0", "step": "preview"}).status_code == 400
    done = client.post("/admin/purge", data={"csrf_token": token, "days": "100", "step": "confirm",
                                             "confirm": "DELETE"})
    assert done.status_code == 200 and "deleted 2 conversation(s)" in done.get_data(as_text=True)
    assert set(senders(aged)) == {"recent", "mixed"}
    assert app.extensions["review"]["audit"].entries(action="purge", conversation_id=None)[0]["actor"] == ADMIN[0]
    assert client.get(f"/conversations/{pk_of(app, 'recent')}").status_code == 200


def test_purge_command(aged, tmp_path, capsys):
    config = config_for(aged, tmp_path / "review.db")
    assert manage.main(["purge", "--older-than-days", "100", "--dry-run"], config=config) == 0
    assert "Dry run: older than 100 days: would delete 2 conversation(s)." in capsys.readouterr().out
    assert len(senders(aged)) == 4
    assert manage.main(["purge", "--older-than-days", "0"], config=config) == 1
    assert manage.main(["purge", "--older-than-days", "100"], config=config) == 0
    assert "deleted 2 conversation(s)" in capsys.readouterr().out
    assert set(senders(aged)) == {"recent", "mixed"}


def test_purge_command_in_a_real_process(aged, tmp_path):
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {aged / 'conversations.db'}\n")
    env = dict(os.environ, PYTHONPATH=PROJECT, ENDPOINTS_FILE=str(endpoints), PYTHONWARNINGS="ignore",
               REVIEW_DATABASE_URL=f"sqlite:///{tmp_path / 'review.db'}", OUTBOX_DB=str(tmp_path / "outbox.db"))
    result = subprocess.run([sys.executable, "-m", "review.manage", "purge", "--older-than-days", "300"],
                            cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "deleted 1 conversation(s)" in result.stdout
    assert set(senders(aged)) == {"recent", "mixed", "old-a"}


# -- what a purge leaves elsewhere: the audit log and the outbox -----------------


def test_purged_ids_are_pseudonymised_in_the_whole_audit_log(aged, make_app, sign_in):
    app = make_app(aged)
    ext = app.extensions["review"]
    audit = ext["audit"]
    admin = sign_in(app)
    for cid in ("old-a", "recent"):
        assert admin.get(f"/conversations/{pk_of(app, cid)}").status_code == 200
    admin.get("/export/conversations.csv").get_data()
    purge(ext["store"], audit, 100, "tester")

    everything = str(audit.entries())
    assert "old-a" not in everything and "old-b" not in everything
    pseudonym = audit.pseudonym("old-a")
    assert pseudonym.startswith("purged:") and len(pseudonym) == len("purged:") + 16
    assert pseudonym != audit.pseudonym("old-b")
    assert [r["action"] for r in audit.entries(conversation_id=pseudonym)] == ["view", "export", "purge"]
    assert [r["action"] for r in audit.entries(conversation_id="recent")] == ["view", "export"]  # kept as is
    # An admin who knows the id still finds what happened to it.
    page = admin.get("/admin/audit?conversation=old-a").get_data(as_text=True)
    assert "3 entries" in page and pseudonym in page and ">old-a<" not in page
    # The same key next time (it is kept in the database), so the pseudonyms stay comparable.
    again = make_app(aged, app_db=ext["store"].engine.url.database, users=False)
    assert again.extensions["review"]["audit"].pseudonym("old-a") == pseudonym


def _outbox(tracker_dir):
    from common.outbox import Outbox, OutboxSettings
    return Outbox(OutboxSettings(db_path=tracker_dir / "outbox.db", webhook_url=None,
                                 log_path=tracker_dir / "notifications.jsonl"))


def _notifications(tracker_dir):
    with sqlite3.connect(tracker_dir / "outbox.db") as db:
        return sorted((r[0], r[1], r[2] is not None) for r in db.execute(
            "SELECT conversation_id, sign, delivered_at FROM clinic_notifications"))


def test_purge_deletes_delivered_notifications_and_keeps_undelivered_ones(aged, make_app):
    outbox = _outbox(aged)
    now = time.time()
    for cid, age in (("old-a", 200), ("old-b", 400), ("recent", 5)):
        outbox.enqueue(cid, {"foot_drop": {"conversation_id": cid, "sign": "foot_drop"}})
    with sqlite3.connect(aged / "outbox.db") as db:
        for cid, age in (("old-a", 200), ("old-b", 400), ("recent", 5)):
            db.execute("UPDATE clinic_notifications SET created_at = ? WHERE conversation_id = ?",
                       (now - age * DAY, cid))
        # old-a's and recent's were delivered; old-b's is still waiting (the clinic's webhook is down).
        db.execute("UPDATE clinic_notifications SET delivered_at = ? WHERE conversation_id IN ('old-a', 'recent')",
                   (now,))
    app = make_app(aged)
    ext = app.extensions["review"]
    result = purge(ext["store"], ext["audit"], 100, "tester", outbox_path=aged / "outbox.db")
    assert (result.notifications_deleted, result.notifications_kept) == (1, 1)
    assert "1 delivered clinic notification(s) deleted" in result.describe()
    assert "1 undelivered clinic notification(s) kept in the outbox so they are still sent" in result.describe()
    assert _notifications(aged) == [("old-b", "foot_drop", False), ("recent", "foot_drop", True)]
    assert [row["conversation_id"] for row in outbox.pending()] == ["old-b"]  # still to be sent

    # Once it has gone out, the next purge deletes it too (nothing else to purge that day).
    with sqlite3.connect(aged / "outbox.db") as db:
        db.execute("UPDATE clinic_notifications SET delivered_at = ? WHERE conversation_id = 'old-b'", (now,))
    later = purge(ext["store"], ext["audit"], 100, "tester", outbox_path=aged / "outbox.db")
    assert later.conversations == 0 and later.notifications_deleted == 1
    assert _notifications(aged) == [("recent", "foot_drop", True)]


def test_the_app_cleans_its_configured_outbox(aged, make_app, sign_in):
    outbox = _outbox(aged)
    outbox.enqueue("old-a", {"foot_drop": {"conversation_id": "old-a", "sign": "foot_drop"}})
    with sqlite3.connect(aged / "outbox.db") as db:
        db.execute("UPDATE clinic_notifications SET delivered_at = created_at")
    app = make_app(aged)  # its outbox is aged/outbox.db
    client = sign_in(app)
    done = client.post("/admin/purge", data={"csrf_token": csrf_of(client), "days": "100", "step": "confirm",
                                             "confirm": "DELETE"})
    assert "1 delivered clinic notification(s) deleted" in done.get_data(as_text=True)
    assert _notifications(aged) == []


def test_purge_before_rasas_first_start_deletes_nothing_and_says_why(tmp_path, make_app, sign_in, capsys):
    empty = tmp_path / "before-rasa"
    empty.mkdir()
    app = make_app(empty)  # no events table: Rasa creates it on its first start
    ext = app.extensions["review"]
    result = purge(ext["store"], ext["audit"], 30, "tester")
    assert result.conversations == 0 and result.events_deleted == 0 and not result.tracker_ready
    assert "no events table yet" in result.describe()
    assert purge(ext["store"], ext["audit"], 30, "tester", dry_run=True).conversations == 0
    client = sign_in(app)
    token = csrf_of(client)
    preview = client.post("/admin/purge", data={"csrf_token": token, "days": "30", "step": "preview"})
    assert preview.status_code == 200 and "no events table yet" in preview.get_data(as_text=True)
    config = config_for(empty, tmp_path / "cli.db")
    assert manage.main(["purge", "--older-than-days", "30"], config=config) == 0
    out = capsys.readouterr().out
    assert "deleted 0 conversation(s)" in out and "Rasa creates it on its first start" in out


def test_a_purge_holds_the_refresh_lock_from_start_to_end(aged, make_app):
    """A page load that refreshes during a purge waits for it, so it never sees half of it."""
    import threading
    app = make_app(aged)
    ext = app.extensions["review"]
    store = ext["store"]
    store.refresh()
    real_delete = store.reader.delete_senders
    seen = {}

    def delete_and_try_a_refresh(ids):
        refresher = threading.Thread(target=lambda: seen.setdefault("refreshed", store.refresh()))
        refresher.start()
        refresher.join(0.5)
        seen["blocked"] = refresher.is_alive()  # waiting for the lock
        seen["thread"] = refresher
        return real_delete(ids)

    store.reader.delete_senders = delete_and_try_a_refresh
    purge(store, ext["audit"], 100, "tester")
    seen["thread"].join(10)
    assert seen["blocked"] is True and "refreshed" in seen
    assert store.summary_by_id("old-a") is None and store.summary_by_id("recent") is not None
