"""The durable outbox: once per conversation and sign, retried, never lost, delivered once."""
from __future__ import annotations

import json
import sqlite3
import time

import pytest

import common.outbox as outbox_module
from common.outbox import (
    MAX_BACKOFF_S,
    DeliveryWorker,
    Outbox,
    OutboxSettings,
    backoff,
    escalation_notifications,
)
from tests.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


def make_outbox(tmp_path, url=None) -> Outbox:
    return Outbox(OutboxSettings(db_path=tmp_path / "outbox.db", webhook_url=url,
                                 log_path=tmp_path / "notifications.jsonl"))


def payloads(conversation, *signs):
    return escalation_notifications(conversation, list(signs), [], time.time())


def make_due(box: Outbox) -> None:
    with sqlite3.connect(box.settings.db_path) as db:
        db.execute("UPDATE clinic_notifications SET next_attempt_at = 0, lease_until = 0")


def test_one_notification_per_conversation_and_sign(tmp_path):
    box = make_outbox(tmp_path)
    assert box.enqueue("c1", payloads("c1", "foot_drop", "bladder_control")) == ["foot_drop", "bladder_control"]
    assert box.enqueue("c1", payloads("c1", "foot_drop")) == []
    assert box.enqueue("c2", payloads("c2", "foot_drop")) == ["foot_drop"]
    assert len(box.pending()) == 3


def test_notifications_carry_no_patient_text():
    [payload] = escalation_notifications("c1", ["foot_drop"], ["foot drop"], 0).values()
    assert set(payload) == {"type", "level", "conversation_id", "sign", "label", "created_at"}
    assert payload["label"] == "foot drop" and payload["created_at"] == "1970-01-01T00:00:00Z"
    [fallback] = escalation_notifications("c1", ["both_legs"], [], 0).values()
    assert fallback["label"] == "both legs"


def test_delivery_posts_json_with_an_idempotency_key(tmp_path, receiver):
    box = make_outbox(tmp_path, receiver.url)
    box.enqueue("c1", payloads("c1", "foot_drop"))
    assert box.deliver_due() == 1
    [request] = receiver.requests
    assert request["idempotency_key"] == "c1:foot_drop"
    assert request["json"]["sign"] == "foot_drop" and request["json"]["conversation_id"] == "c1"
    assert box.pending() == []
    assert box.status("c1", ["foot_drop", "x"]) == {"foot_drop": "delivered", "x": "unknown"}


@pytest.mark.parametrize("failure", ["down", "503"])
def test_a_failed_delivery_is_kept_and_retried_later(tmp_path, receiver, failure):
    box = make_outbox(tmp_path, receiver.url)
    if failure == "down":
        receiver.stop()
    else:
        receiver.status = 503
    box.enqueue("c1", payloads("c1", "foot_drop"))
    assert box.deliver_due() == 0
    [pending] = box.pending()
    assert pending["attempts"] == 1 and pending["last_error"]
    assert pending["next_attempt_at"] > time.time()
    assert box.deliver_due() == 0  # not due yet: no new attempt
    assert box.pending()[0]["attempts"] == 1


def test_after_the_target_comes_back_each_arrives_exactly_once(tmp_path, receiver):
    box = make_outbox(tmp_path, receiver.url)
    receiver.stop()
    for conversation in ("c1", "c2"):
        box.enqueue(conversation, payloads(conversation, "foot_drop", "bladder_control"))
    for _ in range(3):  # several failed rounds
        box.deliver_due()
        make_due(box)
    receiver.start()
    assert box.deliver_due() == 4
    make_due(box)
    assert box.deliver_due() == 0
    assert sorted(receiver.keys()) == ["c1:bladder_control", "c1:foot_drop", "c2:bladder_control", "c2:foot_drop"]


def test_nothing_is_lost_across_a_restart(tmp_path, receiver):
    receiver.stop()
    first = make_outbox(tmp_path, receiver.url)
    first.enqueue("c1", payloads("c1", "saddle_numbness"))
    first.deliver_due()
    del first  # the process goes away
    receiver.start()
    second = make_outbox(tmp_path, receiver.url)  # a new process, same database
    make_due(second)
    assert second.deliver_due() == 1
    assert receiver.keys() == ["c1:saddle_numbness"]


def test_two_workers_never_send_the_same_row_twice(tmp_path, receiver):
    one, two = make_outbox(tmp_path, receiver.url), make_outbox(tmp_path, receiver.url)
    for n in range(20):
        one.enqueue(f"c{n}", payloads(f"c{n}", "foot_drop"))
    workers = [DeliveryWorker(one, interval=0.05), DeliveryWorker(two, interval=0.05)]
    for worker in workers:
        worker.start()
    try:
        receiver.wait_for(20, timeout=20)
    finally:
        for worker in workers:
            worker.stop()
            worker.join(timeout=5)
    assert sorted(receiver.keys()) == sorted(f"c{n}:foot_drop" for n in range(20))


def test_without_a_webhook_notifications_go_to_the_log(tmp_path):
    box = make_outbox(tmp_path, None)
    box.enqueue("c1", payloads("c1", "foot_drop", "both_legs"))
    assert box.deliver_due() == 2
    lines = [json.loads(line) for line in (tmp_path / "notifications.jsonl").read_text().splitlines()]
    assert [line["idempotency_key"] for line in lines] == ["c1:foot_drop", "c1:both_legs"]


def test_backoff_grows_and_is_capped():
    waits = [backoff(n) for n in range(1, 20)]
    assert waits[0] == outbox_module.BASE_BACKOFF_S
    assert all(a <= b for a, b in zip(waits, waits[1:]))
    assert waits[-1] == MAX_BACKOFF_S


def test_the_worker_delivers_when_woken_and_stops_cleanly(tmp_path, receiver):
    box = make_outbox(tmp_path, receiver.url)
    worker = DeliveryWorker(box, interval=60)
    worker.start()
    box.enqueue("c1", payloads("c1", "foot_drop"))
    worker.wake.set()
    assert receiver.wait_for(1, timeout=10) == ["c1:foot_drop"]
    worker.stop()
    worker.join(timeout=5)
    assert not worker.is_alive()


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    from common.settings import endpoints_section

    endpoints_section.cache_clear()
    monkeypatch.setenv("OUTBOX_DB", str(tmp_path / "x.db"))
    monkeypatch.setenv("CLINIC_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    settings = OutboxSettings.from_config()
    assert settings.db_path == tmp_path / "x.db"
    assert settings.webhook_url == "http://127.0.0.1:9/hook"
    monkeypatch.delenv("CLINIC_WEBHOOK_URL")
    assert OutboxSettings.from_config().webhook_url is None
