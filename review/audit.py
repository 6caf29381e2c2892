"""The audit log: who viewed, exported, tagged, noted, handled or purged which conversation, and when.

Also sign-ins (and failed ones), searches, password changes (and failed ones) and
changes to staff accounts. Each row: time, actor, action, the conversation (one row
per conversation for exports and purges, with what was selected in words), and the
client's IP address. It never holds patient text: searches and exports record their
filters without the search text; a failed sign-in with a user name that doesn't
exist is recorded as "?" (people type passwords into that box).

Once a conversation is purged its id (a phone number for Twilio's SMS and WhatsApp)
is replaced in every row by a pseudonym, ``purged:`` and 16 hex digits of an
HMAC-SHA256 keyed with a random key kept in the app's database: the rows still show
what was done to one conversation, and an admin who knows an id can still find them
(the audit page's conversation filter matches the pseudonym too). Anyone holding the
database holds the key, though, and could test candidate phone numbers against it.
Admins read the log at /admin/audit.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import sqlalchemy as sa

from review.store import audit_log, state

ACTIONS = ("view", "search", "export", "tag", "untag", "note", "handle", "reopen", "purge",
           "login", "login_failed", "logout", "user_admin", "password", "password_failed")
PSEUDONYM_PREFIX = "purged:"
PSEUDONYM_KEY = "audit_pseudonym_key"


class AuditLog:
    def __init__(self, engine: sa.engine.Engine) -> None:
        self.engine = engine
        self._key: Optional[bytes] = None

    # -- pseudonyms of purged conversations ----------------------------------

    def _pseudonym_key(self) -> bytes:
        if self._key is None:
            def read() -> Optional[str]:
                with self.engine.connect() as db:
                    return db.execute(sa.select(state.c.value).where(state.c.key == PSEUDONYM_KEY)).scalar()
            value = read()
            if value is None:
                try:
                    with self.engine.begin() as db:
                        db.execute(state.insert().values(key=PSEUDONYM_KEY, value=secrets.token_hex(32)))
                except sa.exc.IntegrityError:  # another process made it first
                    pass
                value = read()
            self._key = bytes.fromhex(value)
        return self._key

    def pseudonym(self, conversation_id: str) -> str:
        """What the audit log says instead of a purged conversation's id."""
        digest = hmac.new(self._pseudonym_key(), conversation_id.encode("utf-8"), hashlib.sha256)
        return PSEUDONYM_PREFIX + digest.hexdigest()[:16]

    def pseudonymise(self, conversation_ids: Sequence[str]) -> int:
        """Replaces these conversations' ids by their pseudonyms in every row; returns how many rows."""
        ids = [cid for cid in conversation_ids if cid]
        changed = 0
        statement = (audit_log.update().where(audit_log.c.conversation_id == sa.bindparam("b_id"))
                     .values(conversation_id=sa.bindparam("b_pseudonym")))
        with self.engine.begin() as db:
            for start in range(0, len(ids), 500):
                batch = ids[start:start + 500]
                result = db.execute(statement, [{"b_id": cid, "b_pseudonym": self.pseudonym(cid)}
                                                for cid in batch])
                changed += result.rowcount or 0
        return changed

    # -- writing and reading -------------------------------------------------

    def record(self, actor: str, action: str, conversation_id: Optional[str] = None,
               detail: Optional[str] = None, ip: Optional[str] = None) -> None:
        with self.engine.begin() as db:
            db.execute(audit_log.insert().values(
                at=time.time(), actor=(actor or "?")[:64], action=action[:32],
                conversation_id=conversation_id, detail=(detail or None) and detail[:2000],
                ip=(ip or None) and ip[:64]))

    def record_many(self, actor: str, action: str, conversation_ids: Sequence[str],
                    detail: Optional[str] = None, ip: Optional[str] = None) -> None:
        now = time.time()
        rows = [{"at": now, "actor": (actor or "?")[:64], "action": action[:32], "conversation_id": cid,
                 "detail": (detail or None) and detail[:2000], "ip": (ip or None) and ip[:64]}
                for cid in conversation_ids]
        with self.engine.begin() as db:
            for start in range(0, len(rows), 500):
                db.execute(audit_log.insert(), rows[start:start + 500])

    def page(self, page: int, page_size: int, actor: str = "", action: str = "",
             conversation_id: str = "") -> "AuditPage":
        clauses = []
        if actor:
            clauses.append(audit_log.c.actor == actor)
        if action:
            clauses.append(audit_log.c.action == action)
        if conversation_id:
            # A purged conversation's rows are under its pseudonym: an admin who knows the id finds them.
            wanted = {conversation_id}
            if not conversation_id.startswith(PSEUDONYM_PREFIX):
                wanted.add(self.pseudonym(conversation_id))
            clauses.append(audit_log.c.conversation_id.in_(sorted(wanted)))
        with self.engine.connect() as db:
            total = db.execute(sa.select(sa.func.count()).select_from(audit_log).where(*clauses)).scalar() or 0
            pages = max(1, -(-total // page_size))
            page = min(page, pages)
            rows = [dict(r._mapping) for r in db.execute(
                sa.select(audit_log).where(*clauses).order_by(audit_log.c.id.desc())
                .limit(page_size).offset((page - 1) * page_size))]
        return AuditPage(rows=rows, total=total, page=page, pages=pages)

    def entries(self, **where: Any) -> List[Dict[str, Any]]:
        """Rows matching column values exactly, oldest first (for tests and the CLI)."""
        clauses = [audit_log.c[key] == value for key, value in where.items()]
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(
                sa.select(audit_log).where(*clauses).order_by(audit_log.c.id))]


@dataclass
class AuditPage:
    rows: List[Dict[str, Any]]
    total: int
    page: int
    pages: int
