"""The review app's own database, and the conversation list's queries.

SQLite (``var/review.db``) by default, PostgreSQL in production
(REVIEW_DATABASE_URL): SQLAlchemy Core, nothing dialect-specific. It holds the
staff accounts, sessions, failed logins, the audit log, tags, notes, handled
marks, and ``review_conversations``: one summary row per conversation, refreshed
incrementally from the tracker store's events (those with an id above the last
one seen, and the last REREAD_WINDOW ids again when events committed late below
it: see ``Store.refresh``), indexed on what the list filters and sorts on. Tags, notes and handled
marks are keyed by the conversation id (Rasa's sender id), so they survive a
rebuild of the summary.
"""
from __future__ import annotations

import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import sqlalchemy as sa

from review.tracker import OUTCOMES, TrackerReader, understand

logger = logging.getLogger(__name__)

metadata = sa.MetaData()

conversations = sa.Table(
    "review_conversations", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("conversation_id", sa.String(255), nullable=False, unique=True),
    sa.Column("first_ts", sa.Float),
    sa.Column("last_ts", sa.Float),
    sa.Column("first_day", sa.String(10)),
    sa.Column("last_event_id", sa.Integer, nullable=False, default=0),
    sa.Column("channel", sa.String(64)),
    sa.Column("user_turns", sa.Integer, nullable=False, default=0),
    sa.Column("bot_turns", sa.Integer, nullable=False, default=0),
    sa.Column("escalated", sa.Boolean, nullable=False, default=False),
    sa.Column("escalation_signs", sa.String(500)),
    sa.Column("escalated_ts", sa.Float),
    sa.Column("escalated_day", sa.String(10)),
    sa.Column("checklist_outcome", sa.String(32)),
    sa.Column("checklist_runs", sa.Integer, nullable=False, default=0),
    sa.Column("fallback_turns", sa.Integer, nullable=False, default=0),
    sa.Column("has_fallback", sa.Boolean, nullable=False, default=False),
    sa.Column("unanswered_turns", sa.Integer, nullable=False, default=0),
    sa.Column("has_unanswered", sa.Boolean, nullable=False, default=False),
    sa.Column("min_confidence", sa.Float),
    sa.Column("first_text", sa.Text),
    sa.Column("search_text", sa.Text),
    # Newest first, alone and after each filter the list offers.
    sa.Index("ix_review_conv_last_ts", "last_ts"),
    sa.Index("ix_review_conv_escalated", "escalated", "last_ts"),
    sa.Index("ix_review_conv_checklist", "checklist_outcome", "last_ts"),
    sa.Index("ix_review_conv_fallback", "has_fallback", "last_ts"),
    sa.Index("ix_review_conv_unanswered", "has_unanswered", "last_ts"),
    sa.Index("ix_review_conv_min_conf", "min_confidence"),
    sa.Index("ix_review_conv_first_day", "first_day"),
    sa.Index("ix_review_conv_escalated_day", "escalated_day"),
)

topics = sa.Table(
    "review_topics", metadata,
    sa.Column("conversation_pk", sa.Integer, nullable=False),
    sa.Column("topic", sa.String(255), nullable=False),
    sa.Column("turns", sa.Integer, nullable=False),
    sa.Index("ix_review_topics_conv", "conversation_pk"),
    sa.Index("ix_review_topics_topic", "topic"),
)

state = sa.Table(
    "review_state", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text),
)

users = sa.Table(
    "review_users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("last_login_at", sa.Float),
)

sessions = sa.Table(
    "review_sessions", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_seen_at", sa.Float, nullable=False),
    sa.Column("ip", sa.String(64)),
    sa.Index("ix_review_sessions_user", "user_id"),
)

login_failures = sa.Table(
    "review_login_failures", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("ip", sa.String(64), nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Index("ix_review_login_failures_user", "username", "at"),
    sa.Index("ix_review_login_failures_ip", "ip", "at"),
)

audit_log = sa.Table(
    "review_audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("conversation_id", sa.String(255)),
    sa.Column("detail", sa.Text),
    sa.Column("ip", sa.String(64)),
    sa.Index("ix_review_audit_at", "at"),
    sa.Index("ix_review_audit_conversation", "conversation_id"),
    sa.Index("ix_review_audit_actor", "actor", "at"),
    sa.Index("ix_review_audit_action", "action", "at"),
)

tags = sa.Table(
    "review_tags", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("conversation_id", sa.String(255), nullable=False),
    sa.Column("tag", sa.String(40), nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("conversation_id", "tag", name="uq_review_tags"),
    sa.Index("ix_review_tags_tag", "tag"),
)

notes = sa.Table(
    "review_notes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("conversation_id", sa.String(255), nullable=False),
    sa.Column("author", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Index("ix_review_notes_conversation", "conversation_id"),
)

handled = sa.Table(
    "review_handled", metadata,
    sa.Column("conversation_id", sa.String(255), primary_key=True),
    sa.Column("handled_by", sa.String(64), nullable=False),
    sa.Column("handled_at", sa.Float, nullable=False),
)

# Tables whose rows belong to one conversation (by its id): what purge deletes.
PER_CONVERSATION = (tags, notes, handled)


def _private_sqlite_file(database: str) -> None:
    """Creates an SQLite file readable by its owner only (0600): it holds password hashes,
    sessions and the audit log. SQLite gives its -wal and -shm files the same mode. An
    existing file loses any access for others (group access, if set on purpose, stays)."""
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o007:
            try:
                os.chmod(path, mode & ~0o007)
            except OSError:  # not ours to change: say so, don't stop
                logger.warning("The review database %s is readable by other users; chmod o-rwx it", path)


def create_app_engine(url: str) -> sa.engine.Engine:
    """An engine on the app's database, with its tables; SQLite files get WAL, a busy timeout and mode 0600.

    ``hide_parameters``: a database error never puts bound values (patient text, search
    terms) into an exception message, and so never into the log. ``pool_pre_ping``: a pooled
    connection is checked before use, so the first page after a database restart works."""
    kwargs: Dict[str, Any] = {"future": True, "hide_parameters": True, "pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        database = sa.engine.make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            _private_sqlite_file(database)
    engine = sa.create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        @sa.event.listens_for(engine, "connect")
        def _pragmas(connection, _record):  # noqa: ANN001 - SQLAlchemy's signature
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
    metadata.create_all(engine)
    return engine


# ---------------------------------------------------------------------------
# Filters


class FilterError(ValueError):
    """A filter value that can't be used; the message says which and why."""


ESCALATED = {"": "any", "yes": "escalated", "unhandled": "escalated, not handled",
             "handled": "escalated and handled", "no": "not escalated"}
CHECKLIST = {"": "any", "any": "any checklist", "none": "no checklist",
             **{outcome: outcome.replace("_", " ") for outcome in OUTCOMES}}
MAX_QUERY = 200
MAX_PAGE = 1_000_000


def _date(value: str, name: str) -> Optional[date]:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise FilterError(f"{name} must be a date like 2025-01-31, not {value[:40]!r}") from error


def _epoch(day_: date) -> float:
    return datetime(day_.year, day_.month, day_.day, tzinfo=timezone.utc).timestamp()


@dataclass
class ListFilter:
    """What the conversation list (and its exports) show."""

    escalated: str = ""
    checklist: str = ""
    fallback: bool = False
    unanswered: bool = False
    low_confidence: bool = False
    date_from: Optional[date] = None
    date_to: Optional[date] = None
    q: str = ""
    tag: str = ""
    page: int = 1

    PARAMS = ("escalated", "checklist", "fallback", "unanswered", "lowconf", "from", "to", "q", "tag", "page")

    @classmethod
    def parse(cls, args: Mapping[str, str]) -> "ListFilter":
        """From query parameters; FilterError for a value that can't be used."""
        def get(name: str) -> str:
            value = args.get(name, "")
            return value if isinstance(value, str) else ""

        escalated = get("escalated").strip()
        if escalated not in ESCALATED:
            raise FilterError(f"escalated must be one of: {', '.join(k for k in ESCALATED if k)}")
        checklist = get("checklist").strip()
        if checklist not in CHECKLIST:
            raise FilterError(f"checklist must be one of: {', '.join(k for k in CHECKLIST if k)}")
        flags = {}
        for name in ("fallback", "unanswered", "lowconf"):
            value = get(name).strip().lower()
            if value not in ("", "0", "1", "on", "true", "false"):
                raise FilterError(f"{name} must be 1 or left out")
            flags[name] = value in ("1", "on", "true")
        date_from, date_to = _date(get("from"), "from"), _date(get("to"), "to")
        if date_from and date_to and date_from > date_to:
            raise FilterError("the date range ends before it starts")
        q = " ".join(get("q").split())
        if len(q) > MAX_QUERY:
            raise FilterError(f"the search text is longer than {MAX_QUERY} characters")
        tag = get("tag").strip()
        if len(tag) > 40:
            raise FilterError("a tag is at most 40 characters")
        page_raw = get("page").strip() or "1"
        if not page_raw.isdigit() or not 1 <= int(page_raw) <= MAX_PAGE:
            raise FilterError("page must be a whole number from 1")
        return cls(escalated=escalated, checklist=checklist, fallback=flags["fallback"],
                   unanswered=flags["unanswered"], low_confidence=flags["lowconf"],
                   date_from=date_from, date_to=date_to, q=q, tag=tag, page=int(page_raw))

    def params(self, page: Optional[int] = None) -> Dict[str, str]:
        """As query parameters (for links and exports), leaving out what isn't set."""
        out = {
            "escalated": self.escalated, "checklist": self.checklist,
            "fallback": "1" if self.fallback else "", "unanswered": "1" if self.unanswered else "",
            "lowconf": "1" if self.low_confidence else "",
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "q": self.q, "tag": self.tag,
        }
        if page and page > 1:
            out["page"] = str(page)
        return {key: value for key, value in out.items() if value}

    def describe(self) -> str:
        """In words, for the audit log (the search text is left out: it may be patient text)."""
        parts = []
        if self.escalated:
            parts.append(ESCALATED[self.escalated])
        if self.checklist:
            parts.append(f"checklist: {CHECKLIST[self.checklist]}")
        for flag, words in ((self.fallback, "fallback turns"), (self.unanswered, "unanswered turns"),
                            (self.low_confidence, "low confidence")):
            if flag:
                parts.append(words)
        if self.date_from or self.date_to:
            parts.append(f"last message {self.date_from or '…'} to {self.date_to or '…'}")
        if self.q:
            parts.append("text search")
        if self.tag:
            parts.append(f"tag {self.tag}")
        return "; ".join(parts) or "all conversations"

    def where(self, low_confidence: float) -> List[Any]:
        c = conversations.c
        clauses: List[Any] = []
        handled_exists = sa.exists().where(handled.c.conversation_id == c.conversation_id)
        if self.escalated == "yes":
            clauses.append(c.escalated.is_(True))
        elif self.escalated == "unhandled":
            clauses += [c.escalated.is_(True), ~handled_exists]
        elif self.escalated == "handled":
            clauses += [c.escalated.is_(True), handled_exists]
        elif self.escalated == "no":
            clauses.append(c.escalated.is_(False))
        if self.checklist == "any":
            clauses.append(c.checklist_outcome.isnot(None))
        elif self.checklist == "none":
            clauses.append(c.checklist_outcome.is_(None))
        elif self.checklist:
            clauses.append(c.checklist_outcome == self.checklist)
        if self.fallback:
            clauses.append(c.has_fallback.is_(True))
        if self.unanswered:
            clauses.append(c.has_unanswered.is_(True))
        if self.low_confidence:
            clauses.append(c.min_confidence < low_confidence)
        if self.date_from:
            clauses.append(c.last_ts >= _epoch(self.date_from))
        if self.date_to:
            clauses.append(c.last_ts < _epoch(self.date_to + timedelta(days=1)))
        if self.q:
            needle = self.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append(c.search_text.like(f"%{needle}%", escape="\\"))
        if self.tag:
            clauses.append(sa.exists().where(tags.c.conversation_id == c.conversation_id,
                                             tags.c.tag == self.tag))
        return clauses


@dataclass
class Page:
    rows: List[Dict[str, Any]]
    total: int
    page: int
    pages: int
    page_size: int
    notice: str = ""
    tags: Dict[str, List[str]] = field(default_factory=dict)


# ---------------------------------------------------------------------------
# The store


# How many event ids below the last one seen each refresh checks for late commits.
REREAD_WINDOW = 1000


class Store:
    """The app's database, and the conversation summary kept from the tracker store."""

    def __init__(self, database_url: str, reader: TrackerReader) -> None:
        self.engine = create_app_engine(database_url)
        self.reader = reader
        # Held by a refresh and by a whole purge (review.retention), so neither sees the
        # other half done. Re-entrant: a purge refreshes first.
        self._refresh_lock = threading.RLock()

    # -- state ---------------------------------------------------------------

    def _get_state(self, db, key: str) -> Optional[str]:  # noqa: ANN001
        return db.execute(sa.select(state.c.value).where(state.c.key == key)).scalar()

    def _set_state(self, db, key: str, value: str) -> None:  # noqa: ANN001
        if db.execute(sa.select(state.c.key).where(state.c.key == key)).first():
            db.execute(state.update().where(state.c.key == key).values(value=value))
        else:
            db.execute(state.insert().values(key=key, value=value))

    # -- refresh -------------------------------------------------------------

    def refresh(self) -> int:
        """Brings the summary up to date with the tracker store; returns how many conversations changed.

        Reads the senders of the events with an id above the last one seen. On PostgreSQL
        ids are taken when an event is inserted but seen when its transaction commits, so
        an event can appear later with an id below one already read. So each refresh also
        counts the events of the last REREAD_WINDOW ids as they were at the previous refresh
        (counted before reading, so anything committed afterwards shows up as a
        difference); when the count has changed, the senders of that whole window are read
        again. A sender's summary is always rebuilt from all its events, so reading one
        again changes nothing: the refresh is idempotent.
        """
        with self._refresh_lock:
            max_id = self.reader.max_event_id()
            fingerprint = self.reader.fingerprint()
            with self.engine.begin() as db:
                last = int(self._get_state(db, "last_event_id") or 0)
                if self._get_state(db, "tracker") != fingerprint or max_id < last:
                    # Another tracker store, or one that was emptied: start again.
                    db.execute(topics.delete())
                    db.execute(conversations.delete())
                    self._set_state(db, "tracker", fingerprint)
                    last = 0
                    self._set_state(db, "last_event_id", "0")
                    self._set_state(db, "window_low", "0")
                    self._set_state(db, "window_count", "0")
                window_low = int(self._get_state(db, "window_low") or 0)
                window_count = int(self._get_state(db, "window_count") or 0)
            if max_id == 0 and last == 0:
                return 0
            # This refresh's window, counted before anything is read (see above).
            new_low = max(0, max_id - REREAD_WINDOW)
            new_count = self.reader.count_between(new_low, max_id)
            start = last
            if last and self.reader.count_between(window_low, last) != window_count:
                start = min(window_low, last)  # an event came in late below the last id seen
            if max_id <= start and (new_low, new_count) == (window_low, window_count):
                return 0
            senders = self.reader.senders_since(start, max_id)
            changed = 0
            for first in range(0, len(senders), 200):
                batch = senders[first:first + 200]
                grouped = self.reader.events_of(batch, upto_id=max_id)
                summaries = [understand(s, grouped[s]).summary() for s in batch if grouped.get(s)]
                with self.engine.begin() as db:
                    self._upsert(db, summaries)
                changed += len(summaries)
            with self.engine.begin() as db:
                self._set_state(db, "last_event_id", str(max_id))
                self._set_state(db, "window_low", str(new_low))
                self._set_state(db, "window_count", str(new_count))
            if changed:
                logger.info("Conversation summary refreshed: %d conversation(s) updated", changed)
            return changed

    def _upsert(self, db, summaries: Sequence[Dict[str, Any]]) -> None:  # noqa: ANN001
        """Inserts or updates summary rows (keeping their ids, which the app's URLs use) and their topics."""
        if not summaries:
            return
        ids = [s["conversation_id"] for s in summaries]
        existing = dict(db.execute(sa.select(conversations.c.conversation_id, conversations.c.id)
                                   .where(conversations.c.conversation_id.in_(ids))).all())
        rows = [{k: v for k, v in summary.items() if k != "topics"} for summary in summaries]
        new = [row for row in rows if row["conversation_id"] not in existing]
        old = [row for row in rows if row["conversation_id"] in existing]
        if new:
            db.execute(conversations.insert(), new)
        if old:
            columns = [key for key in old[0] if key != "conversation_id"]
            statement = (conversations.update().where(conversations.c.id == sa.bindparam("b_pk"))
                         .values({key: sa.bindparam(f"b_{key}") for key in columns}))
            db.execute(statement, [{"b_pk": existing[row["conversation_id"]],
                                    **{f"b_{key}": row[key] for key in columns}} for row in old])
            db.execute(topics.delete().where(topics.c.conversation_pk.in_(
                [existing[row["conversation_id"]] for row in old])))
        if new:
            existing.update(db.execute(sa.select(conversations.c.conversation_id, conversations.c.id)
                                       .where(conversations.c.conversation_id.in_(
                                           [row["conversation_id"] for row in new]))).all())
        topic_rows = [{"conversation_pk": existing[summary["conversation_id"]], "topic": topic, "turns": turns}
                      for summary in summaries for topic, turns in summary["topics"].items()]
        if topic_rows:
            db.execute(topics.insert(), topic_rows)

    def forget(self, conversation_ids: Sequence[str]) -> None:
        """Deletes the app's rows for these conversations (summary, topics, tags, notes, handled)."""
        ids = list(conversation_ids)
        with self.engine.begin() as db:
            for start in range(0, len(ids), 500):
                batch = ids[start:start + 500]
                pks = sa.select(conversations.c.id).where(conversations.c.conversation_id.in_(batch))
                db.execute(topics.delete().where(topics.c.conversation_pk.in_(pks)))
                db.execute(conversations.delete().where(conversations.c.conversation_id.in_(batch)))
                for table in PER_CONVERSATION:
                    db.execute(table.delete().where(table.c.conversation_id.in_(batch)))
            # Rasa's SQLite ids are reused once the highest rows are gone: look again from there.
            last = min(int(self._get_state(db, "last_event_id") or 0), self.reader.max_event_id())
            self._set_state(db, "last_event_id", str(last))
            self._set_state(db, "window_low", str(min(int(self._get_state(db, "window_low") or 0), last)))

    # -- the list ------------------------------------------------------------

    def list_query(self, filters: ListFilter, low_confidence: float):
        c = conversations.c
        handled_by = (sa.select(handled.c.handled_by)
                      .where(handled.c.conversation_id == c.conversation_id).scalar_subquery())
        columns = [c.id, c.conversation_id, c.first_ts, c.last_ts, c.channel, c.user_turns,
                   c.escalated, c.escalation_signs, c.checklist_outcome, c.fallback_turns,
                   c.unanswered_turns, c.min_confidence, c.first_text,
                   handled_by.label("handled_by")]
        return (sa.select(*columns).where(*filters.where(low_confidence))
                .order_by(c.last_ts.desc(), c.id.desc()))

    def list_page(self, filters: ListFilter, low_confidence: float, page_size: int) -> Page:
        where = filters.where(low_confidence)
        with self.engine.connect() as db:
            total = db.execute(sa.select(sa.func.count()).select_from(conversations).where(*where)).scalar() or 0
            pages = max(1, -(-total // page_size))
            page, notice = filters.page, ""
            if page > pages:
                notice = f"There is no page {page}: showing page {pages}, the last."
                page = pages
            query = self.list_query(filters, low_confidence).limit(page_size).offset((page - 1) * page_size)
            rows = [dict(row._mapping) for row in db.execute(query)]
        return Page(rows=rows, total=total, page=page, pages=pages, page_size=page_size,
                    notice=notice, tags=self.tags_of([r["conversation_id"] for r in rows]))

    def iter_filtered(self, filters: ListFilter, low_confidence: float, batch: int = 500) -> Iterator[Dict[str, Any]]:
        """Every conversation the filters match, newest first (for exports)."""
        offset = 0
        while True:
            query = self.list_query(filters, low_confidence).limit(batch).offset(offset)
            with self.engine.connect() as db:
                rows = [dict(row._mapping) for row in db.execute(query)]
            if not rows:
                return
            yield from rows
            offset += batch

    def explain_list(self, filters: ListFilter, low_confidence: float, page_size: int) -> List[str]:
        """SQLite's plan for one page of the list (tests check it uses an index)."""
        query = self.list_query(filters, low_confidence).limit(page_size)
        compiled = query.compile(self.engine, compile_kwargs={"literal_binds": True})
        with self.engine.connect() as db:
            return [str(row[-1]) for row in db.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]

    def summary_by_pk(self, pk: int) -> Optional[Dict[str, Any]]:
        with self.engine.connect() as db:
            row = db.execute(sa.select(conversations).where(conversations.c.id == pk)).first()
        return dict(row._mapping) if row else None

    def summary_by_id(self, conversation_id: str) -> Optional[Dict[str, Any]]:
        with self.engine.connect() as db:
            row = db.execute(sa.select(conversations)
                             .where(conversations.c.conversation_id == conversation_id)).first()
        return dict(row._mapping) if row else None

    # -- tags, notes, handled ------------------------------------------------

    def tags_of(self, conversation_ids: Sequence[str]) -> Dict[str, List[str]]:
        out: Dict[str, List[str]] = {}
        if not conversation_ids:
            return out
        with self.engine.connect() as db:
            for row in db.execute(sa.select(tags.c.conversation_id, tags.c.tag)
                                  .where(tags.c.conversation_id.in_(list(conversation_ids)))
                                  .order_by(tags.c.tag)):
                out.setdefault(row.conversation_id, []).append(row.tag)
        return out

    def all_tags(self) -> List[str]:
        with self.engine.connect() as db:
            return [r[0] for r in db.execute(sa.select(tags.c.tag).distinct().order_by(tags.c.tag))]

    def add_tag(self, conversation_id: str, tag: str, actor: str) -> bool:
        """Adds a tag; False when the conversation already had it (a double submit, or two
        people at once: the unique constraint decides, so it is never an error)."""
        try:
            with self.engine.begin() as db:
                db.execute(tags.insert().values(conversation_id=conversation_id, tag=tag,
                                                created_by=actor, created_at=time.time()))
        except sa.exc.IntegrityError:
            return False
        return True

    def remove_tag(self, conversation_id: str, tag: str) -> bool:
        with self.engine.begin() as db:
            result = db.execute(tags.delete().where(tags.c.conversation_id == conversation_id,
                                                    tags.c.tag == tag))
        return bool(result.rowcount)

    def notes_of(self, conversation_id: str) -> List[Dict[str, Any]]:
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(
                sa.select(notes).where(notes.c.conversation_id == conversation_id).order_by(notes.c.id))]

    def add_note(self, conversation_id: str, text: str, author: str) -> None:
        with self.engine.begin() as db:
            db.execute(notes.insert().values(conversation_id=conversation_id, text=text,
                                             author=author, created_at=time.time()))

    def handled_of(self, conversation_id: str) -> Optional[Dict[str, Any]]:
        with self.engine.connect() as db:
            row = db.execute(sa.select(handled).where(handled.c.conversation_id == conversation_id)).first()
        return dict(row._mapping) if row else None

    def mark_handled(self, conversation_id: str, actor: str) -> bool:
        """Marks it handled; False when it already was (the primary key decides, so a double
        submit or two people at once is never an error, and the first mark stays)."""
        try:
            with self.engine.begin() as db:
                db.execute(handled.insert().values(conversation_id=conversation_id, handled_by=actor,
                                                   handled_at=time.time()))
        except sa.exc.IntegrityError:
            return False
        return True

    def reopen(self, conversation_id: str) -> bool:
        with self.engine.begin() as db:
            result = db.execute(handled.delete().where(handled.c.conversation_id == conversation_id))
        return bool(result.rowcount)

    # -- statistics ----------------------------------------------------------

    def stats(self, date_from: date, date_to: date, low_confidence: float) -> Dict[str, Any]:
        """Per-day counts (by the conversation's first message, UTC) and totals for a date range."""
        c = conversations.c
        lo, hi = date_from.isoformat(), date_to.isoformat()
        in_range = sa.and_(c.first_day >= lo, c.first_day <= hi)
        with self.engine.connect() as db:
            per_day = {row.first_day: row for row in db.execute(
                sa.select(c.first_day, sa.func.count().label("conversations"),
                          sa.func.coalesce(sa.func.sum(c.user_turns), 0).label("turns"),
                          sa.func.coalesce(sa.func.sum(c.fallback_turns), 0).label("fallbacks"))
                .where(in_range).group_by(c.first_day))}
            escalations = dict(db.execute(
                sa.select(c.escalated_day, sa.func.count())
                .where(c.escalated.is_(True), c.escalated_day >= lo, c.escalated_day <= hi)
                .group_by(c.escalated_day)).all())
            top = db.execute(
                sa.select(topics.c.topic, sa.func.sum(topics.c.turns).label("turns"))
                .select_from(topics.join(conversations, topics.c.conversation_pk == c.id))
                .where(in_range, topics.c.topic.notin_(CHITCHAT))
                .group_by(topics.c.topic).order_by(sa.desc("turns"), topics.c.topic).limit(12)).all()
            outcomes = dict(db.execute(
                sa.select(c.checklist_outcome, sa.func.count())
                .where(in_range, c.checklist_outcome.isnot(None)).group_by(c.checklist_outcome)).all())
            unhandled = db.execute(
                sa.select(sa.func.count()).select_from(conversations)
                .where(in_range, c.escalated.is_(True),
                       ~sa.exists().where(handled.c.conversation_id == c.conversation_id))).scalar() or 0
            low = db.execute(sa.select(sa.func.count()).select_from(conversations)
                             .where(in_range, c.min_confidence < low_confidence)).scalar() or 0
        days = []
        current = date_from
        while current <= date_to:
            key = current.isoformat()
            row = per_day.get(key)
            turns = int(row.turns) if row else 0
            fallbacks = int(row.fallbacks) if row else 0
            days.append({
                "day": key,
                "conversations": int(row.conversations) if row else 0,
                "escalations": int(escalations.get(key, 0)),
                "turns": turns,
                "fallbacks": fallbacks,
                "fallback_rate": (fallbacks / turns) if turns else 0.0,
            })
            current += timedelta(days=1)
        total_turns = sum(d["turns"] for d in days)
        total_fallbacks = sum(d["fallbacks"] for d in days)
        return {
            "days": days,
            "top_topics": [(row.topic, int(row.turns)) for row in top],
            "totals": {
                "conversations": sum(d["conversations"] for d in days),
                "escalations": sum(d["escalations"] for d in days),
                "unhandled": int(unhandled),
                "turns": total_turns,
                "fallbacks": total_fallbacks,
                "fallback_rate": (total_fallbacks / total_turns) if total_turns else 0.0,
                "low_confidence": int(low),
                "outcomes": {k: int(v) for k, v in outcomes.items()},
            },
        }

    def latest_day(self) -> Optional[date]:
        with self.engine.connect() as db:
            value = db.execute(sa.select(sa.func.max(conversations.c.first_day))).scalar()
        return date.fromisoformat(value) if value else None


# Greetings, yes/no answers and the fallback are not topics.
# (The fallback has its own chart: the fallback rate.)
CHITCHAT = ("greet", "goodbye", "affirm", "deny", "unsure", "thank", "thanks", "bot_challenge",
            "stop", "start_over", "help", "nlu_fallback", "session_start", "restart", "back")


def day_range(start: Optional[date], end: Optional[date], latest: Optional[date],
              default_days: int = 30) -> Tuple[date, date]:
    """The stats page's range: what was asked for, or the last 30 days up to the latest conversation."""
    end = end or latest or datetime.now(timezone.utc).date()
    start = start or end - timedelta(days=default_days - 1)
    return start, end
