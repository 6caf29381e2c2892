"""Ranked search over the article's passages (BM25 on spaCy lemmas).

Used by the fallback action: when the classifier is unsure, the best passage is
quoted if it is relevant enough, and otherwise the bot says it doesn't know.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, List, Sequence

import yaml

from knowledge import KNOWLEDGE_DIR, Passage, load_passages
from knowledge.text import content_lemmas

SETTINGS_PATH = KNOWLEDGE_DIR / "search.yml"

# Relevance: a passage is quoted only when it covers at least this share of the
# query's distinct content lemmas (after synonym expansion) ...
MIN_COVERAGE = 0.5
# ... and matches at least this many distinct query lemmas, or one rare lemma
# (one that occurs in at most RARE_DOC_FREQ passages) for a one- or two-word query.
MIN_MATCHED_TERMS = 2
RARE_DOC_FREQ = 2

BM25_K1 = 1.5
BM25_B = 0.75


@dataclass(frozen=True)
class Hit:
    """A passage with its score and how much of the query it covers."""

    passage: Passage
    score: float
    coverage: float
    matched: tuple

    @property
    def relevant(self) -> bool:
        return self.coverage >= MIN_COVERAGE and len(self.matched) >= 1


@lru_cache(maxsize=1)
def _settings() -> dict:
    with open(SETTINGS_PATH, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


@lru_cache(maxsize=1)
def _synonyms() -> Dict[str, List[str]]:
    """Synonyms by lemma; the values are lemmatised like passage text is."""
    raw = _settings().get("synonyms") or {}
    return {
        str(key): [lemma for value in values for lemma in content_lemmas(str(value))]
        for key, values in raw.items()
    }


def query_lemmas(query: str) -> List[str]:
    """The query's distinct content lemmas, less the words that carry no topic."""
    ignore = set(_settings().get("ignore") or [])
    return list(dict.fromkeys(l for l in content_lemmas(query) if l not in ignore))


class PassageIndex:
    """An in-memory BM25 index over the passages."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        self.passages = list(passages)
        self.docs = [
            Counter(content_lemmas(f"{p.title} {p.text} {p.source}")) for p in self.passages
        ]
        self.lengths = [sum(doc.values()) for doc in self.docs]
        self.avg_length = sum(self.lengths) / max(len(self.lengths), 1)
        df: Counter = Counter()
        for doc in self.docs:
            df.update(doc.keys())
        self.doc_freq = df
        n = len(self.docs)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def query_terms(self, query: str) -> List[str]:
        """The query's content lemmas, each followed by its synonyms, deduplicated."""
        terms: List[str] = []
        for lemma in query_lemmas(query):
            for term in [lemma, *_synonyms().get(lemma, [])]:
                if term not in terms:
                    terms.append(term)
        return terms

    def search(self, query: str, limit: int = 3) -> List[Hit]:
        """Passages matching some query term: best coverage first, then BM25 score."""
        distinct = query_lemmas(query)
        terms = self.query_terms(query)
        if not terms:
            return []
        synonyms = _synonyms()
        hits: List[Hit] = []
        for passage, doc, length in zip(self.passages, self.docs, self.lengths):
            score = 0.0
            for term in terms:
                tf = doc.get(term, 0)
                if tf:
                    norm = tf + BM25_K1 * (1 - BM25_B + BM25_B * length / self.avg_length)
                    score += self.idf[term] * tf * (BM25_K1 + 1) / norm
            if score <= 0:
                continue
            # Coverage counts each word of the patient's query once: it is matched
            # when the word itself or one of its synonyms is in the passage.
            matched = tuple(
                lemma
                for lemma in distinct
                if any(doc.get(t) for t in [lemma, *synonyms.get(lemma, [])])
            )
            coverage = len(matched) / len(distinct)
            if len(matched) < MIN_MATCHED_TERMS and not self._rare_single(matched, distinct):
                coverage = min(coverage, MIN_COVERAGE - 0.01)
            hits.append(Hit(passage, score, coverage, matched))
        hits.sort(key=lambda h: (-h.coverage, -h.score, h.passage.id))
        return hits[:limit]

    def _rare_single(self, matched: tuple, distinct: List[str]) -> bool:
        """One matched word is enough for a short query when that word is rare."""
        if len(distinct) > 2 or not matched:
            return False
        synonyms = _synonyms()
        return any(
            0 < self.doc_freq.get(t, 0) <= RARE_DOC_FREQ
            for lemma in matched
            for t in [lemma, *synonyms.get(lemma, [])]
        )


@lru_cache(maxsize=1)
def default_index() -> PassageIndex:
    """The index over the project's article, built once per process."""
    return PassageIndex(list(load_passages().values()))
