"""Rasa's tracker store, read: its ``events`` table and what a conversation's events mean.

Rasa's SQLTrackerStore keeps one row per event (id, sender_id, type_name,
timestamp, intent_name, action_name, data), ``data`` being the event as JSON
(``Event.as_dict()`` in rasa/shared/core/events.py). What this project puts there:

* user events: ``parse_data`` with ``intent`` (``full_retrieval_intent_name`` for
  FAQ questions), ``intent_ranking``, ``response_selector.faq.response`` (the chosen
  answer and its confidence), and ``red_flag`` from components/red_flags.py, whose
  ``classifier_intent`` and ``classifier_ranking`` are the classifier's own view
  when the red-flag component overrode it;
* bot events: ``metadata.metadata.citations`` (passage ids, components/nlg.py and
  the actions), ``metadata.utter_action``, and in ``data.custom`` the ``escalation``
  payload of the urgent message or the ``checklist`` result;
* slot events: the checklist answers (actions/checklist.py), ``checklist_result``,
  ``escalations``; active_loop events for ``surgery_criteria_form``.

Nothing here writes patient text to the log.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence

import sqlalchemy as sa

logger = logging.getLogger(__name__)

metadata = sa.MetaData()
# Rasa's table, as SQLTrackerStore.SQLEvent defines it; the app never creates it.
events_table = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255), nullable=False),
    sa.Column("type_name", sa.String(255), nullable=False),
    sa.Column("timestamp", sa.Float),
    sa.Column("intent_name", sa.String(255)),
    sa.Column("action_name", sa.String(255)),
    sa.Column("data", sa.Text),
)

CHECKLIST_FORM = "surgery_criteria_form"
CHECKLIST_SLOTS = ("red_flag_screen", "conservative_failed", "severe_pain")
CHECKLIST_QUESTIONS = {
    "red_flag_screen": "Nerve warning signs (bladder, bowel, saddle numbness, foot drop, both legs)",
    "conservative_failed": "3 months of conservative treatment without effect",
    "severe_pain": "Severe pain that treatment doesn't relieve, affecting daily life and sleep",
}
OUTCOMES = ("urgent_care", "discuss_surgery", "conservative_care", "incomplete")
OUTCOME_LABELS = {
    "urgent_care": "urgent care (nerve signs)",
    "discuss_surgery": "discuss surgery",
    "conservative_care": "conservative care",
    "incomplete": "not finished",
}
FALLBACK_INTENT = "nlu_fallback"
FALLBACK_ACTIONS = {"action_search_article", "action_default_fallback"}
UNANSWERED_INTENTS = {FALLBACK_INTENT, "out_of_scope"}
RETRIEVAL_INTENTS = {"faq"}
HIDDEN_ACTIONS = {"action_listen", "action_session_start"}
GREETINGS = {"greet", "goodbye", "thank"}


def create_tracker_engine(url: Any) -> sa.engine.Engine:
    """An engine on the tracker store, with Rasa's own engine options (PostgreSQL schema, pool)."""
    from review.config import rasa_quietly
    with rasa_quietly():
        from rasa.core.tracker_store import create_engine_kwargs

    kwargs = dict(create_engine_kwargs(url))
    if str(url).startswith("sqlite"):
        kwargs.setdefault("connect_args", {})["timeout"] = 30
    # A database error never carries bound values (patient text, sender ids) into the log.
    kwargs["hide_parameters"] = True
    # A pooled connection is checked before use, so the first page after a database restart works.
    kwargs["pool_pre_ping"] = True
    return sa.create_engine(url, future=True, **kwargs)


def iso(ts: Optional[float]) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def day(ts: Optional[float]) -> Optional[str]:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d")


def _float(value: Any) -> Optional[float]:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass
class Message:
    """One line of a transcript: a user or bot message, an action, or a marker."""

    kind: str  # user | bot | action | slot | session | form
    timestamp: Optional[float]
    text: str = ""
    # user turns
    intent: Optional[str] = None
    confidence: Optional[float] = None
    topic: Optional[str] = None
    answer_confidence: Optional[float] = None
    ranking: List[Dict[str, Any]] = field(default_factory=list)
    override: Optional[Dict[str, Any]] = None  # the classifier's own intent and ranking
    signs: List[str] = field(default_factory=list)
    nlu_confidence: Optional[float] = None  # what the low-confidence filter looks at
    fallback: bool = False
    unanswered: bool = False
    channel: Optional[str] = None
    # bot turns
    citations: List[str] = field(default_factory=list)
    utter_action: Optional[str] = None
    buttons: List[str] = field(default_factory=list)
    escalation: Optional[Dict[str, Any]] = None
    checklist: Optional[Dict[str, Any]] = None
    # actions, slots, forms
    name: Optional[str] = None
    value: Any = None

    @property
    def time(self) -> str:
        return iso(self.timestamp)

    def export(self) -> Dict[str, Any]:
        """The fields an export carries for this line."""
        out: Dict[str, Any] = {"kind": self.kind, "time": self.time}
        if self.kind == "user":
            out.update(text=self.text, intent=self.intent, confidence=self.confidence,
                       topic=self.topic, answer_confidence=self.answer_confidence,
                       fallback=self.fallback, unanswered=self.unanswered,
                       red_flag_signs=self.signs, channel=self.channel,
                       classifier_override=self.override)
        elif self.kind == "bot":
            out.update(text=self.text, utter_action=self.utter_action, citations=self.citations,
                       buttons=self.buttons, escalation=self.escalation, checklist=self.checklist)
        else:
            out.update(name=self.name, value=self.value)
        return out


@dataclass
class Conversation:
    """One sender's events, understood."""

    conversation_id: str
    messages: List[Message]
    first_ts: Optional[float]
    last_ts: Optional[float]
    last_event_id: int
    event_count: int
    escalations: List[Dict[str, Any]]
    checklists: List[Dict[str, Any]]
    checklist_outcome: Optional[str]
    channel: Optional[str]

    @property
    def user_messages(self) -> List[Message]:
        return [m for m in self.messages if m.kind == "user"]

    @property
    def escalated(self) -> bool:
        return bool(self.escalations)

    @property
    def signs(self) -> List[str]:
        seen: List[str] = []
        for escalation in self.escalations:
            for sign in escalation.get("signs") or []:
                if sign not in seen:
                    seen.append(str(sign))
        return seen

    @property
    def escalated_at(self) -> Optional[float]:
        return self.escalations[0]["timestamp"] if self.escalations else None

    def summary(self) -> Dict[str, Any]:
        """The row the conversation list filters on (review.store.conversations)."""
        users = self.user_messages
        confidences = [m.nlu_confidence for m in users if m.nlu_confidence is not None]
        min_conf = min(confidences) if confidences else None
        topics: Dict[str, int] = {}
        for message in users:
            if message.topic:
                topics[message.topic] = topics.get(message.topic, 0) + 1
        typed = [m for m in users if m.text and not m.text.startswith("/")]
        first_text = next((m.text for m in typed if m.intent not in GREETINGS), typed[0].text if typed else "")
        fallback = sum(1 for m in users if m.fallback)
        unanswered = sum(1 for m in users if m.unanswered)
        search = " ".join([self.conversation_id] + [m.text for m in users if m.text])
        return {
            "conversation_id": self.conversation_id,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "first_day": day(self.first_ts),
            "last_event_id": self.last_event_id,
            "channel": self.channel,
            "user_turns": len(users),
            "bot_turns": sum(1 for m in self.messages if m.kind == "bot"),
            "escalated": self.escalated,
            "escalation_signs": ",".join(self.signs) or None,
            "escalated_ts": self.escalated_at,
            "escalated_day": day(self.escalated_at),
            "checklist_outcome": self.checklist_outcome,
            "checklist_runs": len(self.checklists),
            "fallback_turns": fallback,
            "has_fallback": fallback > 0,
            "unanswered_turns": unanswered,
            "has_unanswered": unanswered > 0,
            "min_confidence": min_conf,
            "first_text": first_text[:300],
            "search_text": search.lower(),
            "topics": topics,
        }


def _ranking(items: Any, limit: int = 5) -> List[Dict[str, Any]]:
    ranking = []
    for item in items or []:
        if isinstance(item, dict) and item.get("name"):
            ranking.append({"name": str(item["name"]), "confidence": _float(item.get("confidence"))})
    return ranking[:limit]


def _user_message(data: Dict[str, Any], ts: Optional[float]) -> Message:
    parse = data.get("parse_data") or {}
    intent = parse.get("intent") or {}
    name = intent.get("name")
    confidence = _float(intent.get("confidence"))
    selection = ((parse.get("response_selector") or {}).get(name or "") or {}).get("response") or {}
    topic = intent.get("full_retrieval_intent_name") or selection.get("intent_response_key") or name
    if name in RETRIEVAL_INTENTS and selection.get("intent_response_key"):
        topic = selection["intent_response_key"]
    answer_conf = _float(selection.get("confidence")) if name in RETRIEVAL_INTENTS else None

    red_flag = parse.get("red_flag") if isinstance(parse.get("red_flag"), dict) else {}
    classifier = red_flag.get("classifier_intent") if isinstance(red_flag.get("classifier_intent"), dict) else None
    override = None
    if classifier and classifier.get("name") and classifier.get("name") != name:
        override = {
            "intent": str(classifier.get("name")),
            "confidence": _float(classifier.get("confidence")),
            "ranking": _ranking(red_flag.get("classifier_ranking"), limit=5),
        }
    signs = [str(s) for s in red_flag.get("signs") or []]

    # How sure the NLU was: the classifier's own intent (before the red-flag override,
    # and past the fallback it may have become) and, for FAQ questions, the answer.
    text = data.get("text") or ""
    nlu_conf: Optional[float]
    if text.startswith("/"):
        nlu_conf = None  # a button payload: nothing was classified
    else:
        basis = classifier or intent
        nlu_conf = _float(basis.get("confidence"))
        basis_name = basis.get("name")
        if basis_name == FALLBACK_INTENT:
            ranked = [r for r in _ranking(parse.get("intent_ranking"), 20) if r["name"] != FALLBACK_INTENT]
            nlu_conf = ranked[0]["confidence"] if ranked else nlu_conf
            basis_name = ranked[0]["name"] if ranked else basis_name
        if basis_name in RETRIEVAL_INTENTS or name in RETRIEVAL_INTENTS:
            chosen = ((parse.get("response_selector") or {}).get("faq") or {}).get("response") or {}
            answer = _float(chosen.get("confidence"))
            if answer is not None:
                nlu_conf = answer if nlu_conf is None else min(nlu_conf, answer)
    return Message(
        kind="user", timestamp=ts, text=text, intent=name, confidence=confidence, topic=topic,
        answer_confidence=answer_conf, ranking=_ranking(parse.get("intent_ranking")),
        override=override, signs=signs, nlu_confidence=nlu_conf,
        fallback=name == FALLBACK_INTENT, channel=data.get("input_channel"),
    )


def _bot_message(data: Dict[str, Any], ts: Optional[float]) -> Message:
    meta = data.get("metadata") or {}
    inner = meta.get("metadata") if isinstance(meta.get("metadata"), dict) else {}
    payload = data.get("data") or {}
    custom = payload.get("custom") if isinstance(payload.get("custom"), dict) else {}
    escalation = custom.get("escalation") if isinstance(custom.get("escalation"), dict) else None
    checklist = custom.get("checklist") if isinstance(custom.get("checklist"), dict) else None
    buttons = [str(b.get("title") or b.get("payload") or "") for b in payload.get("buttons") or []
               if isinstance(b, dict)]
    return Message(
        kind="bot", timestamp=ts, text=data.get("text") or "",
        citations=[str(c) for c in inner.get("citations") or []],
        utter_action=meta.get("utter_action"), buttons=buttons,
        escalation=escalation, checklist=checklist,
    )


def understand(conversation_id: str, rows: Sequence[Any]) -> Conversation:
    """A conversation from its event rows (id, type_name, timestamp, data), in id order."""
    messages: List[Message] = []
    escalations: List[Dict[str, Any]] = []
    checklists: List[Dict[str, Any]] = []
    answers: Dict[str, Any] = {}
    form_open = False
    form_started_after_result = False
    first_ts = last_ts = None
    last_id = 0
    channel = None
    current_user: Optional[Message] = None
    replies_cite = False

    def close_turn() -> None:
        if current_user is not None:
            # A fallback or out-of-scope question whose replies cited no passage: unanswered.
            current_user.unanswered = (
                (current_user.fallback or current_user.intent in UNANSWERED_INTENTS)
                and not replies_cite
            )

    for row in rows:
        try:
            data = json.loads(row.data) if row.data else {}
        except (TypeError, ValueError):
            data = {}
        if not isinstance(data, dict):
            data = {}
        ts = _float(row.timestamp if row.timestamp is not None else data.get("timestamp"))
        last_id = max(last_id, int(row.id))
        if ts is not None:
            first_ts = ts if first_ts is None else min(first_ts, ts)
            last_ts = ts if last_ts is None else max(last_ts, ts)
        kind = row.type_name
        if kind == "user":
            close_turn()
            message = _user_message(data, ts)
            channel = channel or message.channel
            messages.append(message)
            current_user, replies_cite = message, False
        elif kind == "bot":
            message = _bot_message(data, ts)
            messages.append(message)
            if message.citations:
                replies_cite = True
            if message.escalation:
                escalations.append({
                    "timestamp": ts,
                    "level": message.escalation.get("level"),
                    "signs": [str(s) for s in message.escalation.get("signs") or []] or ["unspecified"],
                    "labels": [str(s) for s in message.escalation.get("labels") or []],
                })
        elif kind == "action":
            name = data.get("name") or row.action_name
            if name in FALLBACK_ACTIONS and current_user is not None:
                current_user.fallback = True
            if name and name not in HIDDEN_ACTIONS:
                messages.append(Message(kind="action", timestamp=ts, name=name))
        elif kind == "session_started":
            messages.append(Message(kind="session", timestamp=ts, name="session started"))
        elif kind == "active_loop":
            name = data.get("name")
            if name == CHECKLIST_FORM:
                form_open = True
                form_started_after_result = True
                answers = {}
                messages.append(Message(kind="form", timestamp=ts, name="checklist started"))
            elif name is None and form_open:
                form_open = False
                messages.append(Message(kind="form", timestamp=ts, name="checklist closed"))
        elif kind == "slot":
            name = data.get("name")
            value = data.get("value")
            if name in CHECKLIST_SLOTS and value is not None:
                answers[name] = value
                messages.append(Message(kind="slot", timestamp=ts, name=name, value=value))
            elif name == "checklist_result" and isinstance(value, dict):
                checklists.append({
                    "timestamp": ts,
                    "outcome": value.get("outcome"),
                    "answers": value.get("answers") or dict(answers),
                    "criteria_met": value.get("criteria_met") or [],
                    "date": value.get("date"),
                })
                form_started_after_result = False
                messages.append(Message(kind="slot", timestamp=ts, name=name, value=value.get("outcome")))
    close_turn()

    outcome = None
    if checklists:
        outcome = checklists[-1].get("outcome")
        if outcome not in OUTCOMES:
            outcome = None
    if form_started_after_result:
        # Started and not finished (or started again after a result): record the answers so far.
        checklists.append({"timestamp": None, "outcome": "incomplete", "answers": dict(answers),
                           "criteria_met": [], "date": None})
        outcome = "incomplete"
    return Conversation(
        conversation_id=conversation_id, messages=messages, first_ts=first_ts, last_ts=last_ts,
        last_event_id=last_id, event_count=len(rows), escalations=escalations,
        checklists=checklists, checklist_outcome=outcome, channel=channel,
    )


class TrackerReader:
    """Reads the tracker store's events table."""

    def __init__(self, url: Any) -> None:
        self.url = url
        self.engine = create_tracker_engine(url)

    def fingerprint(self) -> str:
        """Which store this is, without its password."""
        url = self.url
        if isinstance(url, str):
            url = sa.engine.make_url(url)
        return url.render_as_string(hide_password=True)

    def available(self) -> bool:
        """Whether Rasa has created its events table yet (it does on its first start)."""
        if not getattr(self, "_available", False):
            self._available = sa.inspect(self.engine).has_table("events")
        return self._available

    def max_event_id(self) -> int:
        if not self.available():
            return 0
        with self.engine.connect() as db:
            return int(db.execute(sa.select(sa.func.max(events_table.c.id))).scalar() or 0)

    def count_between(self, after_id: int, upto_id: int) -> int:
        """How many events have an id in (after_id, upto_id]."""
        if upto_id <= after_id or not self.available():
            return 0
        query = (sa.select(sa.func.count()).select_from(events_table)
                 .where(events_table.c.id > after_id, events_table.c.id <= upto_id))
        with self.engine.connect() as db:
            return int(db.execute(query).scalar() or 0)

    def senders_since(self, after_id: int, upto_id: int) -> List[str]:
        query = (sa.select(events_table.c.sender_id).distinct()
                 .where(events_table.c.id > after_id, events_table.c.id <= upto_id))
        with self.engine.connect() as db:
            return [row[0] for row in db.execute(query)]

    def events_of(self, sender_ids: Sequence[str], upto_id: Optional[int] = None) -> Dict[str, List[Any]]:
        """The events of these senders, in id order, grouped by sender."""
        cols = [events_table.c.id, events_table.c.sender_id, events_table.c.type_name,
                events_table.c.timestamp, events_table.c.action_name, events_table.c.data]
        query = sa.select(*cols).where(events_table.c.sender_id.in_(list(sender_ids)))
        if upto_id is not None:
            query = query.where(events_table.c.id <= upto_id)
        grouped: Dict[str, List[Any]] = {sender: [] for sender in sender_ids}
        with self.engine.connect() as db:
            for row in db.execute(query.order_by(events_table.c.sender_id, events_table.c.id)):
                grouped.setdefault(row.sender_id, []).append(row)
        return grouped

    def conversation(self, sender_id: str) -> Optional[Conversation]:
        rows = self.events_of([sender_id]).get(sender_id) or []
        return understand(sender_id, rows) if rows else None

    def conversations(self, sender_ids: Sequence[str]) -> Iterator[Conversation]:
        for start in range(0, len(sender_ids), 200):
            batch = list(sender_ids[start:start + 200])
            grouped = self.events_of(batch)
            for sender in batch:
                rows = grouped.get(sender) or []
                if rows:
                    yield understand(sender, rows)

    def senders_older_than(self, cutoff: float) -> List[str]:
        """Conversations whose latest event is before ``cutoff`` (epoch seconds); none
        before Rasa's first start has created the events table."""
        if not self.available():
            return []
        latest = sa.func.max(events_table.c.timestamp)
        query = (sa.select(events_table.c.sender_id).group_by(events_table.c.sender_id)
                 .having(latest < cutoff))
        with self.engine.connect() as db:
            return [row[0] for row in db.execute(query)]

    def delete_senders(self, sender_ids: Iterable[str]) -> int:
        """Deletes every event of these senders; returns how many rows went."""
        ids = list(sender_ids)
        deleted = 0
        if not ids or not self.available():
            return 0
        with self.engine.begin() as db:
            for start in range(0, len(ids), 500):
                result = db.execute(events_table.delete().where(
                    events_table.c.sender_id.in_(ids[start:start + 500])))
                deleted += result.rowcount or 0
        return deleted

    def existing_senders(self, sender_ids: Iterable[str]) -> set:
        """Which of these senders still have events."""
        ids = list(sender_ids)
        found: set = set()
        if not ids or not self.available():
            return found
        with self.engine.connect() as db:
            for start in range(0, len(ids), 500):
                found.update(row[0] for row in db.execute(
                    sa.select(events_table.c.sender_id).distinct()
                    .where(events_table.c.sender_id.in_(ids[start:start + 500]))))
        return found


_OUTBOX_ENGINES: Dict[str, Any] = {}


def _notifications_in_database(url: str, conversation_id: str) -> Optional[List[Any]]:
    """The outbox rows of a conversation from a database URL (PostgreSQL), or None when unreachable."""
    engine = _OUTBOX_ENGINES.get(url)
    if engine is None:
        engine = _OUTBOX_ENGINES[url] = sa.create_engine(url, pool_pre_ping=True, hide_parameters=True)
    try:
        with engine.connect() as db:
            return list(db.execute(sa.text(
                "SELECT sign, created_at, attempts, delivered_at, last_error, next_attempt_at "
                "FROM clinic_notifications WHERE conversation_id = :c ORDER BY id"),
                {"c": conversation_id}).mappings())
    except sa.exc.SQLAlchemyError:
        return None


def notifications(outbox_path: Any, conversation_id: str) -> Optional[List[Dict[str, Any]]]:
    """The clinic notifications queued for a conversation (common/outbox.py), read-only.

    One per sign: queued or delivered, when, how many attempts, the last error.
    None when there is no outbox file (nothing was ever queued on this machine).
    """
    import sqlite3
    from pathlib import Path

    if isinstance(outbox_path, str) and "://" in outbox_path:
        rows = _notifications_in_database(outbox_path, conversation_id)
        if rows is None:
            return None
    else:
        path = Path(outbox_path)
        if not path.exists():
            return None
        try:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
        except sqlite3.Error:
            return None
        try:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT sign, created_at, attempts, delivered_at, last_error, next_attempt_at "
                "FROM clinic_notifications WHERE conversation_id = ? ORDER BY id",
                (conversation_id,),
            ).fetchall()
        except sqlite3.Error:
            return None
        finally:
            db.close()
    out = []
    for row in rows:
        out.append({
            "sign": row["sign"],
            "status": "delivered" if row["delivered_at"] else ("retrying" if row["attempts"] else "queued"),
            "queued_at": iso(row["created_at"]),
            "delivered_at": iso(row["delivered_at"]),
            "queued_ts": row["created_at"],
            "delivered_ts": row["delivered_at"],
            "attempts": row["attempts"],
            "last_error": row["last_error"],
            "next_attempt_at": iso(row["next_attempt_at"]) if not row["delivered_at"] else "",
        })
    return out
