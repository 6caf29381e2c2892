"""Channel adapters: numbered options, widget payloads, socket.io events, channels that stay off."""
from __future__ import annotations

from typing import Any, Dict, List

import pytest
from rasa.core.channels.facebook import MessengerBot

from channels import options
from channels.messaging import (
    ClinicFacebookInput,
    ClinicMessengerBot,
    ClinicTelegramInput,
    ClinicTelegramOutput,
    ClinicTwilioInput,
    ClinicTwilioOutput,
    sms_parts,
)
from channels.socketio import allowed_origins, bot_event, origin_allowed

YES_NO = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
ESCALATION = {"escalation": {"level": "emergency", "signs": ["bladder_control"]}}


def bot(text: str, buttons: List[Dict[str, str]] = None) -> Dict[str, Any]:
    return {"event": "bot", "text": text, "data": {"buttons": buttons} if buttons else {}}


def user(text: str) -> Dict[str, Any]:
    return {"event": "user", "text": text}


# Numbered options -------------------------------------------------------------------

def test_buttons_become_a_numbered_list_under_the_text():
    assert options.numbered("Any bladder problems?", YES_NO) == (
        "Any bladder problems?\n\nReply with a number:\n1. Yes\n2. No")


def test_text_without_buttons_is_unchanged():
    assert options.numbered("Hello", []) == "Hello"


@pytest.mark.parametrize("reply", ["1", " 1 ", "1.", "1)", "#1", "option 1", "Number 1"])
def test_a_number_is_replaced_by_that_buttons_payload(reply):
    events = [user("hi"), bot("Any bladder problems?", YES_NO)]
    assert options.resolve(reply, events) == "/affirm"


@pytest.mark.parametrize("reply", ["3", "0", "12", "1 or 2", "1 year ago", "yes"])
def test_anything_else_is_left_as_typed(reply):
    events = [user("hi"), bot("Any bladder problems?", YES_NO)]
    assert options.resolve(reply, events) == reply


def test_only_the_latest_bot_turn_counts():
    earlier = [bot("Want the checklist?", [{"title": "Sure", "payload": "/start"}]), user("2")]
    assert options.resolve("1", earlier + [bot("Okay.")]) == "1"
    # Several bot messages in one turn: the last one with buttons wins.
    turn = [user("hi"), bot("Hello", YES_NO), bot("Anything else?")]
    assert options.resolve("2", turn) == "/deny"


def test_only_bare_numbers_count_as_option_replies():
    assert all(options.is_number(t) for t in ["1", " 2. ", "#3", "option 4"])
    assert not any(options.is_number(t) for t in ["", None, "yes", "1 year ago", "1 or 2"])


def test_widget_payloads_are_recognised():
    assert options.is_widget_payload(ESCALATION)
    assert options.is_widget_payload({"checklist": {}})
    assert not options.is_widget_payload({"media_url": ["x"]})
    assert not options.is_widget_payload(["escalation"])


# Text-only outputs -----------------------------------------------------------------

class RecordingTwilio(ClinicTwilioOutput):
    def __init__(self) -> None:
        super().__init__("AC" + "0" * 32, "token", "+15550100")
        self.sent: List[Dict[str, Any]] = []

    async def _send_message(self, message_data: Dict[str, Any]) -> None:
        self.sent.append(dict(message_data))


async def test_sms_gets_the_text_and_its_numbered_options_in_one_message():
    twilio = RecordingTwilio()
    await twilio.send_response("+15550199", {"text": "Any bladder problems?", "buttons": YES_NO})
    assert [m["body"] for m in twilio.sent] == ["Any bladder problems?\n\nReply with a number:\n1. Yes\n2. No"]
    assert twilio.sent[0]["to"] == "+15550199" and twilio.sent[0]["from_"] == "+15550100"


def test_long_sms_is_split_between_paragraphs():
    paragraphs = ["a" * 1000, "b" * 500, "c" * 900]
    assert sms_parts("\n\n".join(paragraphs)) == ["a" * 1000 + "\n\n" + "b" * 500, "c" * 900]
    assert [len(p) for p in sms_parts("x" * 3500)] == [1600, 1600, 300]


async def test_sms_does_not_get_the_widgets_escalation_payload():
    twilio = RecordingTwilio()
    await twilio.send_response("+15550199", {"text": "Get emergency care now.", "custom": ESCALATION})
    assert [m["body"] for m in twilio.sent] == ["Get emergency care now."]
    # A payload meant for Twilio itself still goes out.
    await twilio.send_custom_json("+15550199", {"media_url": ["https://example.org/leaflet.png"]})
    assert twilio.sent[-1]["media_url"] == ["https://example.org/leaflet.png"]


class RecordingMessengerClient:
    def __init__(self) -> None:
        self.sent: List[Dict[str, Any]] = []

    def send(self, payload: Dict[str, Any], recipient_id: str, messaging_type: str) -> None:
        self.sent.append(payload)


async def test_messenger_uses_native_buttons_up_to_three_and_numbers_beyond():
    client = RecordingMessengerClient()
    messenger = ClinicMessengerBot(client)
    await messenger.send_text_with_buttons("psid", "Go on?", YES_NO)
    assert client.sent[-1]["attachment"]["payload"]["template_type"] == "button"

    topics = [{"title": f"Topic {n}", "payload": f"/t{n}"} for n in range(1, 6)]
    await messenger.send_text_with_buttons("psid", "Pick a topic", topics)
    assert client.sent[-1]["text"].endswith("4. Topic 4\n5. Topic 5")


def test_messenger_answers_through_the_clinic_output():
    channel = ClinicFacebookInput.from_credentials(
        {"verify": "v", "secret": "s", "page-access-token": "t"})
    adapted = channel.adapt_output(MessengerBot(RecordingMessengerClient()))
    assert isinstance(adapted, ClinicMessengerBot)


def test_telegram_output_can_use_another_bot_api_server():
    output = ClinicTelegramOutput("123:abc", "http://127.0.0.1:9999")
    assert output.server.api_url("123:abc", "sendMessage") == "http://127.0.0.1:9999/bot123:abc/sendMessage"


# Channels that stay off --------------------------------------------------------------

@pytest.mark.parametrize(
    "channel,variable",
    [(ClinicTelegramInput, "TELEGRAM_ACCESS_TOKEN"), (ClinicTwilioInput, "TWILIO_AUTH_TOKEN"),
     (ClinicFacebookInput, "FACEBOOK_APP_SECRET")],
)
def test_a_channel_without_its_environment_is_off(monkeypatch, channel, variable):
    for name in list(channel.SETTINGS.values()):
        monkeypatch.delenv(name, raising=False)
    instance = channel.from_credentials(None)
    assert variable in instance.missing()

    async def handler(_):  # never called: nothing can reach Rasa through a channel that is off
        raise AssertionError

    blueprint = instance.blueprint(handler)
    assert blueprint.name.endswith("_disabled")


def test_a_channel_reads_its_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC1")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "secret")
    monkeypatch.setenv("TWILIO_NUMBER", "whatsapp:+15550100")
    channel = ClinicTwilioInput.from_credentials(None)
    assert channel.missing() == []
    assert channel.twilio_number == "whatsapp:+15550100"


# socket.io ---------------------------------------------------------------------------

def test_one_bot_message_is_one_widget_event_with_its_payload():
    event = bot_event({"text": "Get help now.", "buttons": YES_NO, "custom": ESCALATION,
                       "recipient_id": "abc"})
    assert event == {"text": "Get help now.",
                     "quick_replies": [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}],
                     "custom": ESCALATION}


def test_allowed_origins_come_from_credentials_or_the_environment(monkeypatch):
    monkeypatch.setenv("CORS_ORIGINS", "https://clinic.example.org  https://www.clinic.example.org/")
    assert allowed_origins() == ["https://clinic.example.org", "https://www.clinic.example.org"]
    assert allowed_origins(["https://a.example"]) == ["https://a.example"]


def test_only_allowed_browser_origins_may_connect():
    allowed = ["https://clinic.example.org"]
    assert origin_allowed("https://clinic.example.org", allowed)
    assert not origin_allowed("https://evil.example", allowed)
    assert origin_allowed(None, allowed)  # not a browser: CORS does not apply
    assert origin_allowed("https://anything.example", ["*"])
