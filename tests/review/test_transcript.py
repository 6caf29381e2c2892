"""A transcript: what the patient said and what the assistant did, from events as Rasa writes them."""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from rasa.shared.core.events import SessionStarted

from common.outbox import Outbox, OutboxSettings
from review.seed_demo import DemoWriter
from review.tracker import TrackerReader, understand
from tests.review.conftest import csrf_of, pk_of

REAL_EVENTS = Path(__file__).parent / "data" / "rasa_events.json"


@pytest.fixture
def real_store(tmp_path):
    """Events recorded from this project's own Rasa server (a greeting, FAQ answers, a red flag,
    markup that got the fallback), inserted as they were into a table Rasa's SQLTrackerStore created."""
    DemoWriter(tmp_path / "conversations.db", None)  # creates Rasa's events table
    rows = json.loads(REAL_EVENTS.read_text())
    with sqlite3.connect(tmp_path / "conversations.db") as db:
        db.executemany(
            "INSERT INTO events (id, sender_id, type_name, timestamp, intent_name, action_name, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(r["id"], r["sender_id"], r["type_name"], r["timestamp"], r["intent_name"], r["action_name"],
              json.dumps(r["data"])) for r in rows])
    return tmp_path


def red_flag_sender():
    rows = json.loads(REAL_EVENTS.read_text())
    return next(r["sender_id"] for r in rows if r["intent_name"] == "report_red_flag")


def test_events_written_by_this_projects_rasa_are_understood(real_store):
    reader = TrackerReader(f"sqlite:///{real_store / 'conversations.db'}")
    convo = reader.conversation(red_flag_sender())
    users = convo.user_messages
    assert [(m.intent, m.topic) for m in users] == [
        ("greet", "greet"), ("faq", "faq/causes"), ("report_red_flag", "report_red_flag"),
        ("nlu_fallback", "nlu_fallback")]
    assert users[1].confidence == 1.0 and users[1].answer_confidence == pytest.approx(0.8216, abs=1e-3)
    assert users[2].signs == ["bladder_control", "saddle_numbness"] and users[2].override is None
    assert users[3].text == "<img src=x onerror=alert(1)>" and users[3].fallback and users[3].unanswered
    assert not users[1].fallback and not users[1].unanswered
    assert convo.escalated and convo.signs == ["bladder_control", "saddle_numbness"]
    bots = [m for m in convo.messages if m.kind == "bot"]
    assert bots[1].citations == ["p05"] and bots[1].utter_action == "utter_faq/causes"
    assert bots[2].escalation["labels"] == ["loss of bladder control", "numbness between the legs or around the bottom"]
    assert convo.channel is None or isinstance(convo.channel, str)
    summary = convo.summary()
    assert summary["escalated"] and summary["fallback_turns"] == 1 and summary["unanswered_turns"] == 1
    assert summary["topics"]["faq/causes"] == 1


def override_conversation(tracker_dir: Path) -> None:
    writer = DemoWriter(tracker_dir / "conversations.db", None)
    ts = 1_750_000_000.0  # 2025-06-15 15:06:40 UTC
    writer.save("override-1", [
        SessionStarted(timestamp=ts),
        writer.user(ts + 10, "what does it mean if I can't feel when I wipe", channel="socketio",
                    intent="report_red_flag", confidence=1.0, classifier=("faq", 0.6234),
                    signs=["saddle_numbness"]),
        writer.bot(ts + 11, "This could be an emergency.", "utter_red_flag_emergency", ["p18"],
                   custom={"escalation": {"level": "emergency", "signs": ["saddle_numbness"],
                                          "labels": ["numbness between the legs or around the bottom"]}}),
        writer.user(ts + 60, "do I need surgery?", channel="socketio", intent="start_surgery_checklist",
                    confidence=0.97),
        writer.slot(ts + 61, "red_flag_screen", "no"),
        writer.slot(ts + 62, "conservative_failed", "yes"),
        writer.slot(ts + 63, "severe_pain", "no"),
        writer.slot(ts + 64, "checklist_result", {"outcome": "discuss_surgery", "criteria_met": [
            "conservative treatment hasn't worked for 3 months"], "answers": {
            "red_flag_screen": "no", "conservative_failed": "yes", "severe_pain": "no"}, "date": "2025-06-15"}),
        writer.user(ts + 90, "how long is the recovery", channel="socketio", intent="faq", confidence=0.71,
                    topic="recovery", answer_conf=0.42),
    ])
    box = Outbox(OutboxSettings(db_path=tracker_dir / "outbox.db", webhook_url=None,
                                log_path=tracker_dir / "n.jsonl"))
    writer.outbox_path = tracker_dir / "outbox.db"
    writer.write_notification(box, "override-1", ["saddle_numbness"], ["numbness"], ts + 11, "retrying")


def test_transcript_page_shows_turns_override_citations_escalation_and_checklist(small_tracker, make_app, sign_in):
    override_conversation(small_tracker)
    app = make_app(small_tracker)
    client = sign_in(app)
    page = client.get(f"/conversations/{pk_of(app, 'override-1')}").get_data(as_text=True)
    assert "2025-06-15 15:06" in page  # timestamps (UTC)
    assert "report_red_flag" in page and "· 1.00" in page
    assert "The red-flag component changed the intent. The classifier said <strong>faq</strong> (0.62)" in page
    assert "Classifier's own ranking" in page
    assert "red flag: saddle_numbness" in page
    assert "p18 – " in page  # the cited passage with its title
    assert "Red-flag escalation" in page and "numbness between the legs or around the bottom" in page
    assert "retrying" in page and "Connection refused" in page  # notification status from the outbox
    assert "Surgery-criteria checklist" in page and "discuss surgery" in page
    assert "3 months of conservative treatment without effect</th><td>yes</td>" in page
    assert "low confidence 0.42" in page and "answer 0.42" in page
    assert "Mark handled" in page


def test_transcript_export_has_everything(small_tracker, make_app, sign_in):
    override_conversation(small_tracker)
    app = make_app(small_tracker)
    client = sign_in(app)
    pk = pk_of(app, "override-1")
    token = csrf_of(client)
    client.post(f"/conversations/{pk}/tags", data={"csrf_token": token, "tag": "surgery"})
    client.post(f"/conversations/{pk}/notes", data={"csrf_token": token, "note": "booked a consultation"})
    client.post(f"/conversations/{pk}/handled", data={"csrf_token": token})
    response = client.get(f"/conversations/{pk}/transcript.json")
    assert response.headers["Content-Disposition"].startswith(f'attachment; filename="transcript-{pk}-')
    data = json.loads(response.get_data(as_text=True))
    users = [m for m in data["messages"] if m["kind"] == "user"]
    assert users[0]["classifier_override"]["intent"] == "faq"
    assert users[0]["classifier_override"]["ranking"][0]["name"] == "faq"
    assert users[2]["topic"] == "faq/recovery" and users[2]["answer_confidence"] == 0.42
    assert data["escalations"][0]["signs"] == ["saddle_numbness"]
    assert data["notifications"][0]["status"] == "retrying"
    assert data["checklists"][0]["outcome"] == "discuss_surgery"
    assert data["checklists"][0]["answers"]["conservative_failed"] == "yes"
    assert data["tags"] == ["surgery"] and data["notes"][0]["text"] == "booked a consultation"
    assert data["handled"]["by"] == "alice.admin"
    csv_text = client.get(f"/conversations/{pk}/transcript.csv").get_data(as_text=True)
    header, first = csv_text.splitlines()[:2]
    assert header.startswith("conversation_id,time,speaker,text,intent,confidence")
    assert "patient" in first and "report_red_flag" in first and ",faq,0.6234," in first


def test_without_an_outbox_the_page_says_so(small_tracker, make_app, sign_in):
    override_conversation(small_tracker)
    (small_tracker / "outbox.db").unlink()
    app = make_app(small_tracker)
    page = sign_in(app).get(f"/conversations/{pk_of(app, 'override-1')}").get_data(as_text=True)
    assert "No notification outbox found" in page


def test_unfinished_checklist(tmp_path):
    writer = DemoWriter(tmp_path / "conversations.db", None)
    from rasa.shared.core.events import ActiveLoop
    ts = time.time()
    writer.save("unfinished", [writer.user(ts, "do I need surgery", channel="rest", intent="start_surgery_checklist",
                                           confidence=0.9),
                               ActiveLoop("surgery_criteria_form", timestamp=ts + 1),
                               writer.slot(ts + 2, "red_flag_screen", "no")])
    convo = TrackerReader(f"sqlite:///{tmp_path / 'conversations.db'}").conversation("unfinished")
    assert convo.checklist_outcome == "incomplete"
    assert convo.checklists[-1]["answers"] == {"red_flag_screen": "no"}


def test_understand_survives_odd_rows():
    class Row:
        def __init__(self, id, type_name, data, timestamp=None, action_name=None):
            self.id, self.type_name, self.data, self.timestamp, self.action_name = id, type_name, data, timestamp, action_name
    convo = understand("odd", [Row(1, "user", "not json"), Row(2, "bot", json.dumps([1, 2])),
                               Row(3, "user", json.dumps({"text": None, "parse_data": None}), 5.0),
                               Row(4, "slot", json.dumps({"name": "checklist_result", "value": "weird"}))])
    assert convo.last_event_id == 4 and len(convo.user_messages) == 2
    assert convo.summary()["user_turns"] == 2
