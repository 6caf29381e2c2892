"""The one spaCy pipeline shared by the Rasa process and the action server.

A blank English pipeline with spaCy's rule-based tokenizer, a sentencizer and the
lookup lemmatizer from ``spacy-lookups-data``. Nothing is downloaded at run time
and the output is deterministic, which matters for a safety net.
"""
from __future__ import annotations

from functools import lru_cache
from typing import List

import spacy
from spacy.language import Language


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
