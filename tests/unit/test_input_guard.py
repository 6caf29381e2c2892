"""Bad input: control characters, very long messages, text without letters, other scripts."""
import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.nlu.training_data.message import Message

from components.input_guard import (
    InputSanitizer,
    TokenLimiter,
    UnusableInputClassifier,
    clean_text,
    unusable_intent,
)


@pytest.fixture
def make(tmp_path):
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(graph_schema=None, model_id="test")

    def build(cls, **config):
        return cls.create({**cls.get_default_config(), **config}, storage, Resource(cls.__name__), context)

    return build


@pytest.mark.parametrize(
    "raw,clean",
    [
        ("what\x00 is\x07 it?", "what is it?"),
        ("line one\nline two\ttab", "line one line two tab"),
        ("\u200bzero width", "zero width"),
        ("  padded  ", "padded"),
        ("", ""),
        (None, ""),
    ],
)
def test_clean_text(raw, clean):
    assert clean_text(raw) == clean


@pytest.mark.parametrize(
    "text,intent",
    [
        ("", "unclear_input"),
        ("   ", "unclear_input"),
        ("👍👍", "unclear_input"),
        ("?!...", "unclear_input"),
        ("12345", "unclear_input"),
        ("что такое кальцинированная грыжа?", "other_language"),
        ("钙化的椎间盘突出是什么", "other_language"),
        ("ما هو الانزلاق الغضروفي المتكلس", "other_language"),
        ("what is a calcified disc?", None),
        ("¿qué es una hernia calcificada?", None),  # Latin script: the classifier decides
        ("my back hurts 😭", None),
    ],
)
def test_unusable_intent(text, intent):
    assert unusable_intent(text) == intent


def test_sanitizer_cleans_and_records_the_original_length(make):
    message = Message(data={"text": "what\x00 is it"})
    make(InputSanitizer).process([message])
    assert message.get("text") == "what is it"
    assert message.get("input_guard") == {"original_length": 11, "cleaned": True}


def test_token_limiter_caps_tokens_but_keeps_the_text(make):
    text = "word " * 5000
    message = Message(data={"text": text})
    make(InputSanitizer).process([message])
    make(WhitespaceTokenizer).process([message])
    make(TokenLimiter, max_tokens=50).process([message])
    assert len(message.get("text_tokens")) == 50
    assert message.get("text") == text.strip()
    assert message.get("input_guard")["truncated_to_tokens"] == 50


def test_unusable_input_overrides_the_classifier_and_keeps_its_ranking(make):
    ranking = [{"name": "faq", "confidence": 0.7}, {"name": "greet", "confidence": 0.2}]
    message = Message(data={"text": "👍", "intent": ranking[0], "intent_ranking": ranking})
    make(UnusableInputClassifier).process([message])
    assert message.get("intent") == {"name": "unclear_input", "confidence": 1.0}
    assert message.get("intent_ranking")[0]["name"] == "unclear_input"
    guard = message.get("input_guard")
    assert guard["classifier_intent"] == ranking[0] and guard["classifier_ranking"] == ranking


def test_usable_input_is_left_alone(make):
    intent = {"name": "faq", "confidence": 0.9}
    message = Message(data={"text": "what is it", "intent": intent})
    make(UnusableInputClassifier).process([message])
    assert message.get("intent") == intent


def test_training_examples_keep_their_intent(make):
    from rasa.shared.nlu.training_data.training_data import TrainingData

    data = TrainingData([Message(data={"text": "👍", "intent": "unclear_input"})])
    make(UnusableInputClassifier).process_training_data(data)
    make(InputSanitizer).process_training_data(data)
    assert data.training_examples[0].get("intent") == "unclear_input"
    assert data.training_examples[0].get("input_guard") is None


def test_a_20000_character_message_is_cleaned_and_capped(make):
    text = "my back hurts \x00 and " * 1000
    message = Message(data={"text": text})
    for cls in (InputSanitizer, WhitespaceTokenizer, TokenLimiter, UnusableInputClassifier):
        make(cls).process([message])
    assert message.get("input_guard")["original_length"] == len(text) >= 20000
    assert "\x00" not in message.get("text")
    assert len(message.get("text_tokens")) == TokenLimiter.get_default_config()["max_tokens"]
    assert message.get("intent") is None  # usable text: the classifier's call
