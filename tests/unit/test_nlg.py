"""The response generator: readable list slots and structured custom payloads."""
from rasa.shared.core.domain import Domain

from components.nlg import SlotValueNLG, join_words

RESPONSES = {
    "utter_alarm": [
        {
            "text": "You mentioned {labels}.",
            "custom": {"escalation": {"level": "emergency", "signs": "{signs}", "note": "n={count}"}},
        }
    ],
    "utter_plain": [{"text": "Hello {name}"}],
}


def nlg() -> SlotValueNLG:
    return SlotValueNLG(domain=Domain.from_dict({"responses": RESPONSES}))


def test_join_words():
    assert join_words([]) == ""
    assert join_words(["a"]) == "a"
    assert join_words(["a", "b"]) == "a and b"
    assert join_words(["a", "b", "c"]) == "a, b and c"


def test_list_slots_read_as_english_and_stay_lists_in_payloads():
    slots = {"labels": ["foot drop", "loss of bladder control"], "signs": ["foot_drop", "bladder_control"], "count": 2}
    response = nlg().generate_from_slots("utter_alarm", slots, "rest")
    assert response["text"] == "You mentioned foot drop and loss of bladder control."
    assert response["custom"] == {
        "escalation": {"level": "emergency", "signs": ["foot_drop", "bladder_control"], "note": "n=2"}
    }


def test_ordinary_responses_are_unchanged():
    response = nlg().generate_from_slots("utter_plain", {"name": "Sam"}, "rest")
    assert response["text"] == "Hello Sam"
    assert "custom" not in response or response["custom"] is None
