"""Fallback article search, "tell me more", offers and clinic contact, as rasa-sdk actions."""
import pytest

from actions.article_search import ActionExplainMore, ActionSearchArticle
from actions.clinic import ActionShowClinicContact, contact_text
from common.settings import endpoints_section
from actions.offers import ActionHandleOfferReply
from knowledge import load_passages
from tests.conftest import bot_event, make_tracker, user_event


async def test_fallback_quotes_a_relevant_passage(dispatcher, domain):
    tracker = make_tracker("how long can I wear a back belt", intent="nlu_fallback")
    events = await ActionSearchArticle().run(dispatcher, tracker, domain)
    assert events == []
    [message] = dispatcher.messages
    assert message["metadata"]["citations"] == ["p26"]
    assert load_passages()["p26"].text in message["text"]
    assert "From the article, passage p26" in message["text"]


async def test_fallback_says_it_does_not_know_when_nothing_is_relevant(dispatcher, domain):
    tracker = make_tracker("who won the football last night", intent="nlu_fallback")
    await ActionSearchArticle().run(dispatcher, tracker, domain)
    [reply] = dispatcher.messages
    assert reply["text"].startswith("I'm sorry, I don't know the answer to that")
    assert "clinic" in reply["text"] and "citations" not in reply.get("metadata", {})


async def test_fallback_copes_with_no_text(dispatcher, domain):
    tracker = make_tracker("", intent="nlu_fallback")
    tracker.latest_message["text"] = None
    await ActionSearchArticle().run(dispatcher, tracker, domain)
    assert dispatcher.messages[0]["text"].startswith("I'm sorry, I don't know")


async def test_tell_me_more_quotes_the_passages_of_the_latest_cited_answer(dispatcher, domain):
    events = [
        user_event("what about a brace", "faq"),
        bot_event("Wear it for 3 to 6 weeks...", "utter_faq/lumbar_support", citations=["p26"]),
        user_event("tell me more", "tell_me_more"),
    ]
    tracker = make_tracker("tell me more", intent="tell_me_more", events=events)
    await ActionExplainMore().run(dispatcher, tracker, domain)
    [message] = dispatcher.messages
    assert load_passages()["p26"].text in message["text"]
    assert message["metadata"] == {"citations": ["p26"], "detail_of": "utter_faq/lumbar_support"}


async def test_tell_me_more_without_an_earlier_answer_offers_the_topics(dispatcher, domain):
    tracker = make_tracker("more", intent="tell_me_more", events=[bot_event("Hello!", "utter_greet")])
    await ActionExplainMore().run(dispatcher, tracker, domain)
    assert dispatcher.messages[-1]["response"] == "utter_help"


def offer_events(reply_text, reply_intent):
    return [
        user_event("when is surgery needed", "faq"),
        bot_event("... one by one?", "utter_faq/when_surgery", citations=["p18"],
                  offer="action_reset_checklist"),
        user_event(reply_text, reply_intent),
    ]


async def test_yes_to_the_offer_starts_what_was_offered(dispatcher, domain):
    tracker = make_tracker("yes please", intent="affirm", events=offer_events("yes please", "affirm"))
    events = await ActionHandleOfferReply().run(dispatcher, tracker, domain)
    assert events == [{"event": "followup", "name": "action_reset_checklist", "timestamp": None}]
    assert dispatcher.messages == []


async def test_yes_without_an_offer_just_carries_on(dispatcher, domain):
    events = [user_event("what is it", "faq"), bot_event("A calcified...", "utter_faq/what_is_it",
              citations=["p01"]), user_event("yes", "affirm")]
    tracker = make_tracker("yes", intent="affirm", events=events)
    assert await ActionHandleOfferReply().run(dispatcher, tracker, domain) == []
    assert [m["response"] for m in dispatcher.messages] == ["utter_anything_else"]


async def test_an_old_offer_does_not_count(dispatcher, domain):
    events = offer_events("what is it", "faq") + [
        bot_event("A calcified...", "utter_faq/what_is_it", citations=["p01"]),
        user_event("yes", "affirm"),
    ]
    tracker = make_tracker("yes", intent="affirm", events=events)
    assert await ActionHandleOfferReply().run(dispatcher, tracker, domain) == []


@pytest.fixture
def clean_config(monkeypatch):
    for field in ("NAME", "PHONE", "EMAIL", "HOURS", "URL", "EMERGENCY"):
        monkeypatch.delenv(f"CLINIC_{field}", raising=False)
    endpoints_section.cache_clear()
    yield
    endpoints_section.cache_clear()


async def test_contact_details_come_from_endpoints_yml(clean_config, dispatcher, domain):
    await ActionShowClinicContact().run(dispatcher, make_tracker("phone?"), domain)
    configured = endpoints_section("clinic")
    assert configured["phone"] in dispatcher.messages[0]["text"]
    assert configured["name"] in dispatcher.messages[0]["text"]


async def test_environment_overrides_the_contact_details(clean_config, monkeypatch, dispatcher, domain):
    monkeypatch.setenv("CLINIC_PHONE", "+44 20 7946 0000")
    monkeypatch.setenv("CLINIC_NAME", "Riverside Spine Centre")
    await ActionShowClinicContact().run(dispatcher, make_tracker("phone?"), domain)
    text = dispatcher.messages[0]["text"]
    assert "+44 20 7946 0000" in text and "Riverside Spine Centre" in text


def test_unset_fields_are_left_out():
    text = contact_text({"name": "A Clinic", "email": "a@example.org"})
    assert "Phone" not in text and "a@example.org" in text
    assert contact_text({}) == "Please contact your clinic or your doctor."
