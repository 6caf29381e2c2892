"""Fixtures for end-to-end tests: the real servers, started once per session."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.e2e.servers import PROJECT, Servers
from tests.fake_telegram import BOT_USERNAME, FakeTelegramAPI
from tests.webhook_receiver import WebhookReceiver

TELEGRAM_TOKEN = "123456:TEST-token"
TELEGRAM_WEBHOOK = "https://bot.clinic.example.org/webhooks/telegram/webhook"
TWILIO_AUTH_TOKEN = "twilio-test-auth-token"


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
def telegram():
    """The Telegram Bot API, played by a local stand-in (no internet)."""
    api = FakeTelegramAPI(TELEGRAM_TOKEN).start()
    yield api
    api.stop()


@pytest.fixture(scope="session")
def servers(tmp_path_factory, model_path, webhook, telegram):
    # Telegram and Twilio are switched on from the environment, as in production;
    # Messenger stays off, which the channel tests check too.
    channels = {
        "TELEGRAM_ACCESS_TOKEN": TELEGRAM_TOKEN, "TELEGRAM_BOT_USERNAME": BOT_USERNAME,
        "TELEGRAM_WEBHOOK_URL": TELEGRAM_WEBHOOK, "TELEGRAM_API_BASE": telegram.base,
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN,
        "TWILIO_NUMBER": "+15550100",
        "FACEBOOK_VERIFY_TOKEN": "", "FACEBOOK_APP_SECRET": "", "FACEBOOK_PAGE_ACCESS_TOKEN": "",
    }
    running = Servers(workdir=tmp_path_factory.mktemp("e2e"), model=model_path,
                      webhook_url=webhook.url, extra_env=channels)
    running.start_actions()
    running.start_rasa()
    running.start_web()
    yield running
    running.stop()


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
