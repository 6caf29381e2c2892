"""out_of_scope becomes the article search when the article explains the term asked about."""
import pytest
import yaml
from rasa.nlu.classifiers.fallback_classifier import undo_fallback_prediction
from rasa.shared.nlu.training_data.message import Message

from common.settings import PROJECT_DIR
from components.article_term_guard import ArticleTermGuard
from knowledge import load_passages


@pytest.fixture(scope="module")
def guard():
    config = yaml.safe_load((PROJECT_DIR / "config.yml").read_text())
    [settings] = [c for c in config["pipeline"] if c["name"].endswith("ArticleTermGuard")]
    return ArticleTermGuard({k: v for k, v in settings.items() if k != "name"})


def _message(text, intent="out_of_scope", confidence=0.7):
    ranking = [{"name": intent, "confidence": confidence}, {"name": "faq", "confidence": 0.1}]
    return Message(data={"text": text, "intent": dict(ranking[0]), "intent_ranking": ranking})


def test_every_configured_term_is_in_the_article(guard):
    # in our passages, or (for a spelling such as "hemolytic") in the verbatim article
    article = " ".join(p.text.lower() for p in load_passages().values())
    article += " " + (PROJECT_DIR / "knowledge" / "article.txt").read_text(encoding="utf-8").lower()
    for term in guard.terms:
        assert " ".join(term) in article, term


@pytest.mark.parametrize("text", ["what is the dura mater", "Cauda equina??", "what does claudication mean"])
def test_an_article_term_goes_to_the_article_search(guard, text):
    message = _message(text)
    guard.process([message])
    assert message.get("intent")["name"] == "nlu_fallback"
    ranking = message.get("intent_ranking")
    assert [r["name"] for r in ranking[:2]] == ["nlu_fallback", "out_of_scope"]
    # rasa test evaluates intents without the fallback: it still sees out_of_scope
    assert undo_fallback_prediction(message.as_dict())["intent"]["name"] == "out_of_scope"


@pytest.mark.parametrize("text", ["what is arthritis", "cervical smear test", "sleep paralysis", "what's the weather"])
def test_other_illnesses_and_topics_stay_out_of_scope(guard, text):
    message = _message(text)
    guard.process([message])
    assert message.get("intent")["name"] == "out_of_scope"


def test_a_weak_out_of_scope_goes_to_the_article_search(guard):
    message = _message("what is foot drop exactly", confidence=0.2)
    guard.process([message])
    assert message.get("intent")["name"] == "nlu_fallback"
    message = _message("how do i bake bread", confidence=0.2)
    guard.process([message])
    assert message.get("intent")["name"] == "nlu_fallback"


def test_other_intents_are_left_alone(guard):
    for intent in ("faq", "report_red_flag", "greet"):
        message = _message("what is the dura mater", intent=intent)
        guard.process([message])
        assert message.get("intent")["name"] == intent
