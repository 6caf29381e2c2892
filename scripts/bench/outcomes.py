"""What the assistant actually did with the benchmark's messages, read from its tracker store.

The client labels each message by what the script meant (an FAQ question, a checklist
answer, a fallback question); the tracker store says which intent Rasa gave it and which
actions followed. Reading both shows whether the mix was the one intended, for each
pipeline: a fallback question the default pipeline answers with an FAQ answer makes it
cheaper, and the report should say so rather than hide it.
"""
from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, Iterable, List, Set, Tuple

import yaml

PROJECT = Path(__file__).resolve().parents[2]


def action_server_actions(domain_dir: Path = PROJECT / "domain") -> Set[str]:
    """Custom actions and forms: what runs on (or, for a form, calls) the action server."""
    names: Set[str] = set()
    for path in sorted(domain_dir.glob("*.yml")):
        domain = yaml.safe_load(path.read_text()) or {}
        names.update(domain.get("actions") or [])
        names.update((domain.get("forms") or {}).keys())
    return names


def outcomes(tracker_db: Path, sent: Iterable[Tuple[str, str, str]], top: int = 5) -> Dict[str, Dict]:
    """For each kind of message: how many reached the tracker, their intents, the actions
    after them, and how many involved the action server."""
    kinds_by_sender: Dict[str, List[str]] = defaultdict(list)
    for sender, kind, _text in sent:
        kinds_by_sender[sender].append(kind)
    custom = action_server_actions()
    with sqlite3.connect(f"file:{tracker_db}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT sender_id, type_name, intent_name, action_name FROM events "
            "WHERE type_name IN ('user', 'action') ORDER BY sender_id, id").fetchall()
    turns: Counter = Counter()
    intents: Dict[str, Counter] = defaultdict(Counter)
    actions: Dict[str, Counter] = defaultdict(Counter)
    action_server_turns: Counter = Counter()
    position: Dict[str, int] = defaultdict(int)
    current: Dict[str, Tuple[str, bool]] = {}  # sender -> (kind of its last message, action server seen)
    for sender, type_name, intent, action in rows:
        if sender not in kinds_by_sender:
            continue
        if type_name == "user":
            index = position[sender]
            position[sender] += 1
            if index >= len(kinds_by_sender[sender]):
                current.pop(sender, None)
                continue
            kind = kinds_by_sender[sender][index]
            turns[kind] += 1
            intents[kind][intent or "?"] += 1
            current[sender] = (kind, False)
        elif sender in current and action not in ("action_listen", None):
            kind, seen = current[sender]
            actions[kind][action] += 1
            if action in custom and not seen:
                action_server_turns[kind] += 1
                current[sender] = (kind, True)
    sent_count = Counter(kind for kinds in kinds_by_sender.values() for kind in kinds)
    return {
        kind: {
            "sent": sent_count[kind],
            "in_tracker": turns[kind],
            "action_server_turns": action_server_turns[kind],
            "intents": dict(intents[kind].most_common(top)),
            "actions": dict(actions[kind].most_common(top)),
        }
        for kind in sorted(sent_count)
    }
