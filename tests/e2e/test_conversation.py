"""End to end over REST: the real Rasa server and action server, as `make run` starts them."""
from __future__ import annotations

import uuid

import pytest

from knowledge import load_passages
from tests.e2e.servers import customs, http, texts


def sender() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}"


def bot_events(tracker):
    return [event for event in tracker["events"] if event["event"] == "bot"]


@pytest.mark.parametrize(
    "question,answer",
    [
        ("What is a calcified disc herniation?", "utter_faq/what_is_it"),
        ("will an xray show my calcified disc", "utter_faq/xray"),
        ("how long should i wear a back brace", "utter_faq/lumbar_support"),
        ("When is surgery needed?", "utter_faq/when_surgery"),
        ("can the calcified bit go back in by itself", "utter_faq/go_back"),
    ],
)
def test_faq_answers_come_from_the_article_and_cite_it(servers, question, answer):
    who = sender()
    replies = servers.say(who, question)
    assert replies and replies[0]["text"]
    [event] = [e for e in bot_events(servers.tracker(who)) if e["text"] == replies[0]["text"]]
    assert event["metadata"]["utter_action"] == answer
    citations = event["metadata"]["metadata"]["citations"]
    assert citations and set(citations) <= set(load_passages())


def test_greeting_says_this_is_education_not_a_diagnosis(servers):
    replies = servers.say(sender(), "hello")
    assert "not a diagnosis" in texts(replies)
    assert replies[0]["buttons"]


def test_the_offer_in_the_when_surgery_answer_can_be_accepted(servers):
    who = sender()
    servers.say(who, "When is surgery needed?")
    replies = servers.say(who, "yes please")
    assert "safety question" in texts(replies)


def test_the_offer_can_be_declined(servers):
    who = sender()
    servers.say(who, "When is surgery needed?")
    assert "No problem" in texts(servers.say(who, "no thanks"))


def test_fallback_quotes_the_article_when_it_has_something_relevant(servers):
    who = sender()
    replies = servers.say(who, "what is the dura mater")
    text = texts(replies)
    assert "From the article, passage p04" in text
    assert load_passages()["p04"].text in text


def test_fallback_admits_it_does_not_know(servers):
    text = texts(servers.say(sender(), "what's the capital of australia and its population"))
    assert ("don't know" in text or "only answer questions about calcified" in text)
    assert "clinic" in text


def test_tell_me_more_gives_the_full_passage(servers):
    who = sender()
    servers.say(who, "how long should i wear a back brace")
    text = texts(servers.say(who, "tell me more"))
    assert load_passages()["p26"].text in text


def test_contact_details_come_from_configuration(servers):
    text = texts(servers.say(sender(), "what's the clinic's phone number"))
    assert "+1 555 0100" in text


@pytest.mark.parametrize(
    "message,expected",
    [
        ("", "didn't catch that"),
        ("    ", "didn't catch that"),
        ("👍🙂", "didn't catch that"),
        ("\x00\x07\x1b", "didn't catch that"),
        ("что такое кальцинированная грыжа диска?", "only answer in English"),
        ("¿Qué es una hernia de disco calcificada?", "only answer in English"),
    ],
)
def test_unusable_messages_get_a_clear_reply(servers, message, expected):
    assert expected in texts(servers.say(sender(), message))


def test_a_20000_character_message_gets_a_reply(servers):
    message = ("my back has hurt for years and the scan says calcified disc " * 400)[:20000]
    replies = servers.say(sender(), message)
    assert replies and replies[0]["text"]


@pytest.mark.parametrize(
    "raw,status",
    [
        (b"not json", 400),
        (b"[]", 400),
        (b"{}", 400),
        (b'{"sender": "x"}', 400),
        (b'{"message": "hi"}', 400),
        (b'{"sender": "", "message": "hi"}', 400),
        (b'{"sender": "x", "message": 42}', 400),
        (b'{"sender": "x", "message": null}', 400),
        (b'{"sender": "x", "message": "hi", "metadata": [1]}', 400),
        (('{"sender": "x", "message": "' + "a" * 20001 + '"}').encode(), 413),
    ],
)
def test_bad_requests_get_a_4xx_json_error(servers, raw, status):
    got, body = servers.send("x", None, raw=raw)
    assert got == status
    assert isinstance(body, dict) and body.get("message")


def test_the_server_stays_up_after_bad_input(servers):
    servers.send("x", None, raw=b"[]")
    assert http("GET", servers.rasa_url + "/")[0] == 200
    assert servers.say(sender(), "hi")


def test_conversations_survive_a_restart(servers):
    who = sender()
    servers.say(who, "What is a calcified disc herniation?")
    before = [e["text"] for e in bot_events(servers.tracker(who))]
    servers.stop_rasa()
    servers.start_rasa()
    after = [e["text"] for e in bot_events(servers.tracker(who))]
    assert after[: len(before)] == before and before
