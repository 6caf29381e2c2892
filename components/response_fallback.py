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

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.fallback_classifier import _fallback_intent
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class ResponseSelectionFallback(GraphComponent):
    """``nlu_fallback`` when the retrieval intent's best answer is below the threshold."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"retrieval_intent": "faq", "threshold": 0.5}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.retrieval_intent = config["retrieval_intent"]
        self.threshold = float(config["threshold"])

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "ResponseSelectionFallback":
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            intent = message.get(INTENT) or {}
            if intent.get(INTENT_NAME_KEY) != self.retrieval_intent:
                continue
            selection = (message.get("response_selector") or {}).get(self.retrieval_intent) or {}
            confidence = (selection.get("response") or {}).get("confidence") or 0.0
            if confidence < self.threshold:
                fallback = _fallback_intent(self.threshold)
                message.set(INTENT, fallback, add_to_output=True)
                ranking = list(message.get(INTENT_RANKING_KEY) or [])
                message.set(INTENT_RANKING_KEY, [fallback, *ranking], add_to_output=True)
        return messages
