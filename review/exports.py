"""CSV and JSON exports of the conversation list and of transcripts, streamed.

Masked like the views when redaction is on. CSV cells that a spreadsheet would
take for a formula (starting with = + - @, a tab or a carriage return) get a leading
apostrophe.
"""
from __future__ import annotations

import csv
import io
import json
from typing import Any, Dict, Iterable, Iterator, List, Optional

from review.redaction import redact, redact_id
from review.tracker import Conversation, OUTCOME_LABELS, iso

LIST_COLUMNS = ["review_id", "conversation_id", "channel", "first_message_at", "last_message_at", "user_turns",
                "escalated", "escalation_signs", "handled_by", "checklist_outcome", "fallback_turns",
                "unanswered_turns", "min_confidence", "tags", "first_message"]
TRANSCRIPT_COLUMNS = ["conversation_id", "time", "speaker", "text", "intent", "confidence", "topic",
                      "answer_confidence", "classifier_intent", "classifier_confidence",
                      "red_flag_signs", "fallback", "unanswered", "citations", "escalation_signs",
                      "checklist_outcome"]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _csv_line(values: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([_cell(v) for v in values])
    return buffer.getvalue()


def list_record(row: Dict[str, Any], tags: List[str], redacting: bool) -> Dict[str, Any]:
    return {
        "review_id": row["id"],
        "conversation_id": redact_id(row["conversation_id"], redacting),
        "channel": row.get("channel"),
        "first_message_at": iso(row.get("first_ts")),
        "last_message_at": iso(row.get("last_ts")),
        "user_turns": row.get("user_turns"),
        "escalated": bool(row.get("escalated")),
        "escalation_signs": (row.get("escalation_signs") or "").split(",") if row.get("escalation_signs") else [],
        "handled_by": row.get("handled_by"),
        "checklist_outcome": row.get("checklist_outcome"),
        "fallback_turns": row.get("fallback_turns"),
        "unanswered_turns": row.get("unanswered_turns"),
        "min_confidence": row.get("min_confidence"),
        "tags": tags,
        "first_message": redact(row.get("first_text") or "", redacting),
    }


def list_csv(records: Iterable[Dict[str, Any]]) -> Iterator[str]:
    yield _csv_line(LIST_COLUMNS)
    for record in records:
        yield _csv_line([";".join(record[c]) if isinstance(record[c], list) else record[c]
                         for c in LIST_COLUMNS])


def json_array(records: Iterable[Any], meta: Dict[str, Any]) -> Iterator[str]:
    """A JSON object {meta..., "items": [...]}, streamed one item at a time."""
    head = json.dumps(meta, ensure_ascii=False)
    yield head[:-1] + (", " if meta else "") + '"items": ['
    first = True
    for record in records:
        yield ("" if first else ",\n") + json.dumps(record, ensure_ascii=False, default=str)
        first = False
    yield "]}\n"


def transcript_record(conversation: Conversation, extra: Dict[str, Any], redacting: bool) -> Dict[str, Any]:
    """A conversation as a JSON-ready dict: its events, escalations, checklists, tags, notes."""
    record = {
        "conversation_id": redact_id(conversation.conversation_id, redacting),
        "channel": conversation.channel,
        "first_message_at": iso(conversation.first_ts),
        "last_message_at": iso(conversation.last_ts),
        "escalations": [{**e, "time": iso(e.get("timestamp"))} for e in conversation.escalations],
        "checklists": [{**c, "time": iso(c.get("timestamp")),
                        "outcome_label": OUTCOME_LABELS.get(c.get("outcome") or "", c.get("outcome"))}
                       for c in conversation.checklists],
        "messages": [m.export() for m in conversation.messages],
        **extra,
    }
    record = {**redact({k: v for k, v in record.items() if k != "conversation_id"}, redacting),
              "conversation_id": record["conversation_id"]}
    return record


def transcript_rows(conversation: Conversation, redacting: bool) -> Iterator[List[Any]]:
    cid = redact_id(conversation.conversation_id, redacting)
    for m in conversation.messages:
        if m.kind == "user":
            override = m.override or {}
            yield [cid, m.time, "patient", redact(m.text, redacting), m.intent, m.confidence, m.topic,
                   m.answer_confidence, override.get("intent"), override.get("confidence"),
                   ";".join(m.signs), m.fallback, m.unanswered, "", "", ""]
        elif m.kind == "bot":
            signs = ";".join(str(s) for s in (m.escalation or {}).get("signs") or [])
            checklist = (m.checklist or {}).get("outcome") if m.checklist else None
            yield [cid, m.time, "assistant", redact(m.text, redacting), "", None, m.utter_action, None,
                   "", None, "", "", "", ";".join(m.citations), signs, checklist or ""]


def transcripts_csv(conversations: Iterable[Conversation], redacting: bool) -> Iterator[str]:
    yield _csv_line(TRANSCRIPT_COLUMNS)
    for conversation in conversations:
        for row in transcript_rows(conversation, redacting):
            yield _csv_line(row)


def filename(kind: str, extension: str, conversation: Optional[int] = None) -> str:
    from datetime import datetime, timezone
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    middle = f"-{conversation}" if conversation is not None else ""
    return f"{kind}{middle}-{stamp}.{extension}"
