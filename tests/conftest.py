"""Shared fixtures: rasa-sdk Trackers and a dispatcher, as in RasaHQ/financial-demo."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from rasa_sdk import Tracker  # noqa: E402
from rasa_sdk.executor import CollectingDispatcher  # noqa: E402


def make_tracker(
    text: str = "",
    intent: str = "faq",
    slots: Optional[Dict[str, Any]] = None,
    events: Optional[List[Dict[str, Any]]] = None,
    active_loop: Optional[str] = None,
    sender_id: str = "patient-1",
    parse_extra: Optional[Dict[str, Any]] = None,
) -> Tracker:
    """A Tracker whose latest message is `text` with `intent`."""
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "entities": [],
        **(parse_extra or {}),
    }
    return Tracker(
        sender_id=sender_id,
        slots=slots or {},
        latest_message=latest,
        events=events or [],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def bot_event(text: str, utter_action: str = None, **metadata: Any) -> Dict[str, Any]:
    """A bot event as Rasa sends it to the action server."""
    meta: Dict[str, Any] = {"metadata": metadata} if metadata else {}
    if utter_action:
        meta["utter_action"] = utter_action
    return {"event": "bot", "text": text, "data": {}, "metadata": meta}


def user_event(text: str, intent: str) -> Dict[str, Any]:
    return {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}}


@pytest.fixture
def dispatcher() -> CollectingDispatcher:
    return CollectingDispatcher()


@pytest.fixture
def domain() -> Dict[str, Any]:
    return {}
