"""The intent classifier that learns FAQ topics as classes and reports base intents."""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.topic_intent_classifier import TopicIntentClassifier, aggregate, base_intent

EXAMPLES = {
    "faq/causes": ["why does a disc calcify", "what causes the calcification", "reason for hardening of the disc"],
    "faq/ct_scan": ["do i need a ct scan", "is an x-ray enough", "which scan shows the calcified part"],
    "greet": ["hello", "hi there", "good morning"],
    "out_of_scope": ["how tall is mount everest", "recipe for pancakes", "weather in madrid tomorrow"],
}


def _message(text, label=None):
    data = {"text": text}
    if label:
        data["intent"] = base_intent(label)
        if "/" in label:
            data["intent_response_key"] = label
    return Message(data=data)


def _tokenize(messages):
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    tokenizer.process(messages)
    return messages


@pytest.fixture
def trained(tmp_path):
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(graph_schema=None, model_id="test")
    config = TopicIntentClassifier.get_default_config()
    classifier = TopicIntentClassifier.create(config, storage, Resource("topics"), context)
    examples = _tokenize([_message(t, label) for label, texts in EXAMPLES.items() for t in texts])
    classifier.train(TrainingData(examples))
    loaded = TopicIntentClassifier.load(config, storage, Resource("topics"), context)
    return classifier, loaded


def test_aggregate_scores_a_retrieval_intent_by_its_best_topic():
    # Summed, faq would win with 0.6; its best topic (0.3) loses to greet (0.4).
    ranking = aggregate(["faq/a", "faq/b", "greet"], np.array([0.3, 0.3, 0.4]))
    assert [name for name, _ in ranking] == ["greet", "faq"]
    assert ranking[0][1] == pytest.approx(0.4 / 0.7) and ranking[1][1] == pytest.approx(0.3 / 0.7)


def test_aggregate_many_weak_topics_do_not_outvote_a_clear_intent():
    topics = [f"faq/t{i}" for i in range(29)]
    probabilities = np.array([0.02] * 29 + [0.42])
    ranking = aggregate(topics + ["affirm"], probabilities)
    assert ranking[0][0] == "affirm"
    assert sum(score for _, score in ranking) == pytest.approx(1.0)


def test_reports_base_intents_with_normalised_scores(trained):
    classifier, _ = trained
    message = _tokenize([_message("what causes a disc to calcify")])[0]
    classifier.process([message])
    assert message.get("intent")["name"] == "faq"
    ranking = message.get("intent_ranking")
    assert [item["name"] for item in ranking] == sorted(
        {"faq", "greet", "out_of_scope"}, key=lambda n: -next(i["confidence"] for i in ranking if i["name"] == n)
    )
    assert not any("/" in item["name"] for item in ranking)
    assert sum(item["confidence"] for item in ranking) == pytest.approx(1.0)
    assert message.get("intent")["confidence"] == ranking[0]["confidence"]


def test_out_of_scope_and_greetings_are_not_faq(trained):
    classifier, _ = trained
    messages = _tokenize([_message("hello there"), _message("pancakes recipe please")])
    classifier.process(messages)
    assert [m.get("intent")["name"] for m in messages] == ["greet", "out_of_scope"]


def test_loaded_model_predicts_the_same(trained):
    classifier, loaded = trained
    texts = ["is a ct scan needed", "hi", "cheap flights to madrid", "why did it harden"]
    first = _tokenize([_message(t) for t in texts])
    second = _tokenize([_message(t) for t in texts])
    classifier.process(first)
    loaded.process(second)
    for a, b in zip(first, second):
        assert a.get("intent")["name"] == b.get("intent")["name"]
        assert a.get("intent")["confidence"] == pytest.approx(b.get("intent")["confidence"])


def test_two_classes_match_sklearn(tmp_path):
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(graph_schema=None, model_id="test")
    classifier = TopicIntentClassifier.create({}, storage, Resource("two"), context)
    examples = _tokenize(
        [_message(t, "greet") for t in EXAMPLES["greet"]]
        + [_message(t, "out_of_scope") for t in EXAMPLES["out_of_scope"]]
    )
    classifier.train(TrainingData(examples))
    texts = [classifier._text(m) for m in examples]
    reference = LogisticRegression(C=10.0, max_iter=300, class_weight="balanced", random_state=42)
    reference.fit(classifier._features(texts), [m.get("intent") for m in examples])
    queries = ["hello good morning", "weather in tenerife", "hi"]
    np.testing.assert_allclose(
        classifier._probabilities(queries), reference.predict_proba(classifier._features(queries))
    )
    message = _tokenize([_message("hello good morning")])[0]
    classifier.process([message])
    assert message.get("intent")["name"] == "greet"


def test_untrained_or_empty_training_predicts_nothing(tmp_path):
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(graph_schema=None, model_id="test")
    classifier = TopicIntentClassifier.create({}, storage, Resource("empty"), context)
    classifier.train(TrainingData([]))
    loaded = TopicIntentClassifier.load({}, storage, Resource("empty"), context)
    message = _tokenize([_message("hello")])[0]
    loaded.process([message])
    assert message.get("intent") is None
