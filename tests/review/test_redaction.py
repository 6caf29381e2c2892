"""Phone numbers and e-mail addresses are masked in views and exports (REVIEW_REDACT_CONTACTS, on by default)."""
from __future__ import annotations

import json

import pytest

from review.config import ReviewConfig
from review.redaction import redact, redact_text
from tests.review.conftest import add_conversation, pk_of

SECRET = "please call me on 555-201-4477 or write to jane.doe+spine@example.org about my scan"
PHONE, EMAIL = "555-201-4477", "jane.doe+spine@example.org"


@pytest.mark.parametrize("text, expected", [
    ("call 555-201-4477 now", "call [phone] now"),
    ("ring +44 7700 900123", "ring [phone]"),
    ("(555) 012 3456 after 6", "[phone] after 6"),
    ("tel:+15551234567", "tel:[phone]"),
    ("whatsapp:+15551234567", "whatsapp:[phone]"),
    ("mail jane.doe@example.co.uk.", "mail [email]."),
    ("A.B-C_d@sub.example.org", "[email]"),
])
def test_contacts_are_masked(text, expected):
    assert redact_text(text) == expected


@pytest.mark.parametrize("text", [
    "since 2024-01-15 my leg hurts", "on 15.01.2024 I had a CT", "3 months and 6 weeks", "at 10:30",
    "I am 45", "conversation 867e15113456789abc", "p18 and p05", "L4-L5 disc", "100 mg twice",
])
def test_ordinary_text_is_left_alone(text):
    assert redact_text(text) == text


def test_nested_values_and_switch():
    value = {"a": [f"x {PHONE}"], "b": {"c": EMAIL}, "n": 3}
    assert redact(value) == {"a": ["x [phone]"], "b": {"c": "[email]"}, "n": 3}
    assert redact(value, enabled=False) == value


def test_setting_defaults_to_on(monkeypatch):
    env = {"REVIEW_DATABASE_URL": "sqlite://"}
    assert ReviewConfig.from_env(env).redact_contacts is True
    assert ReviewConfig.from_env({**env, "REVIEW_REDACT_CONTACTS": "0"}).redact_contacts is False


@pytest.fixture
def contact_app(small_tracker, make_app):
    add_conversation(small_tracker, "contact-1", SECRET)
    return small_tracker


def all_outputs(app, client):
    pk = pk_of(app, "contact-1")
    return {
        "list": client.get("/?q=scan").get_data(as_text=True),
        "transcript": client.get(f"/conversations/{pk}").get_data(as_text=True),
        "list.csv": client.get("/export/conversations.csv?q=scan").get_data(as_text=True),
        "list.json": client.get("/export/conversations.json?q=scan").get_data(as_text=True),
        "transcripts.csv": client.get("/export/transcripts.csv?q=scan").get_data(as_text=True),
        "transcripts.json": client.get("/export/transcripts.json?q=scan").get_data(as_text=True),
        "transcript.json": client.get(f"/conversations/{pk}/transcript.json").get_data(as_text=True),
    }


def test_views_and_exports_are_masked_by_default(contact_app, make_app, sign_in):
    app = make_app(contact_app)
    outputs = all_outputs(app, sign_in(app))
    for name, body in outputs.items():
        assert PHONE not in body and EMAIL not in body and "jane.doe" not in body, name
    for name in ("transcript", "transcripts.csv", "transcripts.json", "transcript.json"):
        assert "[phone]" in outputs[name] and "[email]" in outputs[name], name
    said = [m["text"] for m in json.loads(outputs["transcript.json"])["messages"] if m["kind"] == "user"]
    assert said == ["please call me on [phone] or write to [email] about my scan"]


def test_masking_can_be_switched_off(contact_app, make_app, sign_in):
    app = make_app(contact_app, redact_contacts=False)
    outputs = all_outputs(app, sign_in(app))
    for name in ("transcript", "transcripts.csv", "transcripts.json", "transcript.json"):
        assert PHONE in outputs[name] and "jane.doe+spine@example.org" in outputs[name], name


@pytest.mark.parametrize("conversation_id, shown", [
    ("whatsapp:+15551234567", "whatsapp:[phone]"), ("+447700900123", "[phone]"),
    ("jane@example.org", "[email]"), ("815613471", "815613471"),  # a Telegram chat id is not a phone number
    ("3cec3f3d5aaaafe20f6da02a11", "3cec3f3d5aaaafe20f6da02a11"), ("1234567890123456", "1234567890123456"),
])
def test_conversation_ids_mask_only_phone_numbers_and_addresses(conversation_id, shown):
    from review.redaction import redact_id
    assert redact_id(conversation_id) == shown
    assert redact_id(conversation_id, enabled=False) == conversation_id


def test_a_twilio_sender_is_masked_in_the_list_and_exports(small_tracker, make_app, sign_in):
    add_conversation(small_tracker, "whatsapp:+15550001111", "is walking good for it")
    app = make_app(small_tracker)
    client = sign_in(app)
    pk = pk_of(app, "whatsapp:+15550001111")
    for body in (client.get("/?q=walking").get_data(as_text=True),
                 client.get(f"/conversations/{pk}").get_data(as_text=True),
                 client.get("/export/conversations.csv?q=walking").get_data(as_text=True),
                 client.get(f"/conversations/{pk}/transcript.json").get_data(as_text=True)):
        assert "5550001111" not in body and "whatsapp:[phone]" in body
