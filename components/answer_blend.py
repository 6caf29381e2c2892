"""The FAQ answer, chosen by Rasa's ResponseSelector and a linear topic model together.

Rasa's ResponseSelector picks the answer to an FAQ question (``faq/<topic>``).
Cross-validated on our data it is right about 94.5% of the time, whatever its
size or epochs (5 folds: 0.945 with 512 dense units and 60 epochs, 0.946 with
128). A logistic regression over TF-IDF words and characters
(components/linear_text.py), trained on the same questions, is right about 96%
of the time, and the two make different mistakes.

This component runs after the ResponseSelector. It trains that linear model on
the retrieval intent's questions, and at run time averages its probabilities
with the ResponseSelector's confidences (``selector_weight`` for the selector,
the rest for the linear model). The answer with the highest average replaces
the selector's choice, in Rasa's own output format
(``response_selector.<retrieval intent>.response`` and ``ranking``), so Rasa's
retrieval action, the fallback thresholds, the review app and ``rasa test``
read it as they read the ResponseSelector's.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import (
    RESPONSE_SELECTOR_PREDICTION_KEY,
    RESPONSE_SELECTOR_PROPERTY_NAME,
    RESPONSE_SELECTOR_RANKING_KEY,
    RESPONSE_SELECTOR_RESPONSES_KEY,
    RESPONSE_SELECTOR_UTTER_ACTION_KEY,
)
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_RESPONSE_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data import util
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.linear_text import DEFAULTS, LinearTextComponent, message_text


def blend(
    selector: Dict[Text, float], linear: Dict[Text, float], selector_weight: float
) -> List[tuple]:
    """(answer key, averaged confidence), best first; an answer missing from one side counts 0."""
    keys = set(selector) | set(linear)
    scored = {
        key: selector_weight * selector.get(key, 0.0) + (1.0 - selector_weight) * linear.get(key, 0.0)
        for key in keys
    }
    return sorted(scored.items(), key=lambda item: (-item[1], item[0]))


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class AnswerBlend(LinearTextComponent):
    """Averages the ResponseSelector's answer ranking with a linear topic model's.

    It does not list the ResponseSelector among its required components: Rasa checks
    that list against the training graph too, where both train side by side.
    config.yml puts this one after the selector.
    """

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {**DEFAULTS, "retrieval_intent": "faq", "selector_weight": 0.5, "ranking_length": 10}

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource) -> None:
        super().__init__(config, model_storage, resource)
        self.responses: Dict[Text, List[Dict[Text, Any]]] = {}

    def train(self, training_data: TrainingData) -> Resource:
        retrieval_intent = self.config["retrieval_intent"]
        examples = [
            example
            for example in training_data.intent_examples
            if example.get(INTENT) == retrieval_intent
            and example.get(INTENT_RESPONSE_KEY)
            and example.get(TEXT)
        ]
        if len({example.get(INTENT_RESPONSE_KEY) for example in examples}) < 2:
            return self._resource  # nothing to choose between: the selector's choice stands
        self.model.fit(
            [message_text(example) for example in examples],
            [example.get(INTENT_RESPONSE_KEY) for example in examples],
        )
        self.responses = {
            label: training_data.responses.get(util.intent_response_key_to_template_key(label)) or []
            for label in self.model.labels
        }
        return self._store(extra={"responses": self.responses})

    def _restore(self, stored: Dict[Text, Any]) -> None:
        self.responses = stored.get("responses") or {}

    def _blend_one(self, message: Message, probabilities: Dict[Text, float]) -> None:
        retrieval_intent = self.config["retrieval_intent"]
        properties = dict(message.get(RESPONSE_SELECTOR_PROPERTY_NAME) or {})
        selection: Optional[Dict[Text, Any]] = properties.get(retrieval_intent)
        if not selection:
            return
        ranking = selection.get(RESPONSE_SELECTOR_RANKING_KEY) or []
        selector = {
            item[INTENT_RESPONSE_KEY]: float(item.get(PREDICTED_CONFIDENCE_KEY) or 0.0)
            for item in ranking
            if item.get(INTENT_RESPONSE_KEY)
        }
        ids = {item.get(INTENT_RESPONSE_KEY): item.get("id") for item in ranking}
        blended = blend(selector, probabilities, float(self.config["selector_weight"]))
        if not blended:
            return
        best, confidence = blended[0]
        chosen = dict(selection.get(RESPONSE_SELECTOR_PREDICTION_KEY) or {})
        if best != chosen.get(INTENT_RESPONSE_KEY):
            chosen[RESPONSE_SELECTOR_RESPONSES_KEY] = self.responses.get(best) or [{TEXT: best}]
            chosen[RESPONSE_SELECTOR_UTTER_ACTION_KEY] = util.intent_response_key_to_template_key(best)
            chosen[INTENT_RESPONSE_KEY] = best
        chosen[PREDICTED_CONFIDENCE_KEY] = confidence
        length = int(self.config["ranking_length"]) or None
        properties[retrieval_intent] = {
            **selection,
            RESPONSE_SELECTOR_PREDICTION_KEY: chosen,
            RESPONSE_SELECTOR_RANKING_KEY: [
                {"id": ids.get(key), PREDICTED_CONFIDENCE_KEY: value, INTENT_RESPONSE_KEY: key}
                for key, value in blended[:length]
            ],
        }
        message.set(RESPONSE_SELECTOR_PROPERTY_NAME, properties, add_to_output=True)

    def process(self, messages: List[Message]) -> List[Message]:
        if not self.model.trained or not messages:
            return messages
        rows = self.model.probabilities([message_text(message) for message in messages])
        for message, row in zip(messages, rows):
            self._blend_one(message, dict(zip(self.model.labels, (float(p) for p in row))))
        return messages
