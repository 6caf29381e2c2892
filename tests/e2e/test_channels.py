"""Messaging channels end to end, with no internet.

Real Telegram webhook updates go into the real Rasa server; Rasa's Telegram
connector (aiogram) sends its replies to a local stand-in for the Bot API
(tests/fake_telegram.py), and the tests read what each chat received.
"""
from __future__ import annotations

import itertools
import json
import random
import time

import yaml

from channels.options import PROMPT
from tests.e2e.conftest import TELEGRAM_WEBHOOK
from tests.e2e.servers import FAQ_RESPONSES, PROJECT, faq_first_sentence, http

_update_ids = itertools.count(random.randint(1000, 9000) * 1000)
MESSAGES = yaml.safe_load((PROJECT / "actions/messages.yml").read_text())["messages"]


def new_chat() -> int:
    return random.randint(10_000_000, 99_999_999)


def update(chat_id: int, text: str) -> dict:
    return {
        "update_id": next(_update_ids),
        "message": {
            "message_id": random.randint(1, 10**6), "date": int(time.time()), "text": text,
            "chat": {"id": chat_id, "type": "private", "first_name": "Pat"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Pat"},
        },
    }


def tell(servers, telegram, chat_id: int, text: str) -> list:
    """Send one message as Telegram would; return the texts that chat received for it."""
    before = len(telegram.sent(chat_id))
    status, body = http("POST", f"{servers.rasa_url}/webhooks/telegram/webhook", body=update(chat_id, text))
    assert status == 200, (status, body)
    return [call["text"] for call in telegram.sent(chat_id)[before:]]



def test_webhook_is_registered_with_telegram_at_startup(servers, telegram):
    assert "setWebhook" in telegram.methods()
    [call] = [c for c in telegram.calls if c["method"] == "setWebhook"][:1]
    assert call["params"]["url"] == TELEGRAM_WEBHOOK


def test_opening_the_bot_on_telegram_gets_the_greeting(servers, telegram):
    replies = tell(servers, telegram, new_chat(), "/start")
    assert replies and "not a diagnosis" in replies[0]


def test_telegram_question_gets_the_grounded_answer_in_the_right_chat(servers, telegram):
    asker, bystander = new_chat(), new_chat()
    tell(servers, telegram, bystander, "hello")
    bystander_before = len(telegram.sent(bystander))

    replies = tell(servers, telegram, asker, "why do discs calcify?")

    assert replies, "the chat got no reply"
    assert faq_first_sentence("utter_faq/causes") in replies[0]
    assert len(telegram.sent(bystander)) == bystander_before  # nobody else got it


def test_buttons_become_numbered_options_and_a_number_picks_one(servers, telegram):
    chat = new_chat()
    offer = FAQ_RESPONSES["utter_faq/when_surgery"][0]["buttons"]

    replies = tell(servers, telegram, chat, "When is surgery needed?")
    text = "\n".join(replies)
    assert PROMPT in text
    for number, button in enumerate(offer, start=1):
        assert f"{number}. {button['title']}" in text

    # "1" is the first option: go through the surgery criteria.
    replies = tell(servers, telegram, chat, "1")
    first_question = " ".join(MESSAGES["ask_red_flag_screen"]["text"].split()[:6])
    assert any(first_question in reply for reply in replies), replies
    assert any(PROMPT in reply and "1. Yes" in reply for reply in replies)

    # Inline buttons carry the option's number (Telegram allows 64 bytes of callback data).
    keyboard = json.loads([c["reply_markup"] for c in telegram.sent(chat) if c.get("reply_markup")][-1])
    assert [b["callback_data"] for row in keyboard["inline_keyboard"] for b in row] == ["1", "2", "3"]

    # "2" now means "No" to the safety question, not the earlier offer.
    replies = tell(servers, telegram, chat, "2")
    assert replies and not any(first_question in reply for reply in replies)


def test_pressing_an_inline_button_picks_its_option(servers, telegram):
    chat = new_chat()
    tell(servers, telegram, chat, "my left foot tingles")  # the symptom screen
    before = len(telegram.sent(chat))
    press = {"update_id": next(_update_ids), "callback_query": {
        "id": str(random.randint(1, 10**9)), "chat_instance": "1", "data": "1",
        "from": {"id": chat, "is_bot": False, "first_name": "Pat"},
        "message": {"message_id": 1, "date": int(time.time()), "text": "...",
                    "chat": {"id": chat, "type": "private"}}}}
    status, _ = http("POST", f"{servers.rasa_url}/webhooks/telegram/webhook", body=press)
    assert status == 200
    replies = [c["text"] for c in telegram.sent(chat)[before:]]
    assert replies and "emergency" in replies[0].lower()  # option 1: "Yes, I have one of these"


def test_emergency_message_is_plain_text_that_stands_on_its_own(servers, telegram):
    chat = new_chat()
    calls_before = len(telegram.calls)

    replies = tell(servers, telegram, chat, "since yesterday i cant feel when i pee and i wet myself")

    urgent = replies[0]
    assert "emergency" in urgent.lower() and "bladder" in urgent.lower()
    assert "{" not in urgent and "escalation" not in urgent
    # Only messages went out: the widget's escalation payload is not sent to Telegram.
    new_methods = {c["method"] for c in telegram.calls[calls_before:]}
    assert new_methods <= {"sendMessage", "getMe"}


def test_telegram_webhook_rejects_a_body_that_is_not_an_update(servers):
    for raw in (b"[1, 2]", b"not json", b'{"hello": "world"}'):
        status, body = http("POST", f"{servers.rasa_url}/webhooks/telegram/webhook", raw=raw)
        assert status == 400, (raw, status, body)
        assert "Update" in body["error"]


def test_twilio_requests_need_a_valid_signature(servers):
    status, body = http("POST", f"{servers.rasa_url}/webhooks/twilio/webhook",
                        raw=b"From=%2B15550199&Body=hello",
                        headers={"Content-Type": "application/x-www-form-urlencoded",
                                 "X-Twilio-Signature": "forged"})
    assert status == 403
    assert "X-Twilio-Signature" in body["error"]


def test_a_channel_without_its_settings_stays_off(servers):
    status, body = http("GET", f"{servers.rasa_url}/webhooks/facebook/")
    assert status == 200 and body["status"] == "disabled"
    assert "FACEBOOK_APP_SECRET" in body["reason"]
    status, body = http("POST", f"{servers.rasa_url}/webhooks/facebook/webhook", body={"object": "page"})
    assert status == 404 and "off" in body["error"]
