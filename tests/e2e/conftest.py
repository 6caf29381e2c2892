"""Fixtures for end-to-end tests: the real servers, started once per session."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.e2e.servers import PROJECT, Servers
from tests.webhook_receiver import WebhookReceiver


def current_model():
    if os.environ.get("E2E_MODEL"):  # a specific model, e.g. while iterating on tests
        return os.environ["E2E_MODEL"]
    result = subprocess.run([sys.executable, "scripts/ensure_model.py", "--path"],
                            cwd=PROJECT, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"no trained model for the current data; run `make model` first ({result.stdout.strip()})")
    return result.stdout.strip()


@pytest.fixture(scope="session")
def model_path():
    return current_model()


@pytest.fixture(scope="session")
def webhook():
    """The clinic's notification webhook, played by a real local HTTP server."""
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="session")
def servers(tmp_path_factory, model_path, webhook):
    running = Servers(workdir=tmp_path_factory.mktemp("e2e"), model=model_path,
                      webhook_url=webhook.url)
    running.start_actions()
    running.start_rasa()
    yield running
    running.stop()


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
