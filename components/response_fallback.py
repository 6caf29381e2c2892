"""Falls back when the classifier is sure it's a question but not which answer fits.

Rasa's FallbackClassifier looks at the intent's confidence only. The ``faq``
intent covers every question about the condition, so DIET is often sure of it
even for "my cat is sick", while the ResponseSelector, which picks the answer,
is not. Below ``threshold`` for the selected answer, this component sets
``nlu_fallback`` (as the FallbackClassifier would), so the honest fallback
(article search, or "I don't know") answers instead of a wrong FAQ answer.
The ResponseSelector's own output stays in the parse data.
"""
from __future__ import annotations

from typing import Any, Dict, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.fallback_classifier import _fallback_intent
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.base import StatelessComponent


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class ResponseSelectionFallback(StatelessComponent):
    """``nlu_fallback`` when the retrieval intent's best answer is below the threshold."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"retrieval_intent": "faq", "threshold": 0.5}

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def _process_one(self, message: Message) -> None:
        retrieval_intent = self.config["retrieval_intent"]
        threshold = float(self.config["threshold"])
        if (message.get(INTENT) or {}).get(INTENT_NAME_KEY) != retrieval_intent:
            return
        selection = (message.get("response_selector") or {}).get(retrieval_intent) or {}
        if ((selection.get("response") or {}).get("confidence") or 0.0) < threshold:
            fallback = _fallback_intent(threshold)
            message.set(INTENT, fallback, add_to_output=True)
            ranking = list(message.get(INTENT_RANKING_KEY) or [])
            message.set(INTENT_RANKING_KEY, [fallback, *ranking], add_to_output=True)
