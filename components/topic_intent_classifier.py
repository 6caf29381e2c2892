"""An intent classifier that learns each FAQ topic as its own class.

Rasa's intent classifiers see every retrieval-intent question as one intent,
``faq``: about 2,900 questions on 29 topics, against 50 to 200 examples for
each other intent. One class that wide has no shape, so the classifier learns
it as "anything", and off-topic messages ("how tall is Mount Everest") came out
as ``faq`` with full confidence.

This component trains on the full retrieval intents instead (``faq/causes``,
``faq/ct_scan``...), each a coherent class, and reports the base intent, with
the probabilities of a retrieval intent's topics added up. The ResponseSelector
still chooses the answer.

The model is a multinomial logistic regression over TF-IDF features of words
(uni- and bigrams) and characters (2 to 5 within words), with sublinear term
frequencies and balanced class weights. It trains in seconds and its
probabilities are calibrated well enough for the FallbackClassifier threshold.
Features and weights are stored as JSON and NumPy arrays in the model (no
pickle), so the model stays self-contained and safe to load.
"""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Dict, List, Optional, Text, Tuple

import numpy as np
import scipy.sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    INTENT_RESPONSE_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

FEATURES_FILE = "features.json"
WEIGHTS_FILE = "weights.npz"
RETRIEVAL_SEPARATOR = "/"


def _vectorizers(config: Dict[Text, Any]) -> Dict[Text, TfidfVectorizer]:
    return {
        "words": TfidfVectorizer(
            analyzer="word", ngram_range=tuple(config["word_ngrams"]), sublinear_tf=True
        ),
        "chars": TfidfVectorizer(
            analyzer="char_wb", ngram_range=tuple(config["char_ngrams"]), sublinear_tf=True
        ),
    }


def base_intent(label: Text) -> Text:
    """``faq/causes`` gives ``faq``; other intents stay as they are."""
    return label.split(RETRIEVAL_SEPARATOR, 1)[0]


def aggregate(labels: List[Text], probabilities: np.ndarray) -> List[Tuple[Text, float]]:
    """Base intents with their topics' probabilities added up, most likely first."""
    totals: Dict[Text, float] = defaultdict(float)
    for label, probability in zip(labels, probabilities):
        totals[base_intent(label)] += float(probability)
    return sorted(totals.items(), key=lambda item: -item[1])


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class TopicIntentClassifier(GraphComponent):
    """Logistic regression over TF-IDF features, trained on full retrieval intents."""

    @classmethod
    def required_components(cls) -> List[type]:
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "C": 10.0,
            "max_iter": 300,
            "word_ngrams": [1, 2],
            "char_ngrams": [2, 5],
            "ranking_length": 10,
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.vectorizers: Optional[Dict[Text, TfidfVectorizer]] = None
        self.labels: List[Text] = []
        self.coef: Optional[np.ndarray] = None
        self.intercept: Optional[np.ndarray] = None

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "TopicIntentClassifier":
        return cls(config, model_storage, resource)

    @staticmethod
    def _text(message: Message) -> Text:
        """The tokens the classifiers see (TokenLimiter caps them), as one string."""
        tokens = message.get(TOKENS_NAMES[TEXT])
        if tokens:
            return " ".join(token.text for token in tokens)
        return message.get(TEXT) or ""

    def _features(self, texts: List[Text]) -> scipy.sparse.csr_matrix:
        assert self.vectorizers is not None
        return scipy.sparse.hstack(
            [vectorizer.transform(texts) for vectorizer in self.vectorizers.values()]
        ).tocsr()

    def train(self, training_data: TrainingData) -> Resource:
        examples = [
            example
            for example in training_data.intent_examples
            if example.get(INTENT) and example.get(TEXT)
        ]
        if not examples:
            return self._resource
        texts = [self._text(example) for example in examples]
        labels = [example.get(INTENT_RESPONSE_KEY) or example.get(INTENT) for example in examples]
        self.vectorizers = _vectorizers(self.config)
        for vectorizer in self.vectorizers.values():
            vectorizer.fit(texts)
        model = LogisticRegression(
            C=float(self.config["C"]),
            max_iter=int(self.config["max_iter"]),
            class_weight="balanced",
            solver="lbfgs",
            random_state=42,
        )
        model.fit(self._features(texts), labels)
        self.labels = [str(label) for label in model.classes_]
        self.coef, self.intercept = model.coef_, model.intercept_
        self._persist()
        return self._resource

    def _persist(self) -> None:
        assert self.vectorizers is not None
        features = {
            name: {
                "vocabulary": {term: int(i) for term, i in vectorizer.vocabulary_.items()},
                "idf": vectorizer.idf_.tolist(),
            }
            for name, vectorizer in self.vectorizers.items()
        }
        with self._model_storage.write_to(self._resource) as directory:
            (directory / FEATURES_FILE).write_text(
                json.dumps({"labels": self.labels, "features": features}), encoding="utf-8"
            )
            np.savez(directory / WEIGHTS_FILE, coef=self.coef, intercept=self.intercept)

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "TopicIntentClassifier":
        component = cls(config, model_storage, resource)
        try:
            with model_storage.read_from(resource) as directory:
                stored = json.loads((directory / FEATURES_FILE).read_text(encoding="utf-8"))
                with np.load(directory / WEIGHTS_FILE) as weights:
                    component.coef = weights["coef"]
                    component.intercept = weights["intercept"]
        except ValueError:
            return component  # trained without examples: predicts nothing
        component.labels = stored["labels"]
        component.vectorizers = _vectorizers(component.config)
        for name, vectorizer in component.vectorizers.items():
            vectorizer.vocabulary = stored["features"][name]["vocabulary"]
            vectorizer.idf_ = np.asarray(stored["features"][name]["idf"])
        return component

    def _probabilities(self, texts: List[Text]) -> np.ndarray:
        scores = self._features(texts) @ self.coef.T + self.intercept
        if scores.shape[1] == 1:  # two classes: one weight vector, sigmoid of the score
            scores = np.hstack([np.zeros_like(scores), scores])
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def process(self, messages: List[Message]) -> List[Message]:
        if self.vectorizers is None or not messages:
            return messages
        probabilities = self._probabilities([self._text(message) for message in messages])
        length = int(self.config["ranking_length"])
        for message, row in zip(messages, probabilities):
            ranking = aggregate(self.labels, row)
            name, confidence = ranking[0]
            message.set(
                INTENT,
                {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: confidence},
                add_to_output=True,
            )
            message.set(
                INTENT_RANKING_KEY,
                [
                    {INTENT_NAME_KEY: label, PREDICTED_CONFIDENCE_KEY: value}
                    for label, value in ranking[: length or None]
                ],
                add_to_output=True,
            )
        return messages
