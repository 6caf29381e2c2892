"""Retention: delete conversations whose latest event is older than N days.

Deletes the conversation's rows from the tracker store's ``events`` table and the
app's own rows for it (summary, tags, notes, handled mark), and writes the audit
log: one ``purge`` row per conversation and one for the run.

A conversation id can be personal data (Twilio's SMS and WhatsApp senders are phone
numbers), so a purge also removes the ids it leaves elsewhere:

* the audit log keeps its rows (who viewed, exported or handled what), but with the
  conversation id replaced by a pseudonym (review.audit);
* the clinic-notification outbox (common/outbox.py) loses the rows of the purged
  conversations that were delivered. Undelivered ones stay: the clinic must still get
  them, and their payload (conversation id, sign, time; no patient text) is what the
  delivery worker sends. A later purge deletes them once delivered. The notification
  system's own JSON-lines log (used when no webhook is set) is not touched.

The whole purge holds the store's refresh lock, so a page load can't refresh the
summary from half-deleted events.

    python -m review.manage purge --older-than-days 365 [--dry-run]
"""
from __future__ import annotations

import logging
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, List, Optional, Tuple

from review.audit import AuditLog
from review.store import Store
from review.tracker import TrackerReader

logger = logging.getLogger(__name__)
MAX_DAYS = 100 * 365
NO_TRACKER = ("the tracker store has no events table yet (Rasa creates it on its first start), "
              "so there is nothing to purge")


class RetentionError(ValueError):
    pass


@dataclass
class PurgeResult:
    days: int
    cutoff: float
    conversation_ids: List[str]
    events_deleted: int
    dry_run: bool
    tracker_ready: bool = True
    notifications_deleted: int = 0
    notifications_kept: int = 0

    @property
    def conversations(self) -> int:
        return len(self.conversation_ids)

    def describe(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        text = f"older than {self.days} days: {verb} {self.conversations} conversation(s)"
        if not self.tracker_ready:
            return f"{text}: {NO_TRACKER}"
        if self.dry_run:
            return text
        text += f" and {self.events_deleted} event(s)"
        if self.notifications_deleted:
            text += f"; {self.notifications_deleted} delivered clinic notification(s) deleted from the outbox"
        if self.notifications_kept:
            text += (f"; {self.notifications_kept} undelivered clinic notification(s) kept in the outbox "
                     "so they are still sent (a later purge deletes them once delivered)")
        return text


def check_days(value: object) -> int:
    try:
        days = int(str(value).strip())
    except ValueError as error:
        raise RetentionError("the number of days must be a whole number") from error
    if not 1 <= days <= MAX_DAYS:
        raise RetentionError(f"the number of days must be from 1 to {MAX_DAYS}")
    return days


def _chunks(items: List[Any], size: int = 500) -> Iterable[List[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _clean_outbox_in_database(url: str, purged_ids: Iterable[str], cutoff: float,
                              reader: TrackerReader) -> Tuple[int, int]:
    """clean_outbox for an outbox in a database (common/outbox.py's PostgresOutbox), in one transaction."""
    import sqlalchemy as sa

    if not reader.available():
        return 0, 0
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, hide_parameters=True)
    try:
        with engine.begin() as db:
            if not sa.inspect(db).has_table("clinic_notifications"):
                return 0, 0
            earlier = [row[0] for row in db.execute(sa.text(
                "SELECT DISTINCT conversation_id FROM clinic_notifications "
                "WHERE delivered_at IS NOT NULL AND created_at < :cutoff"), {"cutoff": cutoff})]
            targets = sorted(set(purged_ids) | (set(earlier) - reader.existing_senders(earlier)))
            deleted = kept = 0
            for batch in _chunks(targets):
                deleted += db.execute(sa.text(
                    "DELETE FROM clinic_notifications WHERE delivered_at IS NOT NULL "
                    "AND conversation_id IN :ids").bindparams(sa.bindparam("ids", expanding=True)),
                    {"ids": batch}).rowcount or 0
                kept += db.execute(sa.text(
                    "SELECT count(*) FROM clinic_notifications WHERE delivered_at IS NULL "
                    "AND conversation_id IN :ids").bindparams(sa.bindparam("ids", expanding=True)),
                    {"ids": batch}).scalar_one()
    finally:
        engine.dispose()
    return deleted, kept


def clean_outbox(outbox_path: Optional[Path], purged_ids: Iterable[str], cutoff: float,
                 reader: TrackerReader) -> Tuple[int, int]:
    """Deletes the delivered clinic notifications of purged conversations; returns (deleted, kept).

    Also those of conversations purged earlier (no events left, queued before the
    cutoff) that have been delivered since. Undelivered notifications are never deleted:
    they still have to reach the clinic; ``kept`` counts them.
    """
    if isinstance(outbox_path, str) and "://" in outbox_path:  # the outbox in PostgreSQL
        return _clean_outbox_in_database(outbox_path, purged_ids, cutoff, reader)
    if not outbox_path or not Path(outbox_path).exists() or not reader.available():
        return 0, 0
    purged = set(purged_ids)
    with closing(sqlite3.connect(str(outbox_path), timeout=30)) as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                          "AND name = 'clinic_notifications'").fetchone():
            return 0, 0
        earlier = [row[0] for row in db.execute(
            "SELECT DISTINCT conversation_id FROM clinic_notifications "
            "WHERE delivered_at IS NOT NULL AND created_at < ?", (cutoff,))]
        gone = set(earlier) - reader.existing_senders(earlier)
        targets = sorted(purged | gone)
        deleted = kept = 0
        with db:  # one transaction
            for batch in _chunks(targets):
                marks = ",".join("?" * len(batch))
                deleted += db.execute(
                    f"DELETE FROM clinic_notifications WHERE delivered_at IS NOT NULL "
                    f"AND conversation_id IN ({marks})", batch).rowcount or 0
                kept += db.execute(
                    f"SELECT count(*) FROM clinic_notifications WHERE delivered_at IS NULL "
                    f"AND conversation_id IN ({marks})", batch).fetchone()[0]
    return deleted, kept


def purge(store: Store, audit: AuditLog, days: int, actor: str, dry_run: bool = False,
          ip: Optional[str] = None, now: Optional[float] = None,
          outbox_path: Optional[Path] = None) -> PurgeResult:
    """Deletes (or, with dry_run, only counts) the conversations older than ``days`` days."""
    days = check_days(days)
    cutoff = (now if now is not None else time.time()) - days * 86400
    with store._refresh_lock:  # the whole purge: no refresh in between
        store.refresh()
        ready = store.reader.available()
        ids = store.reader.senders_older_than(cutoff)
        result = PurgeResult(days=days, cutoff=cutoff, conversation_ids=ids, events_deleted=0,
                             dry_run=dry_run, tracker_ready=ready)
        if not dry_run:
            if ids:
                result.events_deleted = store.reader.delete_senders(ids)
                store.forget(ids)
            result.notifications_deleted, result.notifications_kept = clean_outbox(
                outbox_path, ids, cutoff, store.reader)
            audit.pseudonymise(ids)
            audit.record_many(actor, "purge", [audit.pseudonym(cid) for cid in ids],
                              detail=f"older than {days} days", ip=ip)
            audit.record(actor, "purge", None, detail=result.describe(), ip=ip)
    logger.info("Retention by %s: %s", actor, result.describe())
    return result
