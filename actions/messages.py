"""Messages sent by custom actions, loaded from actions/messages.yml."""
from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict

import yaml
from rasa_sdk.executor import CollectingDispatcher

MESSAGES_PATH = Path(__file__).resolve().parent / "messages.yml"


@lru_cache(maxsize=1)
def _messages() -> Dict[str, Dict[str, Any]]:
    with open(MESSAGES_PATH, encoding="utf-8") as handle:
        return yaml.safe_load(handle)["messages"]


def message(name: str) -> Dict[str, Any]:
    """A copy of the named message: text, buttons and metadata."""
    return copy.deepcopy(_messages()[name])


def send(dispatcher: CollectingDispatcher, name: str) -> None:
    """Send the named message, with its buttons and citations."""
    found = message(name)
    dispatcher.utter_message(
        text=" ".join(found["text"].split()),
        buttons=found.get("buttons") or [],
        **({"metadata": found["metadata"]} if found.get("metadata") else {}),
    )
