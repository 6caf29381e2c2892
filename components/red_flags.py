"""RedFlagDetector: an NLU component that finds red-flag symptoms, whatever the classifier thinks.

It runs last in the pipeline (config.yml). With the rule-based matcher in
components/red_flag_matcher.py it looks for reported red-flag signs in the full
text of the message. Then:

* a reported sign sets the intent ``report_red_flag`` (confidence 1.0, top of the
  ranking) and adds one ``red_flag`` entity (the sign id) and one
  ``red_flag_label`` entity (its plain-English label) per sign, which fill the
  slots the urgent message names;
* when the classifier chose ``report_red_flag`` but every sign or symptom word found
  was negated or asked about ("I can pee normally"), the intent falls back to the
  classifier's best other intent;
* when the classifier chose ``report_red_flag``, the lexicon found no sign but did
  find affirmed symptom words ("numb toes on my right foot", "pain in my groin"),
  the lexicon understood the message and saw no red flag in it, but the classifier
  may know a wording it lacks: the intent becomes ``describe_symptoms``, whose
  rule asks the red-flag screening question, and a yes escalates;
* when the classifier chose ``report_red_flag`` and the lexicon found no symptom
  word at all, the wording is unknown to it, so the classifier is trusted (a missing
  lexicon entry must still escalate) and the sign is ``unspecified``.

The classifier's own intent and ranking are kept in the ``red_flag`` output of
the parse data, so reviewers see both. The lexicon is read at training time and
stored in the model, so a trained model is self-contained.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Text

import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    ENTITIES,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from common.settings import PROJECT_DIR
from components.red_flag_matcher import Detection, RedFlagMatcher

INTENT_NAME = "report_red_flag"
SCREEN_INTENT = "describe_symptoms"  # its rule asks the red-flag screening question
OUTPUT_KEY = "red_flag"
UNSPECIFIED = "unspecified"
UNSPECIFIED_LABEL = "a warning sign"
LEXICON_FILE = "lexicon.json"


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class RedFlagDetector(GraphComponent):
    """Sets ``report_red_flag`` for reported red-flag signs, with the signs as entities."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"lexicon": "knowledge/red_flags.yml"}

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        lexicon: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.config = config
        self._model_storage = model_storage
        self._resource = resource
        self.lexicon = lexicon
        self.matcher = RedFlagMatcher(lexicon) if lexicon else None

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "RedFlagDetector":
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "RedFlagDetector":
        with model_storage.read_from(resource) as directory:
            lexicon = json.loads((directory / LEXICON_FILE).read_text(encoding="utf-8"))
        return cls(config, model_storage, resource, lexicon)

    def train(self, training_data: TrainingData) -> Resource:
        """Reads the lexicon file and stores it in the model."""
        path = PROJECT_DIR / self.config["lexicon"]
        with open(path, encoding="utf-8") as handle:
            self.lexicon = yaml.safe_load(handle)
        self.matcher = RedFlagMatcher(self.lexicon)  # fails training on a bad lexicon
        with self._model_storage.write_to(self._resource) as directory:
            (directory / LEXICON_FILE).write_text(json.dumps(self.lexicon), encoding="utf-8")
        return self._resource

    def process(self, messages: List[Message]) -> List[Message]:
        if self.matcher is None:
            raise RuntimeError("RedFlagDetector was used before it was trained or loaded")
        for message in messages:
            self._process_one(message, self.matcher.detect(message.get(TEXT) or ""))
        return messages

    def _process_one(self, message: Message, detection: Detection) -> None:
        intent = message.get(INTENT) or {}
        ranking = list(message.get(INTENT_RANKING_KEY) or [])
        classifier_says = intent.get(INTENT_NAME_KEY) == INTENT_NAME
        signs = detection.reported
        labels = [self._label(sign) for sign in signs]
        spans = {m.sign: m for m in detection.matches if m.reported}
        denied = bool(detection.matches) or detection.only_denied
        # The classifier says red flag and the lexicon neither confirms nor denies it.
        unconfirmed = not signs and classifier_says and not denied
        understood = any(not reason for _, reason in detection.mentions)
        screen = unconfirmed and understood
        if unconfirmed and not understood:
            signs, labels = [UNSPECIFIED], [UNSPECIFIED_LABEL]
        output = {
            "signs": signs,
            "labels": labels,
            "not_reported": [
                {"sign": m.sign, "reason": m.reason} for m in detection.matches if not m.reported
            ],
            "classifier_intent": intent or None,
            "classifier_ranking": ranking,
            "screen": screen,
        }
        message.set(OUTPUT_KEY, output, add_to_output=True)
        if signs:
            self._set_intent(message, {INTENT_NAME_KEY: INTENT_NAME, PREDICTED_CONFIDENCE_KEY: 1.0}, ranking)
            entities = list(message.get(ENTITIES) or [])
            for sign, label in zip(signs, labels):
                match = spans.get(sign)
                position = {"start": match.start_char, "end": match.end_char} if match else {}
                for entity, value in (("red_flag", sign), ("red_flag_label", label)):
                    entities.append({
                        "entity": entity, "value": value, **position,
                        "confidence_entity": 1.0, "extractor": type(self).__name__,
                    })
            message.set(ENTITIES, entities, add_to_output=True)
        elif screen:
            self._set_intent(message, {INTENT_NAME_KEY: SCREEN_INTENT, PREDICTED_CONFIDENCE_KEY: 1.0}, ranking)
        elif classifier_says:
            # Every sign or symptom word found was negated or asked about: not a report.
            others = [item for item in ranking if item.get(INTENT_NAME_KEY) != INTENT_NAME]
            if others:
                self._set_intent(message, dict(others[0]), ranking)

    def _label(self, sign: str) -> str:
        return str(self.lexicon["signs"][sign]["label"]) if self.lexicon else sign

    @staticmethod
    def _set_intent(message: Message, intent: Dict[str, Any], ranking: List[Dict[str, Any]]) -> None:
        rest = [item for item in ranking if item.get(INTENT_NAME_KEY) != intent[INTENT_NAME_KEY]]
        message.set(INTENT, intent, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [intent, *rest], add_to_output=True)
