"""The FAQ answer blend: Rasa's ResponseSelector output, averaged with a linear topic model."""
import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.answer_blend import AnswerBlend, blend

EXAMPLES = {
    "faq/causes": ["why does a disc calcify", "what causes the calcification", "reason for hardening of the disc",
                   "why did my disc turn to bone"],
    "faq/ct_scan": ["do i need a ct scan", "is an x-ray enough", "which scan shows the calcified part",
                    "will a ct show it"],
    "faq/exercise": ["which exercises help", "can i do sit ups", "is swimming good for my back",
                     "how do i strengthen my muscles"],
}
RESPONSES = {f"utter_{key}": [{"text": f"answer for {key}"}] for key in EXAMPLES}


def _tokenize(messages):
    WhitespaceTokenizer(WhitespaceTokenizer.get_default_config()).process(messages)
    return messages


def _training_data():
    examples = [Message(data={"text": t, "intent": "faq", "intent_response_key": key})
                for key, texts in EXAMPLES.items() for t in texts]
    examples.append(Message(data={"text": "hello there", "intent": "greet"}))
    return TrainingData(_tokenize(examples), responses=RESPONSES)


@pytest.fixture
def blender(tmp_path):
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(graph_schema=None, model_id="test")
    component = AnswerBlend.create(AnswerBlend.get_default_config(), storage, Resource("blend"), context)
    component.train(_training_data())
    loaded = AnswerBlend.load(AnswerBlend.get_default_config(), storage, Resource("blend"), context)
    return component, loaded


def _selected(text, ranking):
    """A message as Rasa's ResponseSelector leaves it: its choice is the ranking's first."""
    top_key, top_confidence = ranking[0]
    message = Message(data={"text": text})
    message.set("response_selector", {
        "all_retrieval_intents": ["faq"],
        "faq": {
            "response": {"responses": [{"text": "selector's answer"}], "confidence": top_confidence,
                         "intent_response_key": top_key, "utter_action": f"utter_{top_key}"},
            "ranking": [{"id": i, "confidence": c, "intent_response_key": k} for i, (k, c) in enumerate(ranking)],
        },
    }, add_to_output=True)
    return _tokenize([message])[0]


def test_blend_averages_and_counts_a_missing_answer_as_zero():
    ranking = blend({"a": 0.6, "b": 0.4}, {"b": 0.9, "c": 0.1}, selector_weight=0.5)
    assert ranking[0] == ("b", pytest.approx(0.65))
    assert dict(ranking)["a"] == pytest.approx(0.3) and dict(ranking)["c"] == pytest.approx(0.05)


def test_a_clear_linear_vote_overrides_an_unsure_selector(blender):
    component, _ = blender
    message = _selected("what causes the calcification", [("faq/exercise", 0.45), ("faq/causes", 0.40)])
    component.process([message])
    response = message.get("response_selector")["faq"]["response"]
    assert response["intent_response_key"] == "faq/causes"
    assert response["utter_action"] == "utter_faq/causes"
    assert response["responses"] == RESPONSES["utter_faq/causes"]
    ranking = message.get("response_selector")["faq"]["ranking"]
    assert ranking[0]["intent_response_key"] == "faq/causes"
    assert ranking[0]["confidence"] == pytest.approx(response["confidence"])
    assert [r["confidence"] for r in ranking] == sorted((r["confidence"] for r in ranking), reverse=True)


def test_agreement_keeps_the_selectors_answer_and_its_texts(blender):
    component, _ = blender
    message = _selected("do i need a ct scan", [("faq/ct_scan", 0.9), ("faq/causes", 0.05)])
    component.process([message])
    response = message.get("response_selector")["faq"]["response"]
    assert response["intent_response_key"] == "faq/ct_scan"
    assert response["responses"] == [{"text": "selector's answer"}]
    assert 0.5 < response["confidence"] <= 1.0


def test_selector_weight_one_is_the_selector_alone(tmp_path):
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(graph_schema=None, model_id="test")
    config = {**AnswerBlend.get_default_config(), "selector_weight": 1.0}
    component = AnswerBlend.create(config, storage, Resource("blend"), context)
    component.train(_training_data())
    message = _selected("what causes the calcification", [("faq/exercise", 0.45), ("faq/causes", 0.40)])
    component.process([message])
    assert message.get("response_selector")["faq"]["response"]["intent_response_key"] == "faq/exercise"


def test_loaded_model_blends_the_same(blender):
    component, loaded = blender
    for text in ("will a ct show it", "is swimming ok", "why did it harden"):
        a = _selected(text, [("faq/exercise", 0.5), ("faq/ct_scan", 0.3), ("faq/causes", 0.2)])
        b = _selected(text, [("faq/exercise", 0.5), ("faq/ct_scan", 0.3), ("faq/causes", 0.2)])
        component.process([a])
        loaded.process([b])
        assert a.get("response_selector") == b.get("response_selector")


def test_no_selection_or_no_training_leaves_the_message_alone(tmp_path, blender):
    component, _ = blender
    message = _tokenize([Message(data={"text": "hello"})])[0]
    component.process([message])
    assert message.get("response_selector") is None
    storage = LocalModelStorage(tmp_path / "empty")
    context = ExecutionContext(graph_schema=None, model_id="test")
    empty = AnswerBlend.create({}, storage, Resource("empty"), context)
    empty.train(TrainingData([]))
    loaded = AnswerBlend.load({}, storage, Resource("empty"), context)
    message = _selected("why does a disc calcify", [("faq/exercise", 0.6), ("faq/causes", 0.4)])
    loaded.process([message])
    assert message.get("response_selector")["faq"]["response"]["intent_response_key"] == "faq/exercise"
