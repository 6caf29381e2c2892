"""The surgery-criteria checklist: form validation, outcome and summary."""
from datetime import date

import pytest
from rasa_sdk.events import SlotSet

from actions.checklist import (
    CRITERIA,
    ActionAskConservativeFailed,
    ActionAskRedFlagScreen,
    ActionAskSeverePain,
    QUESTIONS,
    ActionEvaluateSurgeryCriteria,
    ActionResetChecklist,
    ActionSummarizeChecklist,
    ValidateSurgeryCriteriaForm,
    evaluate,
    result_text,
    summary_text,
)
from actions.messages import message
from tests.conftest import make_tracker

FORM = "surgery_criteria_form"
SLOTS = list(QUESTIONS)


def form_tracker(requested, intent, slots):
    """A tracker mid-form, as Rasa sends it after extracting the user's answer."""
    tracker = make_tracker("x", intent=intent, slots={**slots, "requested_slot": requested},
                           active_loop=FORM)
    tracker.events = [{"event": "active_loop", "name": FORM},
                      {"event": "slot", "name": requested, "value": slots.get(requested)}]
    return tracker


def slot_events(events):
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


async def test_screen_is_asked_first():
    assert SLOTS[0] == "red_flag_screen"


@pytest.mark.parametrize("slot", SLOTS)
@pytest.mark.parametrize("answer", ["yes", "no"])
async def test_yes_and_no_are_accepted(slot, answer, dispatcher, domain):
    tracker = form_tracker(slot, "affirm" if answer == "yes" else "deny", {slot: answer})
    events = await ValidateSurgeryCriteriaForm().run(dispatcher, tracker, {"forms": {FORM: {"required_slots": SLOTS}}})
    assert slot_events(events)[slot] == answer
    assert dispatcher.messages == []


@pytest.mark.parametrize("slot", SLOTS)
async def test_not_sure_explains_and_asks_again(slot, dispatcher):
    tracker = form_tracker(slot, "unsure", {slot: "unsure"})
    events = await ValidateSurgeryCriteriaForm().run(dispatcher, tracker, {"forms": {FORM: {"required_slots": SLOTS}}})
    assert slot_events(events)[slot] is None
    [explanation] = dispatcher.messages
    assert explanation["text"] == " ".join(message(f"explain_{slot}")["text"].split())


@pytest.mark.parametrize("slot", SLOTS)
async def test_a_cleared_answer_is_not_validated(slot, dispatcher):
    tracker = form_tracker(slot, "start_surgery_checklist", {slot: None})
    events = await ValidateSurgeryCriteriaForm().run(dispatcher, tracker, {"forms": {FORM: {"required_slots": SLOTS}}})
    assert dispatcher.messages == []
    assert slot not in slot_events(events) or slot_events(events)[slot] is None


@pytest.mark.parametrize(
    "action,slot",
    [(ActionAskRedFlagScreen, "red_flag_screen"), (ActionAskConservativeFailed, "conservative_failed"),
     (ActionAskSeverePain, "severe_pain")],
)
async def test_each_question_is_asked_with_yes_no_and_not_sure_buttons(action, slot, dispatcher, domain):
    assert action().name() == f"action_ask_{slot}"
    await action().run(dispatcher, make_tracker(), domain)
    [question] = dispatcher.messages
    assert [b["payload"] for b in question["buttons"]] == ["/affirm", "/deny", "/unsure"]
    assert question["metadata"]["citations"] == ["p18"]


async def test_a_yes_to_the_screen_ends_the_questions(dispatcher):
    validator = ValidateSurgeryCriteriaForm()
    tracker = form_tracker("red_flag_screen", "affirm", {"red_flag_screen": "yes"})
    required = await validator.required_slots(SLOTS, dispatcher, tracker, {})
    assert required == ["red_flag_screen"]
    tracker = form_tracker("red_flag_screen", "deny", {"red_flag_screen": "no"})
    assert await validator.required_slots(SLOTS, dispatcher, tracker, {}) == SLOTS


@pytest.mark.parametrize(
    "answers,outcome,met",
    [
        ({"red_flag_screen": "no", "conservative_failed": "no", "severe_pain": "no"}, "conservative_care", 0),
        ({"red_flag_screen": "no", "conservative_failed": "yes", "severe_pain": "no"}, "discuss_surgery", 1),
        ({"red_flag_screen": "no", "conservative_failed": "no", "severe_pain": "yes"}, "discuss_surgery", 1),
        ({"red_flag_screen": "no", "conservative_failed": "yes", "severe_pain": "yes"}, "discuss_surgery", 2),
        ({"red_flag_screen": "yes"}, "urgent_care", 1),
    ],
)
def test_outcome_follows_the_article(answers, outcome, met):
    result = evaluate(answers, date(2026, 11, 24))
    assert result["outcome"] == outcome
    assert len(result["criteria_met"]) == met
    assert result["date"] == "2026-11-24"
    assert set(result["answers"]) == set(SLOTS)


def test_result_is_never_phrased_as_a_diagnosis():
    for answers in ({"conservative_failed": "yes"}, {}):
        text = result_text(evaluate({"red_flag_screen": "no", **answers}, date.today()))
        assert "not a diagnosis" in text
        assert "you have" not in text.lower()


async def test_evaluation_sends_text_and_checklist_payload_and_clears_answers(dispatcher, domain):
    slots = {"red_flag_screen": "no", "conservative_failed": "yes", "severe_pain": "no"}
    events = await ActionEvaluateSurgeryCriteria().run(dispatcher, make_tracker(slots=slots), domain)
    values = slot_events(events)
    assert values["checklist_result"]["outcome"] == "discuss_surgery"
    assert all(values[slot] is None for slot in SLOTS)
    [message] = dispatcher.messages
    assert message["custom"]["checklist"]["criteria_met"] == [CRITERIA[0][1]]
    assert "spine specialist" in message["text"]
    assert {"title": "Summary for my doctor", "payload": "/request_summary"} in message["buttons"]


async def test_a_yes_to_the_screen_hands_over_to_the_urgent_message(dispatcher, domain):
    events = await ActionEvaluateSurgeryCriteria().run(
        dispatcher, make_tracker(slots={"red_flag_screen": "yes"}), domain)
    assert events[-1] == {"event": "followup", "name": "utter_red_flag_emergency", "timestamp": None}
    assert slot_events(events)["red_flag_signs"] == ["checklist_nerve_signs"]
    assert dispatcher.messages == []  # the urgent message is the domain response


async def test_summary_lists_answers_criteria_and_date(dispatcher, domain):
    result = evaluate({"red_flag_screen": "no", "conservative_failed": "yes", "severe_pain": "no"},
                      date(2026, 11, 24))
    await ActionSummarizeChecklist().run(dispatcher, make_tracker(slots={"checklist_result": result}), domain)
    text = dispatcher.messages[0]["text"]
    assert text == summary_text(result)
    assert "2026-11-24" in text and "not a diagnosis" in text
    assert CRITERIA[0][1] in text


async def test_summary_before_any_checklist_offers_one(dispatcher, domain):
    await ActionSummarizeChecklist().run(dispatcher, make_tracker(), domain)
    assert dispatcher.messages[0]["buttons"][0]["payload"] == "/start_surgery_checklist"


async def test_reset_clears_every_answer(dispatcher, domain):
    events = await ActionResetChecklist().run(dispatcher, make_tracker(slots={"severe_pain": "yes"}), domain)
    assert events == [SlotSet(slot, None) for slot in SLOTS]
