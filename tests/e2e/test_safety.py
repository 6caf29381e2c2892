"""End to end: red flags, escalation and the checklist, against the real servers."""
from __future__ import annotations

import time
import uuid

import pytest

from tests.e2e.servers import customs, texts


def sender() -> str:
    return f"safety-{uuid.uuid4().hex[:12]}"


def escalation(replies):
    found = [c["escalation"] for c in customs(replies) if "escalation" in c]
    return found[0] if found else None


@pytest.mark.parametrize(
    "message,sign",
    [
        ("I wet myself this morning and didn't feel it", "bladder_control"),
        ("cant pee since last night", "urinary_difficulty"),
        ("my foot is floppy and drags when i walk", "foot_drop"),
        ("I can't feel the toilet paper when I wipe", "saddle_numbness"),
        ("both my legs have gone numb", "both_legs"),
    ],
)
def test_a_red_flag_gets_the_urgent_message_first_with_its_payload(servers, message, sign):
    replies = servers.say(sender(), message)
    assert "emergency" in replies[0]["text"].lower()
    payload = escalation(replies)
    assert payload["level"] == "emergency"
    assert sign in payload["signs"]
    assert "clinic" in texts(replies[1:])  # then the escalation action reports back


@pytest.mark.parametrize(
    "message",
    ["No problems with my bladder", "I can pee normally", "I'm not numb anywhere", "what is foot drop?"],
)
def test_negated_and_informational_mentions_do_not_escalate(servers, message):
    replies = servers.say(sender(), message)
    assert escalation(replies) is None
    assert "emergency care now" not in texts(replies)


SCREEN = "have you had any of these"


def test_symptoms_without_a_red_flag_get_no_assessment_and_the_screening_question(servers):
    replies = servers.say(sender(), "I've had a dull ache in my lower back and right hip for weeks")
    assert escalation(replies) is None
    assert "can't assess" in replies[0]["text"] and SCREEN in replies[0]["text"]
    assert [b["title"] for b in replies[0]["buttons"]] == ["Yes, I have one of these", "No, none of these"]


def test_a_no_to_the_screening_question_does_not_escalate(servers):
    who = sender()
    servers.say(who, "my left calf goes numb when I sit for long")
    replies = servers.say(who, "no")
    assert escalation(replies) is None
    assert "If any of those signs start" in replies[0]["text"]


@pytest.mark.parametrize("answer", ["yes", "button"])
def test_a_yes_to_the_screening_question_escalates(servers, answer):
    who = sender()
    [screen] = [r for r in servers.say(who, "sharp pain in my back when I cough") if r.get("buttons")]
    message = "yes actually" if answer == "yes" else screen["buttons"][0]["payload"]
    replies = servers.say(who, message)
    assert "emergency" in replies[0]["text"].lower()
    assert escalation(replies)["level"] == "emergency"
    assert "clinic" in texts(replies[1:])


def test_the_whole_model_meets_the_red_flag_targets_on_the_evaluation_sets(servers):
    """The evaluation sets through the deployed NLU (classifier and detector together)."""
    from scripts.eval_red_flags import EVAL_SETS, FALSE_ALARM_TARGET, RECALL_TARGET, evaluate, parse_detector

    detect = parse_detector(servers.parse)
    for path in EVAL_SETS:
        result = evaluate(path, detect)
        assert result["recall"] >= RECALL_TARGET, (path.name, result["misses"])
        assert result["false_alarm_rate"] <= FALSE_ALARM_TARGET, (path.name, result["false_alarms"])


def test_the_urgent_message_names_the_signs(servers):
    text = texts(servers.say(sender(), "my foot drags and I have wet myself"))
    assert "foot drop" in text and "loss of bladder control" in text


def test_escalation_is_recorded_in_slots_and_parse_data(servers):
    who = sender()
    servers.say(who, "I've lost control of my bowels")
    tracker = servers.tracker(who)
    assert tracker["slots"]["escalations"][0]["signs"] == ["bowel_control"]
    user = [e for e in tracker["events"] if e["event"] == "user"][-1]
    assert user["parse_data"]["red_flag"]["signs"] == ["bowel_control"]
    assert user["parse_data"]["red_flag"]["classifier_ranking"]


def checklist_answers(servers, who, answers):
    replies = servers.say(who, "do I need surgery?")
    assert "safety question" in texts(replies)
    for answer in answers:
        replies = servers.say(who, answer)
    return replies


def test_checklist_with_no_criterion_met(servers):
    replies = checklist_answers(servers, sender(), ["no", "nope", "no, it's manageable"])
    [payload] = [c["checklist"] for c in customs(replies) if "checklist" in c]
    assert payload["outcome"] == "conservative_care" and payload["criteria_met"] == []
    assert "not a diagnosis" in texts(replies)


def test_checklist_with_criteria_met_and_a_summary(servers):
    who = sender()
    replies = checklist_answers(servers, who, ["No", "yes, for more than three months", "/deny"])
    [payload] = [c["checklist"] for c in customs(replies) if "checklist" in c]
    assert payload["outcome"] == "discuss_surgery" and len(payload["criteria_met"]) == 1
    summary = texts(servers.say(who, "can I get a summary for my doctor"))
    assert payload["date"] in summary and "not a diagnosis" in summary


def test_not_sure_explains_and_asks_again(servers):
    who = sender()
    servers.say(who, "do I need surgery?")
    replies = servers.say(who, "not sure")
    assert "nerves" in texts(replies) and "safety question" in texts(replies)


def test_stop_leaves_the_checklist(servers):
    who = sender()
    servers.say(who, "do I need surgery?")
    assert "stopped the questions" in texts(servers.say(who, "stop"))
    assert servers.tracker(who)["active_loop"] in ({}, None) or not servers.tracker(who)["active_loop"].get("name")


def test_a_question_mid_checklist_is_answered_then_the_checklist_resumes(servers):
    who = sender()
    servers.say(who, "do I need surgery?")
    servers.say(who, "no")
    replies = servers.say(who, "will an x-ray show it?")
    text = texts(replies)
    assert "X-ray is of limited help" in text
    assert "3 months of proper conservative treatment" in text


def test_yes_to_the_screen_escalates_at_once(servers):
    who = sender()
    servers.say(who, "do I need surgery?")
    replies = servers.say(who, "yes")
    assert "emergency" in replies[0]["text"].lower()
    assert escalation(replies)["signs"] == ["checklist_nerve_signs"]
    assert servers.tracker(who)["slots"]["checklist_result"]["outcome"] == "urgent_care"


def test_a_red_flag_mid_checklist_escalates_and_ends_it(servers):
    who = sender()
    servers.say(who, "do I need surgery?")
    servers.say(who, "no")
    replies = servers.say(who, "actually my foot has started dragging")
    assert escalation(replies)["signs"] == ["foot_drop"]
    tracker = servers.tracker(who)
    assert not (tracker.get("active_loop") or {}).get("name")


def test_every_notification_arrives_exactly_once_after_the_target_was_down(servers, webhook):
    webhook.stop()
    who = [sender() for _ in range(3)]
    for conversation in who:
        servers.say(conversation, "I wet myself and my foot drags")
    servers.say(who[0], "I wet myself again")  # same sign, same conversation: no new notification
    time.sleep(2)
    before = len(webhook.keys())
    webhook.start()
    expected = {f"{c}:{s}" for c in who for s in ("bladder_control", "foot_drop")}
    webhook.wait_for(before + len(expected), timeout=90)
    time.sleep(3)  # anything duplicated would arrive by now
    keys = [k for k in webhook.keys() if k.split(":")[0] in who]
    assert sorted(keys) == sorted(expected)


def test_with_the_action_server_down_red_flags_and_faqs_still_get_answers(servers, webhook):
    servers.stop_actions()
    try:
        who = sender()
        replies = servers.say(who, "I can't control my bladder any more")
        assert "emergency" in replies[0]["text"].lower()
        assert escalation(replies)["signs"] == ["bladder_control"]
        assert "X-ray is of limited help" in texts(servers.say(sender(), "will an xray show it"))
        # The Rasa server's own safety net delivers the clinic notification.
        keys = webhook.wait_for(len(webhook.keys()) + 1, timeout=60)
        assert f"{who}:bladder_control" in keys
    finally:
        servers.start_actions()
