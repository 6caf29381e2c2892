"""A durable outbox for clinic notifications.

Escalations are written to a SQLite table first and delivered afterwards, so a
notification survives a target that is down and a process that restarts:

* one row per (conversation, sign): a notification is queued once, whatever
  retries or repeats happen in the conversation;
* a delivery worker claims due rows with a lease (so two workers never send the
  same row at once), sends them, and marks them delivered; a failure is retried
  with exponential backoff, up to MAX_BACKOFF_S between tries, without limit;
* each request carries an ``Idempotency-Key`` (the row's key), so a receiver can
  drop the rare duplicate left by a crash between sending and marking delivered.

Two writers queue escalations: the action server's ``action_escalate_red_flag``
and, inside the Rasa server, the event broker in components/escalation_broker.py,
which sees every urgent message even when the action server is down. The unique
key makes them one notification. Both processes run a delivery worker.

The target is a webhook URL (CLINIC_WEBHOOK_URL, or ``clinic_notifications.webhook_url``
in endpoints.yml); with none set, notifications go to a JSON-lines notification log.

Where the table lives: SQLite (``var/outbox.db``, OUTBOX_DB) by default; PostgreSQL when
``OUTBOX_DATABASE_URL`` (or ``clinic_notifications.database_url``, ``${VARS}`` expanded)
is a ``postgresql://`` URL, as in the replicated set-up, where every Rasa replica and
the action server share it. ``Outbox(settings)`` then builds a ``PostgresOutbox``: the
same table and behaviour through SQLAlchemy, with ``INSERT ... ON CONFLICT DO NOTHING``
for the unique key and ``FOR UPDATE SKIP LOCKED`` for the lease, connections checked
before use (a database restart costs a retry, not the worker). OUTBOX_MAX_BACKOFF caps
the wait between tries (seconds, default 300).
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from common.settings import PROJECT_DIR, endpoints_section

logger = logging.getLogger(__name__)

BASE_BACKOFF_S = 1.0
MAX_BACKOFF_S = float(os.environ.get("OUTBOX_MAX_BACKOFF") or 300.0)
LEASE_S = 30.0
SEND_TIMEOUT_S = 5.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS clinic_notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    sign TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0,
    delivered_at REAL,
    last_error TEXT,
    UNIQUE (conversation_id, sign)
);
CREATE INDEX IF NOT EXISTS clinic_notifications_due
    ON clinic_notifications (delivered_at, next_attempt_at);
"""


@dataclass(frozen=True)
class OutboxSettings:
    """Where the outbox lives and where notifications go."""

    db_path: Path
    webhook_url: Optional[str]
    log_path: Path
    database_url: Optional[str] = None  # postgresql://...: the table lives there instead

    @classmethod
    def from_config(cls) -> "OutboxSettings":
        section = endpoints_section("clinic_notifications")

        def path(env: str, key: str, default: str) -> Path:
            value = Path(os.environ.get(env) or section.get(key) or default)
            return value if value.is_absolute() else PROJECT_DIR / value

        return cls(
            db_path=path("OUTBOX_DB", "outbox", "var/outbox.db"),
            webhook_url=os.environ.get("CLINIC_WEBHOOK_URL") or section.get("webhook_url") or None,
            log_path=path("NOTIFICATION_LOG", "log", "var/log/clinic_notifications.jsonl"),
            database_url=database_url(section),
        )


def database_url(section: Dict[str, str]) -> Optional[str]:
    """OUTBOX_DATABASE_URL, else clinic_notifications.database_url with ${VARS} expanded; None for SQLite."""
    url = os.environ.get("OUTBOX_DATABASE_URL") or os.path.expandvars(section.get("database_url") or "")
    if not url or "${" in url or url.startswith("sqlite"):
        return None
    return url


def escalation_notifications(
    conversation_id: str, signs: List[str], labels: List[str], now: float
) -> Dict[str, Dict[str, Any]]:
    """One notification per sign: what the clinic needs to act, and no patient text."""
    labels = list(labels) + [sign.replace("_", " ") for sign in signs[len(labels):]]
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    return {
        sign: {
            "type": "red_flag_escalation",
            "level": "emergency",
            "conversation_id": conversation_id,
            "sign": sign,
            "label": label,
            "created_at": created,
        }
        for sign, label in zip(signs, labels)
    }


def backoff(attempts: int) -> float:
    """Seconds to wait after the given number of failed attempts."""
    return min(BASE_BACKOFF_S * (2 ** max(attempts - 1, 0)), MAX_BACKOFF_S)


class Outbox:
    """The notification table and its delivery (SQLite; PostgresOutbox when settings.database_url is set)."""

    def __new__(cls, settings: OutboxSettings) -> "Outbox":
        if cls is Outbox and settings.database_url:
            return super().__new__(PostgresOutbox)
        return super().__new__(cls)

    def __init__(self, settings: OutboxSettings) -> None:
        self.settings = settings
        settings.db_path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.settings.db_path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.row_factory = sqlite3.Row
        return db

    def enqueue(self, conversation_id: str, payloads: Dict[str, Dict[str, Any]]) -> List[str]:
        """Queue one notification per sign; returns the signs that were new."""
        now = time.time()
        new: List[str] = []
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            for sign, payload in payloads.items():
                cursor = db.execute(
                    "INSERT OR IGNORE INTO clinic_notifications "
                    "(conversation_id, sign, payload, created_at, next_attempt_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (conversation_id, sign, json.dumps(payload, sort_keys=True), now, now),
                )
                if cursor.rowcount:
                    new.append(sign)
            db.execute("COMMIT")
        return new

    def _claim_due(self, limit: int) -> List[sqlite3.Row]:
        now = time.time()
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            rows = db.execute(
                "SELECT * FROM clinic_notifications WHERE delivered_at IS NULL "
                "AND next_attempt_at <= ? AND lease_until <= ? ORDER BY id LIMIT ?",
                (now, now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE clinic_notifications SET lease_until = ? WHERE id = ?",
                [(now + LEASE_S, row["id"]) for row in rows],
            )
            db.execute("COMMIT")
        return rows

    def _record(self, row_id: int, error: Optional[str]) -> None:
        now = time.time()
        with closing(self._connect()) as db:
            if error is None:
                db.execute(
                    "UPDATE clinic_notifications SET delivered_at = ?, attempts = attempts + 1, "
                    "lease_until = 0, last_error = NULL WHERE id = ?",
                    (now, row_id),
                )
            else:
                attempts = db.execute(
                    "SELECT attempts FROM clinic_notifications WHERE id = ?", (row_id,)
                ).fetchone()["attempts"] + 1
                db.execute(
                    "UPDATE clinic_notifications SET attempts = ?, next_attempt_at = ?, "
                    "lease_until = 0, last_error = ? WHERE id = ?",
                    (attempts, now + backoff(attempts), error[:500], row_id),
                )

    def _send(self, row: sqlite3.Row) -> None:
        payload = json.loads(row["payload"])
        key = f"{row['conversation_id']}:{row['sign']}"
        if not self.settings.webhook_url:
            self.settings.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.settings.log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps({"idempotency_key": key, **payload}, sort_keys=True) + "\n")
            return
        request = urllib.request.Request(
            self.settings.webhook_url,
            data=json.dumps(payload).encode("utf-8"),
            headers={"Content-Type": "application/json", "Idempotency-Key": key},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_S) as response:
            if not 200 <= response.status < 300:
                raise urllib.error.HTTPError(
                    self.settings.webhook_url, response.status, "not 2xx", response.headers, None
                )

    def deliver_due(self, limit: int = 50) -> int:
        """Send what is due; returns how many were delivered."""
        delivered = 0
        for row in self._claim_due(limit):
            try:
                self._send(row)
            except Exception as error:  # any failure is retried later
                logger.warning("Clinic notification %s not delivered yet: %s", row["id"], error)
                self._record(row["id"], f"{type(error).__name__}: {error}")
            else:
                self._record(row["id"], None)
                delivered += 1
        return delivered

    def pending(self) -> List[Dict[str, Any]]:
        """Undelivered notifications, oldest first."""
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT conversation_id, sign, attempts, next_attempt_at, last_error "
                "FROM clinic_notifications WHERE delivered_at IS NULL ORDER BY id"
            ).fetchall()
        return [dict(row) for row in rows]

    def status(self, conversation_id: str, signs: Iterable[str]) -> Dict[str, str]:
        """'delivered' or 'queued' for each of a conversation's signs."""
        wanted = list(signs)
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT sign, delivered_at FROM clinic_notifications WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchall()
        found = {row["sign"]: "delivered" if row["delivered_at"] else "queued" for row in rows}
        return {sign: found.get(sign, "unknown") for sign in wanted}


PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS clinic_notifications (
    id BIGSERIAL PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    sign TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    delivered_at DOUBLE PRECISION,
    last_error TEXT,
    UNIQUE (conversation_id, sign)
);
CREATE INDEX IF NOT EXISTS clinic_notifications_due
    ON clinic_notifications (delivered_at, next_attempt_at);
"""


class PostgresOutbox(Outbox):
    """The same outbox in PostgreSQL, shared by every process of a replicated set-up."""

    def __init__(self, settings: OutboxSettings) -> None:
        import sqlalchemy as sa

        self.settings = settings
        self._sa = sa
        self.engine = sa.create_engine(settings.database_url, pool_pre_ping=True, hide_parameters=True,
                                       pool_size=2, max_overflow=2, future=True)
        with self.engine.begin() as db:
            # Two processes starting at once must not both create the table.
            db.execute(sa.text("SELECT pg_advisory_xact_lock(74017401)"))
            for statement in PG_SCHEMA.split(";"):
                if statement.strip():
                    db.execute(sa.text(statement))

    def enqueue(self, conversation_id: str, payloads: Dict[str, Dict[str, Any]]) -> List[str]:
        now = time.time()
        new: List[str] = []
        with self.engine.begin() as db:
            for sign, payload in payloads.items():
                inserted = db.execute(self._sa.text(
                    "INSERT INTO clinic_notifications (conversation_id, sign, payload, created_at, next_attempt_at) "
                    "VALUES (:c, :s, :p, :now, :now) ON CONFLICT (conversation_id, sign) DO NOTHING RETURNING id"),
                    {"c": conversation_id, "s": sign, "p": json.dumps(payload, sort_keys=True), "now": now}).first()
                if inserted is not None:
                    new.append(sign)
        return new

    def _claim_due(self, limit: int) -> List[Any]:
        now = time.time()
        with self.engine.begin() as db:
            rows = db.execute(self._sa.text(
                "UPDATE clinic_notifications SET lease_until = :lease WHERE id IN ("
                "  SELECT id FROM clinic_notifications WHERE delivered_at IS NULL AND next_attempt_at <= :now"
                "  AND lease_until <= :now ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED) RETURNING *"),
                {"lease": now + LEASE_S, "now": now, "limit": limit}).mappings().all()
        return sorted((dict(row) for row in rows), key=lambda row: row["id"])

    def _record(self, row_id: int, error: Optional[str]) -> None:
        now = time.time()
        with self.engine.begin() as db:
            if error is None:
                db.execute(self._sa.text(
                    "UPDATE clinic_notifications SET delivered_at = :now, attempts = attempts + 1, "
                    "lease_until = 0, last_error = NULL WHERE id = :id"), {"now": now, "id": row_id})
            else:
                attempts = db.execute(self._sa.text(
                    "SELECT attempts FROM clinic_notifications WHERE id = :id FOR UPDATE"),
                    {"id": row_id}).scalar_one() + 1
                db.execute(self._sa.text(
                    "UPDATE clinic_notifications SET attempts = :a, next_attempt_at = :next, lease_until = 0, "
                    "last_error = :e WHERE id = :id"),
                    {"a": attempts, "next": now + backoff(attempts), "e": error[:500], "id": row_id})

    def pending(self) -> List[Dict[str, Any]]:
        with self.engine.connect() as db:
            rows = db.execute(self._sa.text(
                "SELECT conversation_id, sign, attempts, next_attempt_at, last_error "
                "FROM clinic_notifications WHERE delivered_at IS NULL ORDER BY id")).mappings().all()
        return [dict(row) for row in rows]

    def status(self, conversation_id: str, signs: Iterable[str]) -> Dict[str, str]:
        wanted = list(signs)
        with self.engine.connect() as db:
            rows = db.execute(self._sa.text(
                "SELECT sign, delivered_at FROM clinic_notifications WHERE conversation_id = :c"),
                {"c": conversation_id}).mappings().all()
        found = {row["sign"]: "delivered" if row["delivered_at"] else "queued" for row in rows}
        return {sign: found.get(sign, "unknown") for sign in wanted}


class DeliveryWorker(threading.Thread):
    """Delivers due notifications every ``interval`` seconds until stopped."""

    def __init__(self, outbox: Outbox, interval: float = 1.0) -> None:
        super().__init__(name="clinic-notification-delivery", daemon=True)
        self.outbox = outbox
        self.interval = interval
        self.wake = threading.Event()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.outbox.deliver_due()
            except Exception:  # the worker must outlive any single failure
                logger.exception("Clinic notification delivery failed; retrying")
            self.wake.wait(self.interval)
            self.wake.clear()

    def stop(self) -> None:
        self.stopped.set()
        self.wake.set()
