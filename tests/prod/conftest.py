"""A throwaway PostgreSQL cluster for the whole session, started by scripts/prod/postgres.py.

The tests are skipped only when PostgreSQL is missing and can't be installed (no apt,
no root); any other failure to create or start the cluster is an error. The cluster
lives in a temporary directory, listens on a free port on 127.0.0.1, and is stopped and
deleted at the end of the session.
"""
from __future__ import annotations

import socket
import tempfile
import uuid
from pathlib import Path
from typing import Dict, Iterator

import pytest

from scripts.prod.postgres import Cluster, PostgresUnavailable, install


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    try:
        install()
    except PostgresUnavailable as error:
        pytest.skip(f"PostgreSQL is not installed and could not be installed: {error}")
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="pg-tests-")), port=free_port())
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def running(postgres: Cluster) -> Iterator[Cluster]:
    """The cluster, started again after the test if the test stopped it."""
    yield postgres
    if not postgres.is_running():
        postgres.start()


def new_database(cluster: Cluster, prefix: str = "t") -> str:
    """A fresh, empty database owned by the cluster's role; returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    cluster.create_database(name)
    return name


def store_settings(cluster: Cluster, database: str) -> Dict[str, object]:
    """The keys of endpoints.yml's tracker_store (type SQL), as Rasa passes them to the store."""
    return {"dialect": "postgresql", "host": cluster.host, "port": cluster.port, "db": database,
            "username": cluster.role, "password": cluster.password()}


@pytest.fixture
def database(postgres: Cluster) -> Iterator[str]:
    name = new_database(postgres)
    yield name
    if postgres.is_running():
        postgres.drop_database(name)


def endpoints_file(path: Path, store_type: str = "SQL", **options: object) -> Path:
    """endpoints.yml's tracker_store as the README gives it, every value from the environment
    (the variables `python3 -m scripts.prod.postgres env` prints), plus ``options``."""
    extra = "".join(f"  {key}: {value}\n" for key, value in options.items())
    path.write_text(f"""tracker_store:
  type: {store_type}
  dialect: "postgresql"
  url: ${{TRACKER_DB_HOST}}
  port: ${{TRACKER_DB_PORT}}
  username: ${{TRACKER_DB_USER}}
  password: ${{TRACKER_DB_PASSWORD}}
  db: ${{TRACKER_DB_NAME}}
{extra}""")
    return path
