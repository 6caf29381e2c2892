"""The other-language rule for Latin-script text, and the component that applies it."""
import pytest
from rasa.engine.graph import ExecutionContext
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.language_guard import (
    LanguageGuard,
    LanguageRule,
    english_base_vocabulary,
    foreign_stop_words,
    words,
)


@pytest.fixture(scope="module")
def rule():
    english = english_base_vocabulary()
    return LanguageRule(english, foreign_stop_words(english))


def test_words_split_on_apostrophes_and_digits():
    assert words("J'ai mal au dos depuis 3 semaines") == ["j", "ai", "mal", "au", "dos", "depuis", "semaines"]


@pytest.mark.parametrize(
    "text",
    [
        "necesito ayuda con mi espalda por favor",
        "ich habe seit gestern Schmerzen im Bein",
        "je voudrais parler avec quelqu'un de la clinique",
        "ho bisogno di aiuto per la mia schiena",
        "preciso de ajuda com as minhas costas",
        "czy mogę dostać skierowanie do lekarza",
        "boynum ağrıyor ne yapmalıyım",
        "mijn rug doet zeer na het werk",
    ],
)
def test_other_languages_are_recognised(rule, text):
    assert rule.is_other_language(text)


@pytest.mark.parametrize(
    "text",
    [
        "wat is a calcifed disk",  # misspelled English has no foreign stop words
        "pls help my bak hurts so bad",
        "hernia operation recovery time",
        "is the café chair bad for my back",  # one diacritic in an English sentence
        "de quervain and my lumbar disc",
        "hola",  # one word is too little to tell
        "ok",
    ],
)
def test_english_stays_english(rule, text):
    assert not rule.is_other_language(text)


@pytest.fixture
def storage(tmp_path):
    return LocalModelStorage(tmp_path)


def _train(storage, examples):
    context = ExecutionContext(graph_schema=None, model_id="test")
    guard = LanguageGuard.create(LanguageGuard.get_default_config(), storage, Resource("guard"), context)
    guard.train(TrainingData([Message(data={"text": t, "intent": i}) for t, i in examples]))
    return guard, context


def test_training_words_count_as_english_and_survive_loading(storage):
    text = "sacroiliitis und spondylodiscitis"  # neither long word is in spaCy's English table
    untrained_rule = LanguageRule(
        english_base_vocabulary(), foreign_stop_words(english_base_vocabulary())
    )
    assert untrained_rule.is_other_language(text)

    guard, context = _train(
        storage,
        [("is sacroiliitis like spondylodiscitis", "faq"), ("hola que tal", "other_language")],
    )
    loaded = LanguageGuard.load(LanguageGuard.get_default_config(), storage, Resource("guard"), context)
    for component in (guard, loaded):
        message = Message(data={"text": text})
        component.process([message])
        assert message.get("intent") is None
    # Words of other_language examples do not become English.
    message = Message(data={"text": "hola que tal amigo"})
    loaded.process([message])
    assert message.get("intent")["name"] == "other_language"


def test_override_keeps_the_classifier_ranking(storage):
    guard, _ = _train(storage, [("what is it", "faq")])
    ranking = [{"name": "faq", "confidence": 0.9}, {"name": "greet", "confidence": 0.1}]
    message = Message(data={"text": "tengo dolor de espalda desde hace meses"})
    message.set("intent", ranking[0])
    message.set("intent_ranking", ranking)
    guard.process([message])
    assert message.get("intent") == {"name": "other_language", "confidence": 1.0}
    assert message.get("intent_ranking")[0]["name"] == "other_language"
    guard_output = message.get("input_guard")
    assert guard_output["overridden_by"] == "other_language"
    assert guard_output["classifier_intent"] == ranking[0]


def test_used_untrained_fails_loudly(storage):
    context = ExecutionContext(graph_schema=None, model_id="test")
    guard = LanguageGuard.create({}, storage, Resource("guard"), context)
    with pytest.raises(RuntimeError):
        guard.process([Message(data={"text": "hola"})])
