"""The review app's settings: the environment, and endpoints.yml for the tracker store.

| setting | variable | default |
|---|---|---|
| the app's own database | REVIEW_DATABASE_URL | sqlite:///var/review.db |
| host and port | REVIEW_HOST, REVIEW_PORT | 127.0.0.1, 8081 |
| mask phone numbers and e-mail addresses | REVIEW_REDACT_CONTACTS | 1 (on) |
| Secure cookies | REVIEW_SECURE_COOKIES | 0 (also Secure when the request came over HTTPS) |
| proxies whose X-Forwarded-For/-Proto are trusted | REVIEW_TRUSTED_PROXIES | none |
| session idle / absolute timeout | REVIEW_IDLE_MINUTES, REVIEW_SESSION_HOURS | 30, 12 |
| low-confidence threshold | REVIEW_LOW_CONFIDENCE | 0.6 |
| failed logins allowed per account / per IP in the window | REVIEW_LOGIN_LIMIT_ACCOUNT, REVIEW_LOGIN_LIMIT_IP, REVIEW_LOGIN_WINDOW_MINUTES | 5, 20, 15 |
| conversations per page | REVIEW_PAGE_SIZE | 50 |

The tracker store comes from ``tracker_store`` in endpoints.yml (ENDPOINTS_FILE
overrides the file), read with Rasa's own reader (so ``${VAR}`` values are taken
from the environment) and turned into an SQLAlchemy URL by Rasa's own
``SQLTrackerStore.get_db_url``. The outbox is the one common/outbox.py uses.
"""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterator, Mapping, Optional, Union

from common.settings import PROJECT_DIR, endpoints_path

DEFAULT_PORT = 8081
DEFAULT_HOST = "127.0.0.1"


class ConfigError(Exception):
    """The configuration can't be used; the message says why and what to change."""


def _flag(value: Optional[str], default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _number(env: Mapping[str, str], name: str, default: float, kind=int, minimum: float = 0):
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError as error:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from error
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value


@contextmanager
def rasa_quietly() -> Iterator[None]:
    """Uses Rasa without its deprecation warnings on stderr (about Rasa's own dependencies).

    Rasa resets the warning filters while it imports, so a filter can't silence them.
    """
    shown = warnings.showwarning
    warnings.showwarning = lambda *args, **kwargs: None
    try:
        yield
    finally:
        warnings.showwarning = shown


def tracker_store_url(endpoints_file: Union[str, Path], project_dir: Path = PROJECT_DIR) -> Any:
    """The SQLAlchemy URL of the SQL tracker store configured in ``endpoints_file``.

    Built exactly as Rasa's SQLTrackerStore builds it (dialect, url/host, port, db,
    username, password, query; ``url`` may be a complete URL), except that it points
    at the working database ``db`` even when ``login_db`` is set (Rasa only logs in
    through ``login_db`` to create ``db``). A relative SQLite path is taken from the
    project folder, where ``make run`` starts Rasa.
    """
    with rasa_quietly():
        from rasa.core.tracker_store import SQLTrackerStore, validate_port
        from rasa.utils.endpoints import read_endpoint_config

        config = read_endpoint_config(str(endpoints_file), "tracker_store")
    if config is None:
        raise ConfigError(f"{endpoints_file} has no tracker_store: the review app reads Rasa's SQL tracker store")
    if not is_sql_tracker_store(config.type):
        raise ConfigError(
            f"tracker_store in {endpoints_file} is of type {config.type!r}; the review app "
            "reads Rasa's SQL tracker store (type: SQL, or a subclass such as "
            "tracker_stores.resilient_sql.ResilientSQLTrackerStore; SQLite or PostgreSQL)"
        )
    kwargs = dict(config.kwargs)
    with rasa_quietly():  # Rasa builds the URL with SQLAlchemy's deprecated URL()
        url = _rasa_url(SQLTrackerStore, validate_port, config, kwargs)
    if not isinstance(url, str) and url.get_backend_name() == "sqlite" and url.database:
        path = Path(url.database)
        if url.database != ":memory:" and not path.is_absolute():
            url = url.set(database=str(project_dir / path))
    return url


def is_sql_tracker_store(store_type: Optional[str]) -> bool:
    """Whether endpoints.yml's tracker_store type keeps events in Rasa's SQL ``events`` table:
    ``SQL``, or a ``module.Class`` path to a subclass of Rasa's SQLTrackerStore."""
    if not store_type:
        return False
    if store_type.lower() == "sql":
        return True
    with rasa_quietly():
        from rasa.core.tracker_store import SQLTrackerStore
        from rasa.shared.utils.common import class_from_module_path
        try:
            store_class = class_from_module_path(store_type)
        except (ImportError, AttributeError):
            return False
    return isinstance(store_class, type) and issubclass(store_class, SQLTrackerStore)


def _rasa_url(store_class: Any, validate_port: Any, config: Any, kwargs: Dict[str, Any]) -> Any:
    return store_class.get_db_url(
        dialect=kwargs.get("dialect", "sqlite"),
        host=config.url,
        port=validate_port(kwargs.get("port")),
        db=kwargs.get("db", "rasa.db"),
        username=kwargs.get("username"),
        password=kwargs.get("password"),
        login_db=None,
        query=kwargs.get("query"),
    )


@dataclass(frozen=True)
class ReviewConfig:
    """Everything the app needs to know, resolved once at start-up."""

    database_url: str
    tracker_url: Any  # an sqlalchemy URL, or a URL string
    outbox_path: Path
    redact_contacts: bool = True
    secure_cookies: bool = False
    trusted_proxies: FrozenSet[str] = frozenset()
    idle_minutes: int = 30
    session_hours: int = 12
    low_confidence: float = 0.6
    login_limit_account: int = 5
    login_limit_ip: int = 20
    login_window_minutes: int = 15
    page_size: int = 50
    var_dir: Path = PROJECT_DIR / "var"
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None,
                 endpoints_file: Optional[Path] = None) -> "ReviewConfig":
        from common.outbox import OutboxSettings

        env = os.environ if env is None else env
        var_dir = PROJECT_DIR / "var"
        database_url = env.get("REVIEW_DATABASE_URL") or f"sqlite:///{var_dir / 'review.db'}"
        proxies = (env.get("REVIEW_TRUSTED_PROXIES") or "").replace(",", " ").split()
        outbox = env.get("OUTBOX_DB")
        settings = OutboxSettings.from_config()
        outbox_path = Path(outbox) if outbox else settings.db_path
        if not outbox_path.is_absolute():
            outbox_path = PROJECT_DIR / outbox_path
        if settings.database_url and not outbox:
            # The outbox is in PostgreSQL (the replicated set-up): review/tracker.py reads it there.
            outbox_path = settings.database_url  # type: ignore[assignment]
        return cls(
            database_url=database_url,
            tracker_url=tracker_store_url(endpoints_file or endpoints_path()),
            outbox_path=outbox_path,
            redact_contacts=_flag(env.get("REVIEW_REDACT_CONTACTS"), True),
            secure_cookies=_flag(env.get("REVIEW_SECURE_COOKIES"), False),
            trusted_proxies=frozenset(proxies),
            idle_minutes=_number(env, "REVIEW_IDLE_MINUTES", 30, int, 1),
            session_hours=_number(env, "REVIEW_SESSION_HOURS", 12, int, 1),
            low_confidence=_number(env, "REVIEW_LOW_CONFIDENCE", 0.6, float, 0),
            login_limit_account=_number(env, "REVIEW_LOGIN_LIMIT_ACCOUNT", 5, int, 1),
            login_limit_ip=_number(env, "REVIEW_LOGIN_LIMIT_IP", 20, int, 1),
            login_window_minutes=_number(env, "REVIEW_LOGIN_WINDOW_MINUTES", 15, int, 1),
            page_size=_number(env, "REVIEW_PAGE_SIZE", 50, int, 5),
            var_dir=var_dir,
        )

    def with_(self, **changes: Any) -> "ReviewConfig":
        return replace(self, **changes)
