"""deploy/: the replicated set-up's endpoints file as Rasa reads it, and the Helm values describing it."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rasa.core.lock_store import LockStore, RedisLockStore
from rasa.utils.endpoints import read_endpoint_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ENV = {
    "ACTION_SERVER_URL": "http://127.0.0.1:5155/webhook", "ACTION_SERVER_TOKEN": "t0ken",
    "TRACKER_DB_HOST": "127.0.0.1", "TRACKER_DB_PORT": "55432", "TRACKER_DB_USER": "rasa",
    "TRACKER_DB_PASSWORD": "pw", "TRACKER_DB_NAME": "rasa", "REDIS_HOST": "127.0.0.1",
    "REDIS_PORT": "56379", "REDIS_PASSWORD": "rpw", "OUTBOX_DATABASE_URL": "postgresql://rasa:pw@127.0.0.1/rasa",
}


@pytest.fixture
def prod_env(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def test_rasa_reads_the_endpoints_file_with_every_secret_from_the_environment(prod_env):
    endpoints = str(DEPLOY / "endpoints.prod.yml")
    action = read_endpoint_config(endpoints, "action_endpoint")
    assert action.url == ENV["ACTION_SERVER_URL"]
    assert action.headers == {"Authorization": "Bearer t0ken"}  # expanded: the token really is sent
    tracker = read_endpoint_config(endpoints, "tracker_store")
    assert tracker.type == "tracker_stores.resilient_sql.ResilientSQLTrackerStore"
    assert tracker.kwargs["password"] == "pw" and tracker.kwargs["dialect"] == "postgresql"
    lock = read_endpoint_config(endpoints, "lock_store")
    store = LockStore.create(lock)
    assert isinstance(store, RedisLockStore) and store.red.connection_pool.connection_kwargs["socket_timeout"] == 2


def test_no_secret_is_written_in_the_deploy_files():
    for path in DEPLOY.rglob("*.y*ml"):
        for line in path.read_text().splitlines():
            key, _, value = line.strip().partition(":")
            value = value.split("#")[0].strip().strip('"')
            if line.strip().startswith("#") or not value or not any(w in key.lower() for w in ("password", "token", "authorization")):
                continue
            # an environment variable, a Secret's key name, or the placeholder the Secret replaces
            assert ("${" in value or "$(" in value or value == "set-from-secret" or key.endswith("Key")
                    or "secret" in key.lower()), (path.name, line)


def test_the_helm_values_describe_the_same_topology():
    rasa = yaml.safe_load((DEPLOY / "helm" / "values-rasa.yaml").read_text())
    actions = yaml.safe_load((DEPLOY / "helm" / "values-action-server.yaml").read_text())
    assert rasa["replicaCount"] >= 2
    endpoints = rasa["applicationSettings"]["endpoints"]
    assert endpoints["trackerStore"]["type"] == "tracker_stores.resilient_sql.ResilientSQLTrackerStore"
    assert endpoints["lockStore"]["enabled"] and endpoints["lockStore"]["type"] == "redis"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert rasa[probe]["httpGet"]["path"] == "/"
    assert rasa["startupProbe"]["periodSeconds"] * rasa["startupProbe"]["failureThreshold"] >= 120
    assert rasa["ingress"]["annotations"]["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    secrets = {e["valueFrom"]["secretKeyRef"]["key"] for e in rasa["extraEnv"] if "valueFrom" in e}
    assert {"rasa-api-token", "action-server-token", "db-password", "redis-password"} <= secrets
    assert actions["command"] == ["python", "-m", "actions.server"]
    assert actions["service"]["type"] == "ClusterIP" and actions["networkPolicy"]["enabled"]
    assert any(e["name"] == "ACTION_SERVER_TOKEN" for e in actions["extraEnv"])
