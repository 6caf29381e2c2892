"""Staff accounts, passwords, sessions, CSRF tokens and login rate limits.

* Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's
  low-memory profile) and rehashed on login when those defaults change. There are
  no default accounts or passwords: the first admin is created with
  ``python -m review.manage create-user NAME --role admin``.
* Sessions are server-side: the cookie holds a random token, the database only its
  SHA-256, so a leaked database can't be replayed. Each session has its own CSRF
  token. Logging out deletes the session; so does an idle or absolute timeout, and
  disabling the account.
* Failed logins are stored (so limits survive a restart) and limited per account
  and per IP address within a window.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from review.store import login_failures, sessions, users

ROLES = ("viewer", "admin")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
# The commonest passwords of 12 characters or more; anything on such a list is refused.
COMMON = {
    "password1234", "123456789012", "qwertyuiopas", "passwordpassword", "iloveyou1234",
    "administrator", "letmein12345", "welcome12345", "changeme1234", "qwerty123456",
    "1q2w3e4r5t6y", "password123!", "abcdefghijkl", "aaaaaaaaaaaa", "trustno1trustno1",
}

_hasher = PasswordHasher()
# Verified against when the account doesn't exist, so both cases take as long.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AuthError(ValueError):
    """A request about accounts that can't be done; the message says why."""


def password_problem(password: str, username: str = "") -> Optional[str]:
    """Why a password is too weak, or None."""
    if len(password) < MIN_PASSWORD:
        return f"Use at least {MIN_PASSWORD} characters (a few unrelated words make a good password)."
    if len(password) > MAX_PASSWORD:
        return f"Use at most {MAX_PASSWORD} characters."
    if len(set(password)) < 6:
        return "Use more different characters."
    lowered = password.lower()
    if lowered in COMMON or lowered.strip("0123456789!") in {c.strip("0123456789!") for c in COMMON}:
        return "That password is too common."
    if username and username.lower() in lowered:
        return "Don't put the user name in the password."
    if lowered in {"clinicreview", "reviewreview", "calcifieddisc"}:
        return "That password is too easy to guess."
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass
class User:
    id: int
    username: str
    role: str
    disabled: bool

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass
class Session:
    user: User
    token_hash: str
    csrf_token: str
    created_at: float
    last_seen_at: float


def _user(row: Any) -> User:
    return User(id=row.id, username=row.username, role=row.role, disabled=bool(row.disabled))


class Accounts:
    """Users, sessions and login attempts in the app's database."""

    def __init__(self, engine: sa.engine.Engine, idle_seconds: float, absolute_seconds: float,
                 limit_account: int, limit_ip: int, window_seconds: float) -> None:
        self.engine = engine
        self.idle_seconds = idle_seconds
        self.absolute_seconds = absolute_seconds
        self.limit_account = limit_account
        self.limit_ip = limit_ip
        self.window_seconds = window_seconds

    # -- users ---------------------------------------------------------------

    @staticmethod
    def check_username(username: str) -> str:
        username = (username or "").strip()
        if not USERNAME.match(username):
            raise AuthError("A user name is 2 to 64 letters, digits, dots, dashes, underscores or @.")
        return username

    def create_user(self, username: str, password: str, role: str) -> User:
        username = self.check_username(username)
        if role not in ROLES:
            raise AuthError(f"The role is one of: {', '.join(ROLES)}.")
        problem = password_problem(password, username)
        if problem:
            raise AuthError(f"Password refused: {problem}")
        now = time.time()
        with self.engine.begin() as db:
            if db.execute(sa.select(users.c.id).where(sa.func.lower(users.c.username) == username.lower())).first():
                raise AuthError(f"There is already a user called {username}.")
            pk = db.execute(users.insert().values(
                username=username, password_hash=hash_password(password), role=role,
                disabled=False, created_at=now, updated_at=now)).inserted_primary_key[0]
        return User(id=pk, username=username, role=role, disabled=False)

    def get_user(self, username: str) -> Optional[User]:
        with self.engine.connect() as db:
            row = db.execute(sa.select(users).where(sa.func.lower(users.c.username) == (username or "").strip().lower())).first()
        return _user(row) if row else None

    def get_user_by_id(self, user_id: int) -> Optional[User]:
        with self.engine.connect() as db:
            row = db.execute(sa.select(users).where(users.c.id == user_id)).first()
        return _user(row) if row else None

    def list_users(self) -> List[Dict[str, Any]]:
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(
                sa.select(users.c.id, users.c.username, users.c.role, users.c.disabled,
                          users.c.created_at, users.c.last_login_at).order_by(users.c.username))]

    def count_users(self) -> int:
        with self.engine.connect() as db:
            return int(db.execute(sa.select(sa.func.count()).select_from(users)).scalar() or 0)

    def _active_admins(self, db) -> int:  # noqa: ANN001
        return int(db.execute(sa.select(sa.func.count()).select_from(users)
                              .where(users.c.role == "admin", users.c.disabled.is_(False))).scalar() or 0)

    def update_user(self, username: str, role: Optional[str] = None, disabled: Optional[bool] = None) -> User:
        """Changes a role or disables/enables an account; never leaves no active admin."""
        user = self.get_user(username)
        if user is None:
            raise AuthError(f"There is no user called {username}.")
        if role is not None and role not in ROLES:
            raise AuthError(f"The role is one of: {', '.join(ROLES)}.")
        values: Dict[str, Any] = {"updated_at": time.time()}
        if role is not None:
            values["role"] = role
        if disabled is not None:
            values["disabled"] = disabled
        with self.engine.begin() as db:
            db.execute(users.update().where(users.c.id == user.id).values(**values))
            if self._active_admins(db) == 0:
                raise AuthError("That would leave no active admin.")
            if disabled:
                db.execute(sessions.delete().where(sessions.c.user_id == user.id))
        return self.get_user_by_id(user.id)  # type: ignore[return-value]

    def set_password(self, username: str, password: str) -> None:
        user = self.get_user(username)
        if user is None:
            raise AuthError(f"There is no user called {username}.")
        problem = password_problem(password, user.username)
        if problem:
            raise AuthError(f"Password refused: {problem}")
        with self.engine.begin() as db:
            db.execute(users.update().where(users.c.id == user.id)
                       .values(password_hash=hash_password(password), updated_at=time.time()))
            db.execute(sessions.delete().where(sessions.c.user_id == user.id))

    def verify(self, username: str, password: str) -> Optional[User]:
        """The user when the password is right and the account active; None otherwise."""
        with self.engine.connect() as db:
            row = db.execute(sa.select(users).where(sa.func.lower(users.c.username) == (username or "").strip().lower())).first()
        stored = row.password_hash if row else _DUMMY_HASH
        try:
            _hasher.verify(stored, password or "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None or row.disabled:
            return None
        values: Dict[str, Any] = {"last_login_at": time.time()}
        if _hasher.check_needs_rehash(stored):
            values["password_hash"] = hash_password(password)
        with self.engine.begin() as db:
            db.execute(users.update().where(users.c.id == row.id).values(**values))
        return _user(row)

    # -- login rate limits ---------------------------------------------------

    def retry_after(self, username: str, ip: str) -> int:
        """Seconds until another login attempt is allowed for this account or address; 0 when allowed now."""
        now = time.time()
        since = now - self.window_seconds
        name = (username or "").strip().lower()[:64]
        waits = []
        with self.engine.connect() as db:
            for column, value, limit in ((login_failures.c.username, name, self.limit_account),
                                         (login_failures.c.ip, ip, self.limit_ip)):
                if not value:
                    continue
                times = [r[0] for r in db.execute(
                    sa.select(login_failures.c.at).where(column == value, login_failures.c.at > since)
                    .order_by(login_failures.c.at.desc()).limit(limit))]
                if len(times) >= limit:
                    waits.append(int(min(times) + self.window_seconds - now) + 1)
        return max(waits) if waits else 0

    def record_failure(self, username: str, ip: str) -> None:
        now = time.time()
        with self.engine.begin() as db:
            db.execute(login_failures.insert().values(username=(username or "").strip().lower()[:64],
                                                      ip=ip[:64], at=now))
            db.execute(login_failures.delete().where(login_failures.c.at < now - 7 * 86400))

    def clear_failures(self, username: str) -> None:
        with self.engine.begin() as db:
            db.execute(login_failures.delete().where(
                login_failures.c.username == (username or "").strip().lower()[:64]))

    # -- sessions ------------------------------------------------------------

    def start_session(self, user: User, ip: str) -> str:
        """A new session for the user; returns the cookie's token (only its hash is stored)."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        with self.engine.begin() as db:
            db.execute(sessions.insert().values(
                token_hash=token_hash(token), user_id=user.id, csrf_token=secrets.token_urlsafe(32),
                created_at=now, last_seen_at=now, ip=ip[:64]))
            # Expired sessions of anyone are cleared on the way.
            db.execute(sessions.delete().where(sa.or_(
                sessions.c.last_seen_at < now - self.idle_seconds,
                sessions.c.created_at < now - self.absolute_seconds)))
        return token

    def session(self, token: Optional[str]) -> Optional[Session]:
        """The live session for a cookie token; None when missing, expired or the account is disabled."""
        if not token or len(token) > 200:
            return None
        digest = token_hash(token)
        now = time.time()
        with self.engine.connect() as db:
            row = db.execute(
                sa.select(sessions, users.c.username, users.c.role, users.c.disabled)
                .select_from(sessions.join(users, users.c.id == sessions.c.user_id))
                .where(sessions.c.token_hash == digest)).first()
        if row is None:
            return None
        if (row.disabled or now - row.last_seen_at > self.idle_seconds
                or now - row.created_at > self.absolute_seconds):
            self.end_session(token)
            return None
        if now - row.last_seen_at > 30:
            with self.engine.begin() as db:
                db.execute(sessions.update().where(sessions.c.token_hash == digest).values(last_seen_at=now))
        user = User(id=row.user_id, username=row.username, role=row.role, disabled=bool(row.disabled))
        return Session(user=user, token_hash=digest, csrf_token=row.csrf_token,
                       created_at=row.created_at, last_seen_at=row.last_seen_at)

    def end_session(self, token: str) -> None:
        with self.engine.begin() as db:
            db.execute(sessions.delete().where(sessions.c.token_hash == token_hash(token)))


def same(a: Optional[str], b: Optional[str]) -> bool:
    """Constant-time comparison of two tokens; False when either is missing."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
