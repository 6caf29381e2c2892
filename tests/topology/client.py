"""Talking to the replicated set-up, and reading back what PostgreSQL stored."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional, Tuple

import sqlalchemy as sa

from scripts.prod.topology import Topology


def say(url: str, sender: str, message: str, timeout: float = 60,
        headers: Optional[Dict[str, str]] = None) -> Tuple[int, Any, Dict[str, str], float]:
    """One REST turn: (status, JSON body, response headers, seconds)."""
    body = json.dumps({"sender": sender, "message": message}).encode()
    request = urllib.request.Request(f"{url}/webhooks/rest/webhook", data=body, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text, got = response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, text, got = error.code, error.read().decode(), dict(error.headers)
    elapsed = time.monotonic() - started
    try:
        return status, json.loads(text), got, elapsed
    except ValueError:
        return status, text, got, elapsed


def texts(replies: Any) -> List[str]:
    return [r["text"] for r in replies if isinstance(r, dict) and r.get("text")] if isinstance(replies, list) else []


def customs(replies: Any) -> List[Dict[str, Any]]:
    return [r["custom"] for r in replies if isinstance(r, dict) and r.get("custom")] if isinstance(replies, list) else []


def stored_events(topology: Topology, sender: str) -> List[Dict[str, Any]]:
    """The conversation's events as the tracker store holds them, in order."""
    engine = sa.create_engine(topology.postgres.url())
    try:
        with engine.connect() as db:
            rows = db.execute(sa.text("SELECT data FROM events WHERE sender_id = :s ORDER BY id"), {"s": sender})
            return [json.loads(row[0]) for row in rows]
    finally:
        engine.dispose()


def stored_turns(topology: Topology, sender: str) -> List[Tuple[str, List[str]]]:
    """(user text, bot texts that followed it) for each stored user message."""
    turns: List[Tuple[str, List[str]]] = []
    for event in stored_events(topology, sender):
        if event["event"] == "user":
            turns.append((event.get("text") or "", []))
        elif event["event"] == "bot" and turns and event.get("text"):
            turns[-1][1].append(event["text"])
    return turns
