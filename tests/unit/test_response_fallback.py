"""The FAQ answer's own confidence decides between answering and the honest fallback."""
import pytest
from rasa.shared.nlu.training_data.message import Message

from components.response_fallback import ResponseSelectionFallback


def message(intent, answer_confidence):
    return Message(data={
        "text": "x",
        "intent": {"name": intent, "confidence": 0.99},
        "intent_ranking": [{"name": intent, "confidence": 0.99}],
        "response_selector": {"faq": {"response": {"confidence": answer_confidence,
                                                   "intent_response_key": "faq/xray"}}},
    })


@pytest.mark.parametrize("confidence,expected", [(0.2, "nlu_fallback"), (0.49, "nlu_fallback"),
                                                 (0.5, "faq"), (0.9, "faq")])
def test_threshold_on_the_selected_answer(confidence, expected):
    msg = message("faq", confidence)
    ResponseSelectionFallback({"retrieval_intent": "faq", "threshold": 0.5}).process([msg])
    assert msg.get("intent")["name"] == expected
    assert msg.get("intent_ranking")[0]["name"] == expected
    assert msg.get("response_selector")["faq"]["response"]["confidence"] == confidence


def test_other_intents_are_left_alone():
    msg = message("greet", 0.1)
    ResponseSelectionFallback({"retrieval_intent": "faq", "threshold": 0.5}).process([msg])
    assert msg.get("intent")["name"] == "greet"


def test_no_selection_at_all_falls_back():
    msg = Message(data={"text": "x", "intent": {"name": "faq", "confidence": 1.0}})
    ResponseSelectionFallback(ResponseSelectionFallback.get_default_config()).process([msg])
    assert msg.get("intent")["name"] == "nlu_fallback"
