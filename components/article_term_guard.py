"""Before saying "I only cover this condition", check whether the article does.

The classifier learns ``out_of_scope`` from questions about other illnesses
("what is arthritis", "symptoms of diabetes"). It cannot know which unfamiliar
words the article itself explains, so "what is the dura mater" came out as
``out_of_scope`` with confidence 0.67, although passage p04 explains it.

After every other classifier (and the red-flag detector, whose reports it never
touches), this component turns ``out_of_scope`` into ``nlu_fallback`` when

* the message names one of the article's own terms (``terms`` in config.yml:
  specific words such as "dura mater", "cauda equina", "claudication"; words
  that also name other illnesses, such as "cervical" or "paralysis", are left
  out on purpose), or
* ``out_of_scope`` is below ``threshold`` (the FallbackClassifier's), which
  happens when the red-flag detector set aside a classifier's red flag that was
  only asked about ("what is foot drop").

``nlu_fallback``'s rule runs the article search, which quotes the passage when
it is relevant and otherwise says it doesn't know and points to the clinic. The
classifier's ``out_of_scope`` stays second in the ranking, where ``rasa test``
finds it (it evaluates intents without the fallback).
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.fallback_classifier import _fallback_intent
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.base import StatelessComponent

_WORDS = re.compile(r"[a-z]+")


def words(text: Text) -> List[Text]:
    return _WORDS.findall(text.lower())


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class ArticleTermGuard(StatelessComponent):
    """``out_of_scope`` becomes ``nlu_fallback`` for the article's own terms."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"intent": "out_of_scope", "threshold": 0.4, "terms": []}

    def __init__(self, config: Dict[Text, Any]) -> None:
        super().__init__(config)
        self.terms = [tuple(words(str(term))) for term in self.config["terms"] if words(str(term))]

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def names_a_term(self, text: Text) -> bool:
        tokens = words(text)
        return any(
            tokens[i : i + len(term)] == list(term)
            for term in self.terms
            for i in range(len(tokens) - len(term) + 1)
        )

    def _process_one(self, message: Message) -> None:
        intent = message.get(INTENT) or {}
        if intent.get(INTENT_NAME_KEY) != self.config["intent"]:
            return
        threshold = float(self.config["threshold"])
        unsure = float(intent.get(PREDICTED_CONFIDENCE_KEY) or 0.0) < threshold
        if not (unsure or self.names_a_term(message.get(TEXT) or "")):
            return
        fallback = _fallback_intent(threshold)
        others = [
            item for item in message.get(INTENT_RANKING_KEY) or []
            if item.get(INTENT_NAME_KEY) not in (intent.get(INTENT_NAME_KEY), fallback[INTENT_NAME_KEY])
        ]
        message.set(INTENT, fallback, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [fallback, dict(intent), *others], add_to_output=True)
