"""Guards for bad input: control characters, very long messages, unusable text.

Three small NLU components:

* ``InputSanitizer`` (first in the pipeline) removes control characters and
  records the message's original length, so nothing downstream trips on them.
* ``TokenLimiter`` (right after the tokenizer) caps the tokens the featurizers
  and classifiers see: a 20,000-character message costs what a long one does.
  The full text stays in the message, for the red-flag detector and the tracker.
* ``UnusableInputClassifier`` (after the classifiers) gives a message with no
  letters at all (empty, emoji, punctuation) the intent ``unclear_input``, and
  one written mostly in a non-Latin script the intent ``other_language``; the
  classifier's own ranking is kept in the ``input_guard`` output.
"""
from __future__ import annotations

import unicodedata
from typing import Any, Dict, List, Optional, Text

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.nlu.constants import TOKENS_NAMES

from components.base import StatelessComponent

OUTPUT_KEY = "input_guard"
UNCLEAR_INTENT = "unclear_input"
OTHER_LANGUAGE_INTENT = "other_language"
# A message whose letters are mostly outside the Latin script is not English.
MIN_LATIN_SHARE = 0.5
_KEEP_CONTROLS = {"\n", "\t"}


def clean_text(text: Optional[str]) -> str:
    """The text without control or format characters (newlines and tabs become spaces)."""
    kept = []
    for char in text or "":
        if char in _KEEP_CONTROLS:
            kept.append(" ")
        elif unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Cn"):
            kept.append(char)
    return "".join(kept).strip()


def unusable_intent(text: str) -> Optional[str]:
    """``unclear_input``, ``other_language`` or None for usable text."""
    letters = [char for char in text if char.isalpha()]
    if not letters:
        return UNCLEAR_INTENT
    latin = sum(1 for char in letters if unicodedata.name(char, "").startswith("LATIN"))
    if latin / len(letters) < MIN_LATIN_SHARE:
        return OTHER_LANGUAGE_INTENT
    return None


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False
)
class InputSanitizer(StatelessComponent):
    """Removes control characters; records the original length."""

    def _process_one(self, message: Message) -> None:
        original = message.get(TEXT)
        if original is None:
            return
        cleaned = clean_text(original)
        if cleaned != original:
            message.set(TEXT, cleaned)
        if message.get(INTENT) is None:  # inference, not a training example
            message.set(
                OUTPUT_KEY,
                {"original_length": len(original), "cleaned": cleaned != original},
                add_to_output=True,
            )


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False
)
class TokenLimiter(StatelessComponent):
    """Keeps the first ``max_tokens`` tokens of the text for the classifiers."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"max_tokens": 200}

    def _process_one(self, message: Message) -> None:
        tokens = message.get(TOKENS_NAMES[TEXT])
        limit = int(self.config["max_tokens"])
        if tokens and len(tokens) > limit:
            message.set(TOKENS_NAMES[TEXT], tokens[:limit])
            guard = message.get(OUTPUT_KEY)
            if isinstance(guard, dict):
                guard["truncated_to_tokens"] = limit


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False
)
class UnusableInputClassifier(StatelessComponent):
    """Fixed intents for text with no letters or in a non-Latin script."""

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def _process_one(self, message: Message) -> None:
        intent = unusable_intent(message.get(TEXT) or "")
        if intent is not None:
            override_intent(message, intent)


def override_intent(message: Message, intent: Text) -> None:
    """Sets ``intent`` with confidence 1, keeping the classifier's own ranking.

    The classifier's intent and ranking go into the ``input_guard`` output, so
    the review app can show what was overridden.
    """
    guard = dict(message.get(OUTPUT_KEY) or {})
    guard["classifier_intent"] = message.get(INTENT)
    guard["classifier_ranking"] = message.get(INTENT_RANKING_KEY)
    guard["overridden_by"] = intent
    message.set(OUTPUT_KEY, guard, add_to_output=True)
    message.set(
        INTENT, {INTENT_NAME_KEY: intent, PREDICTED_CONFIDENCE_KEY: 1.0}, add_to_output=True
    )
    ranking = [
        item
        for item in (message.get(INTENT_RANKING_KEY) or [])
        if item.get(INTENT_NAME_KEY) != intent
    ]
    message.set(
        INTENT_RANKING_KEY,
        [{INTENT_NAME_KEY: intent, PREDICTED_CONFIDENCE_KEY: 1.0}, *ranking],
        add_to_output=True,
    )
