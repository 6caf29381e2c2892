"""Buttons for text-only channels: numbered options out, numbers back in.

SMS, WhatsApp and (beyond three buttons) Messenger can't show the bot's quick-reply
buttons, so the options become a numbered list under the text, and a reply that is
just a number ("2", "2.", "#2", "option 2") is replaced by that button's payload
before Rasa sees it. The buttons are read back from the conversation's own tracker,
so this survives restarts and needs no memory in the channel.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Mapping, Optional

# Keys of `custom` payloads meant for the web widget and the review tool. Messaging
# channels drop them: the text that goes with them already stands on its own.
WIDGET_PAYLOAD_KEYS = frozenset({"escalation", "checklist"})

PROMPT = "Reply with a number:"
_NUMBER = re.compile(r"^\s*(?:option|number|no\.?|#)?\s*(\d{1,2})\s*[.)]?\s*$", re.IGNORECASE)


def numbered(text: Optional[str], buttons: Iterable[Mapping[str, Any]]) -> str:
    """The message text followed by its buttons as a numbered list."""
    lines = [f"{index}. {button.get('title', '')}" for index, button in enumerate(buttons, start=1)]
    if not lines:
        return text or ""
    head = (text or "").rstrip()
    return "\n".join(([head, ""] if head else []) + [PROMPT] + lines)


def is_widget_payload(payload: Any) -> bool:
    return isinstance(payload, dict) and bool(WIDGET_PAYLOAD_KEYS & payload.keys())


def latest_buttons(events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The buttons the bot offered since the user last spoke (last message with buttons)."""
    for event in reversed(events):
        if event.get("event") == "user":
            return []
        if event.get("event") == "bot":
            buttons = (event.get("data") or {}).get("buttons")
            if buttons:
                return list(buttons)
    return []


def is_number(text: Optional[str]) -> bool:
    """Whether a reply is just an option number ("2", "2.", "option 2")."""
    return bool(_NUMBER.match(text or ""))


def resolve(text: Optional[str], events: List[Dict[str, Any]]) -> Optional[str]:
    """The payload of button `n` when the user replied just `n`; otherwise the text."""
    match = _NUMBER.match(text or "")
    if not match:
        return text
    buttons = latest_buttons(events)
    index = int(match.group(1))
    if 1 <= index <= len(buttons) and buttons[index - 1].get("payload"):
        return str(buttons[index - 1]["payload"])
    return text
