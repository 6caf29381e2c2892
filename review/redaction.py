"""Masks phone numbers and e-mail addresses in what staff see and export.

On by default (REVIEW_REDACT_CONTACTS=1). The tracker store keeps the text as the
patient wrote it; only views and exports are masked. Phone numbers are runs of 7
to 15 digits, with the usual separators and an optional leading +, that stand on
their own (not inside a word or an id); dates such as 2025-01-31 or 31.01.2025
are left alone.
"""
from __future__ import annotations

import re
from typing import Any

EMAIL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d\s().\-/]{5,}\d(?![\w])")
DATE = re.compile(r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})$")
EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"


def _phone(match: re.Match) -> str:
    found = match.group(0)
    digits = sum(ch.isdigit() for ch in found)
    if not 7 <= digits <= 15 or DATE.match(found.strip()):
        return found
    return PHONE_MASK


def redact_text(text: str) -> str:
    """The text with e-mail addresses and phone numbers masked."""
    if not text:
        return text
    return PHONE.sub(_phone, EMAIL.sub(EMAIL_MASK, text))


# In a conversation id, only an international number is a phone number: Twilio's senders
# are "+15551234567" or "whatsapp:+15551234567"; Telegram and Messenger ids are plain digits.
ID_PHONE = re.compile(r"\+\d{7,15}")


def redact_id(conversation_id: str, enabled: bool = True) -> str:
    """A conversation id with a phone number or e-mail address in it masked."""
    if not enabled or not conversation_id:
        return conversation_id
    return ID_PHONE.sub(PHONE_MASK, EMAIL.sub(EMAIL_MASK, conversation_id))


def redact(value: Any, enabled: bool = True) -> Any:
    """Masks every string in a value (strings, lists and dicts, recursively) when enabled."""
    if not enabled:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, dict):
        return {key: redact(item) for key, item in value.items()}
    return value
