"""A deterministic demo tracker store for the review app, written through Rasa's own API.

    python -m review.seed_demo --conversations 3000 --tracker /tmp/demo/conversations.db \\
        --outbox /tmp/demo/outbox.db [--seed 7] [--days 60] [--end 2025-06-30]

Each conversation is a DialogueStateTracker saved by Rasa's SQLTrackerStore, with
events shaped as this project's Rasa server writes them: FAQ answers from
data/nlu/responses/faq.yml with their citations, fallbacks (article search or "I
don't know"), low-confidence answers, red-flag escalations with the urgent
message's ``escalation`` payload (some where the red-flag component overrode the
classifier) and their clinic notifications in the outbox, and checklist runs with
their outcomes (actions/checklist.py's own ``evaluate``). A few patient messages
hold a phone number, an e-mail address, or HTML, to show masking and escaping.
The same seed, day count and end date give the same data.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sqlite3
import warnings
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from common.settings import PROJECT_DIR

logger = logging.getLogger(__name__)

MODEL_META = {"model_id": "demo0000000000000000000000000000", "assistant_id": "calcified-disc-educator"}
GREETINGS = ["/greet", "/greet", "hi", "hello", "Hi there", "good morning"]
FALLBACK_QUESTIONS = [
    "can I eat chocolate with this", "what's the weather tomorrow", "my cat is sick what do I do",
    "is the car park open on sundays", "how much does parking cost", "can you book me an appointment",
    "do you know a good physio in town", "what vitamins should I buy", "does acupuncture work",
    "can I fly next week after my scan",
]
RED_FLAGS: List[Tuple[str, List[str]]] = [
    ("I wet myself this morning and didn't even notice", ["bladder_control"]),
    ("since yesterday I can't feel the toilet paper when I wipe", ["saddle_numbness"]),
    ("my left foot keeps slapping the floor, I can't lift it", ["foot_drop"]),
    ("both my legs have gone weak and numb", ["both_legs", "leg_weakness"]),
    ("I can't pee properly and it's numb down below", ["urinary_difficulty", "saddle_numbness"]),
    ("I had an accident with my bowels and didn't feel it coming", ["bowel_control"]),
]
CONTACT_MESSAGES = [
    "please call me back on 555-201-4477 about my scan",
    "my email is jane.doe@example.org, can someone send me the article",
    "you can reach me at +44 7700 900123 in the evening",
]
HOSTILE_MESSAGES = [
    "<script>alert('xss')</script> is my disc calcified?",
    "<img src=x onerror=alert(1)> <b>bold</b> does it hurt?",
]
CHANNELS = [("socketio", 0.6), ("rest", 0.15), ("telegram", 0.15), ("twilio", 0.10)]
OUTCOME_WEIGHTS = [("conservative_care", 0.5), ("discuss_surgery", 0.3), ("urgent_care", 0.1), ("incomplete", 0.1)]


def _weighted(rng: random.Random, pairs: Sequence[Tuple[Any, float]]) -> Any:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs], k=1)[0]


class Content:
    """The texts the demo conversations use, from the project's own data."""

    def __init__(self) -> None:
        responses = yaml.safe_load((PROJECT_DIR / "data/nlu/responses/faq.yml").read_text(encoding="utf-8"))
        self.answers: Dict[str, Tuple[str, List[str]]] = {}
        for key, variants in (responses.get("responses") or {}).items():
            topic = key.split("/", 1)[1]
            first = variants[0]
            self.answers[topic] = (" ".join(str(first.get("text", "")).split()),
                                   list((first.get("metadata") or {}).get("citations") or []))
        self.topics = sorted(self.answers)
        self.questions: Dict[str, List[str]] = {}
        for path in sorted((PROJECT_DIR / "data/nlu/faq").glob("*.yml")):
            try:
                items = yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu") or []
            except Exception:  # another person may be editing training data: use what parses
                continue
            for item in items:
                intent = str(item.get("intent", ""))
                if intent.startswith("faq/"):
                    lines = [l[2:].strip() for l in str(item.get("examples", "")).splitlines() if l.startswith("- ")]
                    self.questions[intent[4:]] = [l for l in lines if l][:12]
        messages = yaml.safe_load((PROJECT_DIR / "actions/messages.yml").read_text(encoding="utf-8"))["messages"]
        self.messages = {k: " ".join(str(v.get("text", "")).split()) for k, v in messages.items()}
        lexicon = yaml.safe_load((PROJECT_DIR / "knowledge/red_flags.yml").read_text(encoding="utf-8"))
        self.sign_labels = {k: str(v["label"]) for k, v in lexicon["signs"].items()}
        from knowledge import load_passages
        self.passages = load_passages()

    def question(self, rng: random.Random, topic: str) -> str:
        options = self.questions.get(topic) or [f"tell me about {topic.replace('_', ' ')}"]
        return rng.choice(options)


class DemoWriter:
    """Builds conversations as Rasa events and saves them with SQLTrackerStore."""

    def __init__(self, tracker_path: Path, outbox_path: Optional[Path] = None, seed: int = 7) -> None:
        import sqlalchemy as sa
        from rasa.core.tracker_store import SQLTrackerStore
        from rasa.shared.core.domain import Domain

        self.rng = random.Random(seed)
        self.content = Content()
        with warnings.catch_warnings():  # Rasa's own deprecation warnings, not ours
            warnings.simplefilter("ignore")
            self.domain = Domain.load(str(PROJECT_DIR / "domain"))
            tracker_path.parent.mkdir(parents=True, exist_ok=True)
            self.store = SQLTrackerStore(domain=self.domain, dialect="sqlite", db=str(tracker_path))
        self.intents = [i for i in self.domain.intents if i not in ("nlu_fallback", "session_start")]

        @sa.event.listens_for(self.store.engine, "connect")
        def _fast(connection, _record):  # noqa: ANN001 - demo data: speed over durability
            connection.execute("PRAGMA synchronous=OFF")

        self.outbox_path = outbox_path
        self.notifications: List[Tuple[str, List[str], List[str], float, str]] = []

    # -- event helpers -------------------------------------------------------

    def _id(self) -> str:
        return "%032x" % self.rng.getrandbits(128)

    def _ranking(self, top: str, confidence: float) -> List[Dict[str, Any]]:
        others = [i for i in self.intents if i != top]
        self.rng.shuffle(others)
        rest, remaining = [], max(1.0 - confidence, 0.0)
        for name in others[:9]:
            share = remaining * self.rng.uniform(0.2, 0.6)
            remaining -= share
            rest.append({"name": name, "confidence": round(share, 6)})
        rest.sort(key=lambda r: -r["confidence"])
        return [{"name": top, "confidence": confidence}] + rest

    def user(self, ts: float, text: str, intent: str, confidence: float, channel: str,
             topic: Optional[str] = None, answer_conf: Optional[float] = None,
             classifier: Optional[Tuple[str, float]] = None, signs: Sequence[str] = (),
             entities: Sequence[Dict[str, Any]] = ()):
        from rasa.shared.core.events import UserUttered

        intent_dict: Dict[str, Any] = {"name": intent, "confidence": confidence}
        if topic and intent == "faq":
            intent_dict["full_retrieval_intent_name"] = f"faq/{topic}"
        ranking = self._ranking(intent, confidence)
        if intent == "nlu_fallback":  # Rasa's FallbackClassifier puts itself above the classifier's ranking
            ranking = [{"name": intent, "confidence": confidence}] + self._ranking("faq", round(self.rng.uniform(0.6, 1.0), 4))
        parse: Dict[str, Any] = {"intent": intent_dict, "entities": list(entities), "text": text,
                                 "message_id": self._id(), "metadata": {}, "intent_ranking": ranking}
        selector_topic = topic or self.rng.choice(self.content.topics)
        parse["response_selector"] = {
            "all_retrieval_intents": ["faq"],
            "faq": {"response": {"responses": None, "confidence": answer_conf if answer_conf is not None
                                 else round(self.rng.uniform(0.1, 0.4), 4),
                                 "intent_response_key": f"faq/{selector_topic}",
                                 "utter_action": f"utter_faq/{selector_topic}"},
                    "ranking": []},
        }
        own = classifier or (intent, confidence)
        parse["red_flag"] = {
            "signs": list(signs), "labels": [self.content.sign_labels.get(s, s) for s in signs],
            "not_reported": [], "classifier_intent": {"name": own[0], "confidence": own[1]},
            "classifier_ranking": ranking if classifier is None else self._ranking(own[0], own[1]),
            "screen": False,
        }
        if text.startswith("/"):
            parse.pop("red_flag")
        return UserUttered(text=text, intent=intent_dict, entities=list(entities), parse_data=parse,
                           timestamp=ts, input_channel=channel, message_id=parse["message_id"],
                           metadata=dict(MODEL_META))

    def bot(self, ts: float, text: str, utter_action: Optional[str] = None,
            citations: Sequence[str] = (), custom: Optional[Dict[str, Any]] = None,
            buttons: Optional[List[Dict[str, str]]] = None, extra_meta: Optional[Dict[str, Any]] = None):
        from rasa.shared.core.events import BotUttered

        metadata: Dict[str, Any] = dict(MODEL_META)
        if utter_action:
            metadata["utter_action"] = utter_action
        inner = dict(extra_meta or {})
        if citations:
            inner["citations"] = list(citations)
        if inner:
            metadata["metadata"] = inner
        data = {"elements": None, "quick_replies": None, "buttons": buttons, "attachment": None,
                "image": None, "custom": custom}
        return BotUttered(text=text, data=data, metadata=metadata, timestamp=ts)

    @staticmethod
    def action(ts: float, name: str, policy: Optional[str] = "RulePolicy", confidence: float = 1.0):
        from rasa.shared.core.events import ActionExecuted
        return ActionExecuted(name, policy=policy, confidence=confidence, timestamp=ts)

    @staticmethod
    def slot(ts: float, name: str, value: Any):
        from rasa.shared.core.events import SlotSet
        return SlotSet(name, value, timestamp=ts)

    # -- turns -----------------------------------------------------------------

    def conversation(self, index: int, start: float) -> Tuple[str, List[Any]]:
        from rasa.shared.core.events import ActiveLoop, SessionStarted

        rng = self.rng
        channel = _weighted(rng, CHANNELS)
        if channel == "telegram":
            sender = str(rng.randint(100_000_000, 999_999_999))
        elif channel == "twilio":
            sender = f"whatsapp:+1555{rng.randint(1_000_000, 9_999_999)}"
        else:
            sender = self._id()
        t = [start]

        def tick(lo: float = 2, hi: float = 40) -> float:
            t[0] += rng.uniform(lo, hi)
            return t[0]

        events: List[Any] = [self.action(t[0], "action_session_start", policy=None),
                             SessionStarted(timestamp=t[0]), self.action(tick(0.01, 0.05), "action_listen", policy=None)]

        def faq_turn(low: bool = False, text: Optional[str] = None) -> None:
            topic = rng.choice(self.content.topics)
            answer, cites = self.content.answers[topic]
            conf = round(rng.uniform(0.5, 0.6), 4) if low else round(rng.uniform(0.75, 0.99), 4)
            events.append(self.user(tick(5, 60), text or self.content.question(rng, topic), "faq",
                                    round(rng.uniform(0.6, 0.7) if low else rng.uniform(0.9, 1.0), 4),
                                    channel, topic=topic, answer_conf=conf))
            events.append(self.action(tick(0.1, 0.5), "utter_faq"))
            events.append(self.bot(tick(0.01, 0.05), answer, f"utter_faq/{topic}", cites))
            events.append(self.action(tick(0.01, 0.05), "action_listen", policy=None))

        def fallback_turn(text: Optional[str] = None) -> None:
            text = text or rng.choice(FALLBACK_QUESTIONS)
            events.append(self.user(tick(5, 60), text, "nlu_fallback", 0.5, channel,
                                    answer_conf=round(rng.uniform(0.1, 0.45), 4)))
            events.append(self.action(tick(0.1, 0.5), "action_search_article"))
            if rng.random() < 0.4:
                passage = rng.choice(list(self.content.passages.values()))
                events.append(self.bot(tick(0.1, 0.5),
                                       "I'm not sure I understood, but this part of the article may help:\n"
                                       f"“{passage.text}”\n(From the article, passage {passage.id}: {passage.title}.)",
                                       None, [passage.id], extra_meta={"search": "article"}))
            else:
                events.append(self.bot(tick(0.1, 0.5), self.content.messages["no_answer"]))
            events.append(self.action(tick(0.01, 0.05), "action_listen", policy=None))

        def escalate(signs: List[str], labels: List[str]) -> None:
            from components.nlg import join_words
            text = self.domain.responses["utter_red_flag_emergency"][0]["text"].replace(
                "{red_flag_labels}", join_words(labels))
            events.append(self.action(tick(0.1, 0.3), "utter_red_flag_emergency"))
            events.append(self.bot(tick(0.01, 0.05), " ".join(text.split()), "utter_red_flag_emergency", ["p18"],
                                   custom={"escalation": {"level": "emergency", "signs": signs, "labels": labels}},
                                   extra_meta={"safety_net": True}))
            ts = t[0]
            events.append(self.action(tick(0.1, 0.3), "action_escalate_red_flag"))
            events.append(self.bot(tick(0.01, 0.05), "I have also let the clinic know. Please don't wait "
                                   "for them to contact you: get emergency care now."))
            events.append(self.slot(tick(0.01, 0.02), "escalations", [{
                "level": "emergency", "signs": signs, "notified": signs,
                "time": datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}]))
            events.append(self.action(tick(0.01, 0.05), "action_listen", policy=None))
            self.notifications.append((sender, signs, labels, ts, _weighted(
                rng, [("delivered", 0.85), ("retrying", 0.1), ("queued", 0.05)])))

        def red_flag_turn() -> None:
            text, signs = rng.choice(RED_FLAGS)
            labels = [self.content.sign_labels[s] for s in signs]
            override = rng.random() < 0.4
            classifier = (("faq", round(rng.uniform(0.55, 0.9), 4)) if override
                          else ("report_red_flag", round(rng.uniform(0.9, 0.999), 4)))
            entities = []
            for sign, label in zip(signs, labels):
                entities += [{"entity": "red_flag", "value": sign, "confidence_entity": 1.0, "extractor": "RedFlagDetector"},
                             {"entity": "red_flag_label", "value": label, "confidence_entity": 1.0, "extractor": "RedFlagDetector"}]
            events.append(self.user(tick(5, 60), text, "report_red_flag", 1.0, channel,
                                    classifier=classifier, signs=signs, entities=entities))
            events.append(self.slot(tick(0.01, 0.02), "red_flag_signs", signs))
            events.append(self.slot(tick(0.01, 0.02), "red_flag_labels", labels))
            escalate(signs, labels)

        def checklist_turn() -> None:
            from actions.checklist import QUESTIONS, SCREEN_LABEL, SCREEN_SIGN, evaluate, result_text
            outcome = _weighted(rng, OUTCOME_WEIGHTS)
            events.append(self.user(tick(5, 60), rng.choice(["do I need surgery?", "/start_surgery_checklist",
                                                             "should I have an operation"]),
                                    "start_surgery_checklist", round(rng.uniform(0.85, 1.0), 4), channel))
            events.append(self.action(tick(0.1, 0.3), "surgery_criteria_form"))
            events.append(ActiveLoop("surgery_criteria_form", timestamp=tick(0.01, 0.02)))
            answers: Dict[str, str] = {}
            plan = {"urgent_care": [("red_flag_screen", "yes")],
                    "discuss_surgery": [("red_flag_screen", "no"), ("conservative_failed", "yes"),
                                        ("severe_pain", rng.choice(["yes", "no"]))],
                    "conservative_care": [("red_flag_screen", "no"), ("conservative_failed", "no"),
                                          ("severe_pain", "no")],
                    "incomplete": [("red_flag_screen", "no")]}[outcome]
            for slot, answer in plan:
                events.append(self.slot(tick(0.01, 0.02), "requested_slot", slot))
                events.append(self.action(tick(0.01, 0.1), f"action_ask_{slot}"))
                events.append(self.bot(tick(0.01, 0.05), self.content.messages[f"ask_{slot}"], None, ["p18"]))
                events.append(self.action(tick(0.01, 0.05), "action_listen", policy=None))
                intent = "affirm" if answer == "yes" else "deny"
                events.append(self.user(tick(3, 30), rng.choice([f"/{intent}", answer, "yes" if answer == "yes" else "nope"]),
                                        intent, round(rng.uniform(0.9, 1.0), 4), channel))
                events.append(self.action(tick(0.1, 0.3), "surgery_criteria_form"))
                events.append(self.slot(tick(0.01, 0.02), slot, answer))
                answers[slot] = answer
            if outcome == "incomplete":
                events.append(self.slot(tick(0.01, 0.02), "requested_slot", "conservative_failed"))
                events.append(self.action(tick(0.01, 0.1), "action_ask_conservative_failed"))
                events.append(self.bot(tick(0.01, 0.05), self.content.messages["ask_conservative_failed"], None, ["p18"]))
                events.append(self.action(tick(0.01, 0.05), "action_listen", policy=None))
                return
            events.append(self.slot(tick(0.01, 0.02), "requested_slot", None))
            events.append(ActiveLoop(None, timestamp=tick(0.01, 0.02)))
            events.append(self.action(tick(0.05, 0.2), "action_evaluate_surgery_criteria"))
            result = evaluate({s: answers.get(s) for s in QUESTIONS}, datetime.fromtimestamp(t[0], tz=timezone.utc).date())
            events.append(self.slot(tick(0.01, 0.02), "checklist_result", result))
            for slot in QUESTIONS:
                events.append(self.slot(tick(0.001, 0.002), slot, None))
            if outcome == "urgent_care":
                events.append(self.slot(tick(0.01, 0.02), "red_flag_signs", [SCREEN_SIGN]))
                events.append(self.slot(tick(0.01, 0.02), "red_flag_labels", [SCREEN_LABEL]))
                escalate([SCREEN_SIGN], [SCREEN_LABEL])
                return
            events.append(self.bot(tick(0.01, 0.05), result_text(result), None,
                                   ["p18", "p14", "p16"] if not result["criteria_met"] else ["p18"],
                                   custom={"checklist": result}))
            events.append(self.action(tick(0.01, 0.05), "action_listen", policy=None))

        # The conversation's plan.
        if rng.random() < 0.7:
            events.append(self.user(tick(1, 5), rng.choice(GREETINGS), "greet", 1.0, channel))
            events.append(self.action(tick(0.1, 0.3), "utter_greet"))
            events.append(self.bot(tick(0.01, 0.05), " ".join(self.domain.responses["utter_greet"][0]["text"].split()),
                                   "utter_greet"))
            events.append(self.action(tick(0.01, 0.05), "action_listen", policy=None))
        if index in (1, 2):  # markup in patient messages, to show it's shown as text
            fallback_turn(HOSTILE_MESSAGES[index - 1])
        turns = rng.choice([1, 1, 2, 2, 2, 3, 3, 4, 5])
        for _ in range(turns):
            roll = rng.random()
            if roll < 0.12:
                faq_turn(low=True)
            elif roll < 0.24:
                fallback_turn()
            else:
                faq_turn()
        if rng.random() < 0.03 or index == 3:
            fallback_turn(rng.choice(CONTACT_MESSAGES))
        if rng.random() < 0.04 or index in (0, 4):
            red_flag_turn()
        if rng.random() < 0.10 or index in (0, 5):
            checklist_turn()
        return sender, events

    # -- writing -------------------------------------------------------------

    def save(self, sender: str, events: List[Any]) -> None:
        """Appends events to a conversation, through Rasa's DialogueStateTracker and SQLTrackerStore."""
        from rasa.shared.core.trackers import DialogueStateTracker

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            existing = asyncio.run(self.store.retrieve_full_tracker(sender))
            tracker = DialogueStateTracker.from_events(sender, [], self.domain.slots)
            if existing is not None:
                for event in existing.events:
                    tracker.update(event)
            for event in events:
                tracker.update(event)
            asyncio.run(self.store.save(tracker))

    def write(self, count: int, end: date, days: int) -> List[str]:
        end_ts = datetime(end.year, end.month, end.day, 23, 0, tzinfo=timezone.utc).timestamp()
        starts = []
        for _ in range(count):
            day_back = min(int(self.rng.expovariate(1 / (days / 2.5))), days - 1)
            day_start = end_ts - 23 * 3600 - day_back * 86400
            starts.append(day_start + self.rng.uniform(7 * 3600, 22 * 3600))
        starts.sort()
        senders = []
        for position, start in enumerate(starts):
            index = count - 1 - position  # 0 is the newest: the showcase conversations come first
            sender, events = self.conversation(index, start)
            self.save(sender, events)
            senders.append(sender)
        self._write_outbox()
        return senders

    def _write_outbox(self) -> None:
        if not self.outbox_path:
            return
        from common.outbox import Outbox, OutboxSettings

        box = Outbox(OutboxSettings(db_path=self.outbox_path, webhook_url=None,
                                    log_path=self.outbox_path.parent / "notifications.jsonl"))
        for sender, signs, labels, ts, status in self.notifications:
            self.write_notification(box, sender, signs, labels, ts, status)

    def write_notification(self, box: Any, sender: str, signs: List[str], labels: List[str],
                           ts: float, status: str) -> None:
        """One clinic notification per sign in the outbox, delivered, retrying or queued.

        ``enqueue`` is what the escalation action does; the update sets the demo's times.
        """
        from common.outbox import escalation_notifications

        box.enqueue(sender, escalation_notifications(sender, signs, labels, ts))
        with sqlite3.connect(self.outbox_path) as db:
            if status == "delivered":
                db.execute("UPDATE clinic_notifications SET created_at = ?, next_attempt_at = ?, "
                           "delivered_at = ?, attempts = 1 WHERE conversation_id = ?",
                           (ts, ts, ts + 1.5, sender))
            elif status == "retrying":
                db.execute("UPDATE clinic_notifications SET created_at = ?, next_attempt_at = ?, "
                           "attempts = 4, last_error = ? WHERE conversation_id = ?",
                           (ts, ts + 8, "URLError: <urlopen error [Errno 111] Connection refused>", sender))
            else:
                db.execute("UPDATE clinic_notifications SET created_at = ?, next_attempt_at = ? "
                           "WHERE conversation_id = ?", (ts, ts, sender))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Write demo conversations into a SQLite tracker store.")
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--tracker", type=Path, required=True, help="the SQLite file to write (created if missing)")
    parser.add_argument("--outbox", type=Path, help="the clinic-notification outbox to write (SQLite)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=60, help="spread over this many days")
    parser.add_argument("--end", type=date.fromisoformat, default=None,
                        help="the last day (UTC, YYYY-MM-DD); default today")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.conversations < 1 or args.days < 1:
        parser.error("--conversations and --days must be at least 1")
    logging.basicConfig(level=logging.WARNING)
    end = args.end or datetime.now(timezone.utc).date()
    writer = DemoWriter(args.tracker, args.outbox, args.seed)
    senders = writer.write(args.conversations, end, args.days)
    print(json.dumps({"conversations": len(senders), "tracker": str(args.tracker),
                      "outbox": str(args.outbox) if args.outbox else None,
                      "escalations": len(writer.notifications)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
