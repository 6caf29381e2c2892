"""The one spaCy pipeline shared by the Rasa process and the action server.

A blank English pipeline with spaCy's rule-based tokenizer, a sentencizer and the
lookup lemmatizer from ``spacy-lookups-data``. Nothing is downloaded at run time
and the output is deterministic, which matters for a safety net.
"""
from __future__ import annotations

import sys
from functools import lru_cache
from typing import List


def _import_spacy_without_tensorflow():
    """Import spaCy without letting thinc import TensorFlow.

    thinc (spaCy's layer library) imports TensorFlow whenever it is installed, to offer
    its TF wrappers; Rasa installs it. A blank pipeline never uses them, and in the
    action server, which has no other use for TensorFlow, that import cost about 10 s
    of start-up and about 400 MB of memory. So while spaCy is first imported,
    ``import tensorflow`` fails (a None in sys.modules); afterwards it works again, and
    a process that had already imported TensorFlow (the Rasa server) is left alone.
    """
    hide = "spacy" not in sys.modules and "tensorflow" not in sys.modules
    if hide:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]
    try:
        import spacy as module
    finally:
        if hide:
            del sys.modules["tensorflow"]
    return module


spacy = _import_spacy_without_tensorflow()
from spacy.language import Language  # noqa: E402


@lru_cache(maxsize=1)
def nlp() -> Language:
    """Return the shared blank English pipeline (built once per process)."""
    pipeline = spacy.blank("en")
    pipeline.add_pipe("sentencizer")
    pipeline.add_pipe("lemmatizer", config={"mode": "lookup"})
    pipeline.initialize()
    return pipeline


def content_lemmas(text: str) -> List[str]:
    """Lower-cased lemmas of the content words in ``text``.

    Stop words, punctuation, spaces and numbers written as digits are dropped;
    what is left is what carries the meaning of a sentence. The text is lower-cased
    first, because the lookup tables are keyed by lower-case words.
    """
    return [
        token.lemma_
        for token in nlp()(text.lower())
        if token.is_alpha and not token.is_stop and len(token) > 1
    ]
