"""action_escalate_red_flag and the Rasa-side safety net, with real outboxes."""
from __future__ import annotations

import pytest

import actions.escalation as escalation
from common.outbox import Outbox, OutboxSettings
from common.settings import endpoints_section
from components.escalation_broker import EscalationSafetyNet
from tests.conftest import make_tracker
from tests.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def outbox_env(tmp_path, monkeypatch, receiver):
    monkeypatch.setenv("OUTBOX_DB", str(tmp_path / "outbox.db"))
    monkeypatch.setenv("CLINIC_WEBHOOK_URL", receiver.url)
    endpoints_section.cache_clear()
    escalation.outbox.cache_clear()
    yield tmp_path
    if escalation.outbox.cache_info().currsize:
        escalation.outbox().worker.stop()
    escalation.outbox.cache_clear()


def slots(events):
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


async def test_escalation_is_recorded_and_the_clinic_notified_once(outbox_env, receiver, dispatcher, domain):
    tracker = make_tracker("my foot drags", intent="report_red_flag", sender_id="p-1",
                           slots={"red_flag_signs": ["foot_drop"], "red_flag_labels": ["foot drop"]})
    events = await escalation.ActionEscalateRedFlag().run(dispatcher, tracker, domain)
    [record] = slots(events)["escalations"]
    assert record["signs"] == ["foot_drop"] and record["notified"] == ["foot_drop"]
    assert "let the clinic know" in dispatcher.messages[0]["text"]
    assert receiver.wait_for(1) == ["p-1:foot_drop"]
    assert receiver.requests[0]["json"]["label"] == "foot drop"

    again = make_tracker("it still drags", intent="report_red_flag", sender_id="p-1",
                         slots={"red_flag_signs": ["foot_drop"], "escalations": [record]})
    dispatcher.messages.clear()
    events = await escalation.ActionEscalateRedFlag().run(dispatcher, again, domain)
    assert len(slots(events)["escalations"]) == 2
    assert slots(events)["escalations"][1]["notified"] == []
    assert "already knows" in dispatcher.messages[0]["text"]
    assert receiver.wait_for(2, timeout=2) == ["p-1:foot_drop"]


async def test_without_signs_the_escalation_is_unspecified(outbox_env, receiver, dispatcher, domain):
    tracker = make_tracker("something is wrong", intent="report_red_flag", sender_id="p-2")
    events = await escalation.ActionEscalateRedFlag().run(dispatcher, tracker, domain)
    assert slots(events)["escalations"][0]["signs"] == ["unspecified"]
    assert receiver.wait_for(1) == ["p-2:unspecified"]


def bot_event(signs, labels=None):
    custom = {"escalation": {"level": "emergency", "signs": signs, "labels": labels or []}}
    return {"event": "bot", "sender_id": "p-3", "timestamp": 1.0, "text": "...",
            "data": {"custom": custom}}


def test_the_safety_net_queues_urgent_messages(tmp_path):
    box = Outbox(OutboxSettings(tmp_path / "o.db", None, tmp_path / "log.jsonl"))
    broker = EscalationSafetyNet(box, start_worker=False)
    broker.publish(bot_event(["bladder_control"], ["loss of bladder control"]))
    broker.publish(bot_event(["bladder_control"]))  # the same again: still one
    broker.publish({"event": "bot", "sender_id": "p-3", "data": {"custom": None}})
    broker.publish({"event": "user", "sender_id": "p-3", "text": "hi"})
    [pending] = box.pending()
    assert pending["conversation_id"] == "p-3" and pending["sign"] == "bladder_control"


def test_the_safety_net_never_breaks_the_conversation(tmp_path):
    box = Outbox(OutboxSettings(tmp_path / "o.db", None, tmp_path / "log.jsonl"))
    broker = EscalationSafetyNet(box, start_worker=False)
    (tmp_path / "o.db").unlink()
    (tmp_path / "o.db").mkdir()  # the database can't be opened now
    broker.publish(bot_event(["foot_drop"]))  # logs the error, raises nothing
