"""The article as data: passages with stable ids, shared by Rasa and the action server.

``knowledge/article.txt`` is the article verbatim. ``knowledge/passages.yml`` splits it
into passages; each has a stable id (``p01`` ...), a title, the verbatim ``source``
text and a plain-English ``text`` that says the same and nothing more.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict

import yaml

KNOWLEDGE_DIR = Path(__file__).resolve().parent
ARTICLE_PATH = KNOWLEDGE_DIR / "article.txt"
PASSAGES_PATH = KNOWLEDGE_DIR / "passages.yml"


@dataclass(frozen=True)
class Passage:
    """One passage of the article."""

    id: str
    title: str
    source: str
    text: str


@lru_cache(maxsize=None)
def load_passages(path: Path = PASSAGES_PATH) -> Dict[str, Passage]:
    """Passages by id, in article order."""
    with open(path, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    passages: Dict[str, Passage] = {}
    for item in raw["passages"]:
        passage = Passage(
            id=str(item["id"]),
            title=str(item["title"]),
            source=" ".join(str(item["source"]).split()),
            text=" ".join(str(item["text"]).split()),
        )
        if passage.id in passages:
            raise ValueError(f"duplicate passage id {passage.id} in {path}")
        passages[passage.id] = passage
    return passages


def article_text() -> str:
    """The article verbatim, whitespace normalised."""
    return " ".join(ARTICLE_PATH.read_text(encoding="utf-8").split())
