"""The review app reads the tracker store Rasa writes: the URL is built from endpoints.yml as Rasa builds it."""
from __future__ import annotations

import warnings

import pytest
import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore

from common.settings import PROJECT_DIR
from review.config import ConfigError, ReviewConfig, tracker_store_url


def endpoints(tmp_path, body: str):
    path = tmp_path / "endpoints.yml"
    path.write_text(body)
    return path


def rendered(url) -> str:
    return url if isinstance(url, str) else url.render_as_string(hide_password=False)


def test_the_projects_endpoints_point_at_var_conversations_db():
    url = tracker_store_url(PROJECT_DIR / "endpoints.yml")
    assert url.get_backend_name() == "sqlite"
    assert url.database == str(PROJECT_DIR / "var" / "conversations.db")


def test_postgresql_as_rasa_builds_it(tmp_path):
    path = endpoints(tmp_path, """
tracker_store:
  type: SQL
  dialect: "postgresql"
  url: "db.clinic.internal"
  port: 5433
  username: "rasa"
  password: "s3cret"
  db: "conversations"
  login_db: "postgres"
""")
    url = tracker_store_url(path)
    assert rendered(url) == "postgresql://rasa:s3cret@db.clinic.internal:5433/conversations"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rasa_url = SQLTrackerStore.get_db_url("postgresql", "db.clinic.internal", 5433, "conversations",
                                              "rasa", "s3cret")
    assert rendered(url) == rendered(rasa_url)


def test_a_complete_url_and_environment_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_DB_PASSWORD", "from-the-env")
    path = endpoints(tmp_path, """
tracker_store:
  type: SQL
  dialect: "postgresql"
  url: "db.internal:6543"
  username: "rasa"
  password: ${TRACKER_DB_PASSWORD}
  db: "rasa"
""")
    assert rendered(tracker_store_url(path)) == "postgresql://rasa:from-the-env@db.internal:6543/rasa"
    full = endpoints(tmp_path, 'tracker_store:\n  type: SQL\n  url: "postgresql://u:p@h:5432/d"\n')
    assert tracker_store_url(full) == "postgresql://u:p@h:5432/d"


def test_relative_sqlite_paths_are_taken_from_the_project(tmp_path):
    path = endpoints(tmp_path, 'tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: "var/other.db"\n')
    assert tracker_store_url(path).database == str(PROJECT_DIR / "var" / "other.db")


def test_a_subclass_of_rasas_sql_tracker_store_is_read_like_type_sql(tmp_path):
    path = endpoints(tmp_path, "tracker_store:\n  type: tracker_stores.resilient_sql.ResilientSQLTrackerStore\n"
                               '  dialect: "sqlite"\n  db: "var/conversations.db"\n')
    assert tracker_store_url(path).database == str(PROJECT_DIR / "var" / "conversations.db")


@pytest.mark.parametrize("body", [
    "action_endpoint:\n  url: x\n", "tracker_store:\n  type: redis\n  url: localhost\n",
    "tracker_store:\n  type: rasa.core.tracker_store.InMemoryTrackerStore\n",
    "tracker_store:\n  type: tracker_stores.no_such_module.Store\n",
])
def test_stores_it_cannot_read_are_reported(tmp_path, body):
    with pytest.raises(ConfigError):
        tracker_store_url(endpoints(tmp_path, body))


def test_settings_from_the_environment(tmp_path):
    config = ReviewConfig.from_env({})
    assert config.database_url == f"sqlite:///{PROJECT_DIR / 'var' / 'review.db'}"
    assert config.redact_contacts and not config.secure_cookies and config.page_size == 50
    assert config.outbox_path.is_absolute() and config.outbox_path.name == "outbox.db"
    custom = ReviewConfig.from_env({"REVIEW_DATABASE_URL": "postgresql://r:p@h/review", "REVIEW_SECURE_COOKIES": "1",
                                    "REVIEW_TRUSTED_PROXIES": "10.0.0.1, 10.0.0.2", "REVIEW_LOW_CONFIDENCE": "0.5",
                                    "OUTBOX_DB": str(tmp_path / "o.db")})
    assert custom.database_url.startswith("postgresql://") and custom.secure_cookies
    assert custom.trusted_proxies == frozenset({"10.0.0.1", "10.0.0.2"}) and custom.low_confidence == 0.5
    assert custom.outbox_path == tmp_path / "o.db"
    for bad in ({"REVIEW_PAGE_SIZE": "many"}, {"REVIEW_IDLE_MINUTES": "0"}):
        with pytest.raises(ConfigError):
            ReviewConfig.from_env(bad)


def test_the_app_database_has_indexes_on_what_the_list_filters(tmp_path):
    from review.store import create_app_engine
    engine = create_app_engine(f"sqlite:///{tmp_path / 'r.db'}")
    indexes = {tuple(ix["column_names"]) for ix in sa.inspect(engine).get_indexes("review_conversations")}
    for columns in [("last_ts",), ("escalated", "last_ts"), ("checklist_outcome", "last_ts"),
                    ("has_fallback", "last_ts"), ("has_unanswered", "last_ts"), ("min_confidence",),
                    ("first_day",)]:
        assert columns in indexes
