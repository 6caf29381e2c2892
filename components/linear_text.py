"""A linear text classifier shared by the topic intent classifier and the answer blend.

TF-IDF features of words (uni- and bigrams) and characters (2 to 5 within words),
with sublinear term frequencies, and a multinomial logistic regression with
balanced class weights. It trains in seconds on our 4,000 examples, and its
probabilities are calibrated well enough for fallback thresholds. Features and
weights are stored as JSON and NumPy arrays (no pickle), so a model stays
self-contained and safe to load.

``LinearTextComponent`` is the Rasa graph component around one such model: it
creates, stores and loads it, for the components built on it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Text

import numpy as np
import scipy.sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

FEATURES_FILE = "features.json"
WEIGHTS_FILE = "weights.npz"

DEFAULTS: Dict[Text, Any] = {
    "C": 10.0,
    "max_iter": 300,
    "word_ngrams": [1, 2],
    "char_ngrams": [2, 5],
}


def message_text(message: Message) -> Text:
    """The tokens the classifiers see (TokenLimiter caps them), as one string."""
    tokens = message.get(TOKENS_NAMES[TEXT])
    if tokens:
        return " ".join(token.text for token in tokens)
    return message.get(TEXT) or ""


def _vectorizers(config: Dict[Text, Any]) -> Dict[Text, TfidfVectorizer]:
    return {
        "words": TfidfVectorizer(
            analyzer="word", ngram_range=tuple(config["word_ngrams"]), sublinear_tf=True
        ),
        "chars": TfidfVectorizer(
            analyzer="char_wb", ngram_range=tuple(config["char_ngrams"]), sublinear_tf=True
        ),
    }


class LinearTextModel:
    """TF-IDF words and characters, logistic regression; trained, stored and loaded."""

    def __init__(self, config: Optional[Dict[Text, Any]] = None) -> None:
        self.config = {**DEFAULTS, **(config or {})}
        self.vectorizers: Optional[Dict[Text, TfidfVectorizer]] = None
        self.labels: List[Text] = []
        self.coef: Optional[np.ndarray] = None
        self.intercept: Optional[np.ndarray] = None

    @property
    def trained(self) -> bool:
        return self.vectorizers is not None and self.coef is not None

    def features(self, texts: Sequence[Text]) -> scipy.sparse.csr_matrix:
        assert self.vectorizers is not None
        return scipy.sparse.hstack(
            [vectorizer.transform(texts) for vectorizer in self.vectorizers.values()]
        ).tocsr()

    def fit(self, texts: Sequence[Text], labels: Sequence[Text]) -> "LinearTextModel":
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
        model.fit(self.features(texts), list(labels))
        self.labels = [str(label) for label in model.classes_]
        self.coef, self.intercept = model.coef_, model.intercept_
        return self

    def probabilities(self, texts: Sequence[Text]) -> np.ndarray:
        """One row per text, one column per label (``self.labels``), rows adding up to 1."""
        assert self.coef is not None and self.intercept is not None
        scores = self.features(texts) @ self.coef.T + self.intercept
        if scores.shape[1] == 1:  # two classes: one weight vector, sigmoid of the score
            scores = np.hstack([np.zeros_like(scores), scores])
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def save(self, directory: Path, extra: Optional[Dict[Text, Any]] = None) -> None:
        assert self.vectorizers is not None
        features = {
            name: {
                "vocabulary": {term: int(i) for term, i in vectorizer.vocabulary_.items()},
                "idf": vectorizer.idf_.tolist(),
            }
            for name, vectorizer in self.vectorizers.items()
        }
        stored = {"labels": self.labels, "features": features, **(extra or {})}
        (directory / FEATURES_FILE).write_text(json.dumps(stored), encoding="utf-8")
        np.savez(directory / WEIGHTS_FILE, coef=self.coef, intercept=self.intercept)

    @classmethod
    def load(cls, directory: Path, config: Optional[Dict[Text, Any]] = None) -> "tuple[LinearTextModel, Dict[Text, Any]]":
        """The model and everything stored with it (``extra`` of ``save``)."""
        model = cls(config)
        stored = json.loads((directory / FEATURES_FILE).read_text(encoding="utf-8"))
        with np.load(directory / WEIGHTS_FILE) as weights:
            model.coef = weights["coef"]
            model.intercept = weights["intercept"]
        model.labels = stored["labels"]
        model.vectorizers = _vectorizers(model.config)
        for name, vectorizer in model.vectorizers.items():
            vectorizer.vocabulary = stored["features"][name]["vocabulary"]
            vectorizer.idf_ = np.asarray(stored["features"][name]["idf"])
        return model, stored


class LinearTextComponent(GraphComponent):
    """A trainable Rasa component around one ``LinearTextModel`` in its model resource.

    Subclasses fit ``self.model`` in ``train`` and call ``_store``; what they store
    beside the model (``extra``) comes back to ``_restore`` when the model is loaded.
    A component trained without examples stores nothing and predicts nothing.
    """

    @classmethod
    def required_components(cls) -> List[type]:
        return [Tokenizer]

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.model = LinearTextModel(self.config)

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "LinearTextComponent":
        return cls(config, model_storage, resource)

    def _store(self, extra: Optional[Dict[Text, Any]] = None) -> Resource:
        with self._model_storage.write_to(self._resource) as directory:
            self.model.save(directory, extra=extra)
        return self._resource

    def _restore(self, stored: Dict[Text, Any]) -> None:
        """Takes back what ``_store`` kept beside the model (nothing by default)."""

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "LinearTextComponent":
        component = cls(config, model_storage, resource)
        try:
            with model_storage.read_from(resource) as directory:
                component.model, stored = LinearTextModel.load(directory, component.config)
        except (ValueError, FileNotFoundError):
            return component  # trained without examples: predicts nothing
        component._restore(stored)
        return component
