"""Recognises messages written in another language that uses the Latin script.

``UnusableInputClassifier`` already catches other scripts (Cyrillic, Arabic,
Chinese...). Spanish, French, German, Turkish and the like look like any other
Latin text to the classifiers, which were trained on English: they used to
take "bonjour, j'ai mal au dos" for an FAQ question and answer it in English.

The rule is deterministic and explainable:

* the message has at least ``min_words`` words;
* fewer than ``max_english_share`` of them are English words, where English is
  spaCy's English lemma tables and stop words plus every word of the training
  examples (other than ``other_language`` ones), so the patients' own spellings
  and the condition's vocabulary count as English;
* and there is positive evidence of another language: a stop word of one of
  spaCy's other Latin-script languages that is not an English word, or a letter
  with a diacritic (é, ñ, ü, ş, ą...).

Misspelled English ("wat is a calcifed disk") has no foreign stop words and
stays English. The vocabulary is learned at training time and stored in the
model, so the model is self-contained and cross-validation learns it per fold.
"""
from __future__ import annotations

import gzip
import importlib
import json
import re
import unicodedata
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Set, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.input_guard import OTHER_LANGUAGE_INTENT, override_intent

VOCABULARY_FILE = "language_guard.json"
# spaCy 3.4's Latin-script languages with stop word lists.
FOREIGN_LANGUAGES = (
    "af ca cs da de es et eu fi fr hr hu id it lt lv nb nl pl pt ro sk sl sq sv tl tr"
).split()
_WORD = re.compile(r"[^\W\d_]+")


def words(text: Text) -> List[Text]:
    """Lower-cased runs of letters ("j'ai" gives "j" and "ai")."""
    return _WORD.findall(text.lower())


def english_base_vocabulary() -> Set[Text]:
    """spaCy's English stop words and every form in its English lemma lookup table."""
    from spacy.lang.en.stop_words import STOP_WORDS
    import spacy_lookups_data

    path = spacy_lookups_data.__path__[0] + "/data/en_lemma_lookup.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        table = json.load(handle)
    vocabulary = {word.lower() for word in STOP_WORDS}
    for form, lemma in table.items():
        vocabulary.update(words(form))
        vocabulary.update(words(lemma))
    return vocabulary


def foreign_stop_words(english: Set[Text]) -> Dict[Text, List[Text]]:
    """Each foreign language's stop words that are not also English words."""
    lists = {}
    for code in FOREIGN_LANGUAGES:
        module = importlib.import_module(f"spacy.lang.{code}.stop_words")
        lists[code] = sorted(
            {w for word in module.STOP_WORDS for w in words(word)} - english
        )
    return lists


def _has_diacritic(tokens: Iterable[Text]) -> bool:
    return any(
        ord(char) > 127 and unicodedata.name(char, "").startswith("LATIN")
        for token in tokens
        for char in token
    )


class LanguageRule:
    """Decides whether a Latin-script text is written in another language."""

    def __init__(
        self,
        english: Iterable[Text],
        foreign: Dict[Text, Iterable[Text]],
        min_words: int = 2,
        max_english_share: float = 0.5,
    ) -> None:
        self.english: FrozenSet[Text] = frozenset(english)
        self.foreign: List[FrozenSet[Text]] = [frozenset(v) for v in foreign.values()]
        self.min_words = min_words
        self.max_english_share = max_english_share

    def is_other_language(self, text: Text) -> bool:
        tokens = words(text)
        if len(tokens) < self.min_words:
            return False
        english = sum(token in self.english for token in tokens)
        if english / len(tokens) >= self.max_english_share:
            return False
        foreign = max(
            (sum(token in stop_words for token in tokens) for stop_words in self.foreign),
            default=0,
        )
        return foreign > 0 or _has_diacritic(t for t in tokens if t not in self.english)


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class LanguageGuard(GraphComponent):
    """Sets ``other_language`` for Latin-script text in another language."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"min_words": 2, "max_english_share": 0.5}

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        vocabulary: Optional[Dict[Text, Any]] = None,
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.rule: Optional[LanguageRule] = None
        if vocabulary is not None:
            self.rule = LanguageRule(
                vocabulary["english"],
                vocabulary["foreign"],
                int(self.config["min_words"]),
                float(self.config["max_english_share"]),
            )

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "LanguageGuard":
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "LanguageGuard":
        with model_storage.read_from(resource) as directory:
            vocabulary = json.loads((directory / VOCABULARY_FILE).read_text(encoding="utf-8"))
        return cls(config, model_storage, resource, vocabulary)

    def train(self, training_data: TrainingData) -> Resource:
        """Learns the English vocabulary: spaCy's tables plus the training examples' words."""
        english = english_base_vocabulary()
        for example in training_data.intent_examples:
            if example.get(INTENT) != OTHER_LANGUAGE_INTENT:
                english.update(words(example.get(TEXT) or ""))
        vocabulary = {"english": sorted(english), "foreign": foreign_stop_words(english)}
        with self._model_storage.write_to(self._resource) as directory:
            (directory / VOCABULARY_FILE).write_text(json.dumps(vocabulary), encoding="utf-8")
        self.__init__(self.config, self._model_storage, self._resource, vocabulary)
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        if self.rule is None:
            raise RuntimeError("LanguageGuard was used before it was trained or loaded")
        for message in messages:
            if self.rule.is_other_language(message.get(TEXT) or ""):
                override_intent(message, OTHER_LANGUAGE_INTENT)
        return messages
