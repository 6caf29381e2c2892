"""Fixtures for the review app: real SQLite tracker stores written by Rasa's SQLTrackerStore.

* ``demo_tracker``: thousands of demo conversations (review.seed_demo), written once;
* ``small_tracker``: a few dozen, copied fresh for each test that changes the store;
* ``make_app``: the Flask app over a tracker store, with its own fresh database;
* ``sign_in``: a test client signed in as a given account, through the login form.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Callable, Optional

import pytest

from review.app import create_app
from review.config import ReviewConfig
from review.seed_demo import DemoWriter

DEMO_CONVERSATIONS = 2000
DEMO_END = "2025-06-30"
ADMIN = ("alice.admin", "correct horse battery staple")
VIEWER = ("victor.viewer", "tulip window marble 2468")


def seed(path: Path, conversations: int, end: str = DEMO_END) -> DemoWriter:
    from datetime import date
    writer = DemoWriter(path / "conversations.db", path / "outbox.db", seed=7)
    writer.write(conversations, date.fromisoformat(end), 60)
    return writer


@pytest.fixture(scope="session")
def demo_tracker(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demo")
    seed(path, DEMO_CONVERSATIONS)
    return path


@pytest.fixture(scope="session")
def small_seed(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("small")
    seed(path, 40)
    return path


@pytest.fixture
def small_tracker(small_seed, tmp_path) -> Path:
    """A fresh copy of the small store, for a test that changes it."""
    for name in ("conversations.db", "outbox.db"):
        shutil.copy(small_seed / name, tmp_path / name)
    return tmp_path


def config_for(tracker_dir: Path, app_db: Path, **changes) -> ReviewConfig:
    return ReviewConfig(
        database_url=f"sqlite:///{app_db}",
        tracker_url=f"sqlite:///{tracker_dir / 'conversations.db'}",
        outbox_path=tracker_dir / "outbox.db",
        **changes,
    )


@pytest.fixture
def make_app(tmp_path) -> Callable:
    """make_app(tracker_dir, **config changes) -> a Flask app with an admin and a viewer."""
    counter = [0]

    def build(tracker_dir: Path, app_db: Optional[Path] = None, users: bool = True, **changes):
        counter[0] += 1
        db = app_db or tmp_path / f"review-{counter[0]}.db"
        app = create_app(config_for(tracker_dir, db, **changes))
        app.testing = True
        accounts = app.extensions["review"]["accounts"]
        if users and accounts.get_user(ADMIN[0]) is None:
            accounts.create_user(ADMIN[0], ADMIN[1], "admin")
            accounts.create_user(VIEWER[0], VIEWER[1], "viewer")
        return app

    return build


def login_token(client) -> str:
    page = client.get("/login")
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def csrf_of(client, path: str = "/account") -> str:
    """The session's CSRF token, read from a page's form."""
    page = client.get(path)
    return re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)


def do_login(client, username: str, password: str, **environ):
    token = login_token(client)
    return client.post("/login", data={"csrf_token": token, "username": username, "password": password,
                                       "next": "/"}, environ_base=environ or {})


@pytest.fixture
def sign_in() -> Callable:
    def signed_in(app, who=ADMIN):
        client = app.test_client()
        response = do_login(client, *who)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client
    return signed_in


@pytest.fixture(scope="session")
def demo_app(demo_tracker, tmp_path_factory):
    """One app over the demo store for read-only tests (its summary is built once)."""
    db = tmp_path_factory.mktemp("demo-app") / "review.db"
    app = create_app(config_for(demo_tracker, db))
    app.testing = True
    accounts = app.extensions["review"]["accounts"]
    accounts.create_user(ADMIN[0], ADMIN[1], "admin")
    accounts.create_user(VIEWER[0], VIEWER[1], "viewer")
    app.extensions["review"]["store"].refresh()
    return app


def pk_of(app, conversation_id: str) -> int:
    store = app.extensions["review"]["store"]
    store.refresh()
    return store.summary_by_id(conversation_id)["id"]


def add_conversation(tracker_dir: Path, sender: str, user_text: str, bot_text: str = "An answer.",
                     ts: Optional[float] = None, channel: str = "rest", citations=("p01",),
                     **user_kwargs) -> None:
    """Appends one exchange (a patient message and a cited reply) to a tracker store, through Rasa."""
    import time as _time
    from rasa.shared.core.events import SessionStarted

    writer = DemoWriter(tracker_dir / "conversations.db", None, seed=1)
    ts = _time.time() if ts is None else ts
    user_kwargs.setdefault("intent", "faq")
    user_kwargs.setdefault("confidence", 0.95)
    user_kwargs.setdefault("topic", "what_is_it" if user_kwargs["intent"] == "faq" else None)
    user_kwargs.setdefault("answer_conf", 0.9)
    events = [writer.action(ts, "action_session_start", policy=None), SessionStarted(timestamp=ts),
              writer.action(ts, "action_listen", policy=None),
              writer.user(ts + 1, user_text, channel=channel, **user_kwargs),
              writer.action(ts + 1.2, "utter_faq"),
              writer.bot(ts + 1.3, bot_text, "utter_faq/what_is_it", list(citations)),
              writer.action(ts + 1.4, "action_listen", policy=None)]
    writer.save(sender, events)
