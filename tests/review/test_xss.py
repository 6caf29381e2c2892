"""Everything shown is escaped: markup in patient messages, bot messages, payloads, notes and filters is text."""
from __future__ import annotations

import time

from rasa.shared.core.events import SessionStarted

from review.seed_demo import DemoWriter
from tests.review.conftest import add_conversation, csrf_of, pk_of

SCRIPT = "<script>alert('xss')</script>"
IMG = '<img src=x onerror="alert(1)">'


def hostile(tracker_dir):
    add_conversation(tracker_dir, "hostile-1", f"{SCRIPT} is my disc {IMG} calcified?",
                     bot_text=f"<b>bold</b> {IMG}")
    writer = DemoWriter(tracker_dir / "conversations.db", None)
    ts = time.time()
    writer.save("hostile-1", [
        SessionStarted(timestamp=ts),
        writer.user(ts + 1, "I wet myself", channel="rest", intent="report_red_flag", confidence=1.0,
                    classifier=(f"faq{SCRIPT}", 0.7), signs=["bladder_control"]),
        writer.bot(ts + 2, "Get emergency care now.", "utter_red_flag_emergency", ["p18"],
                   custom={"escalation": {"level": f"emergency{IMG}", "signs": [f"bladder{SCRIPT}"],
                                          "labels": [f"loss of <u>bladder</u> control{IMG}"]}},
                   buttons=[{"title": SCRIPT, "payload": "/greet"}]),
    ])


def assert_escaped(body: str) -> None:
    for raw in (SCRIPT, IMG, "<b>bold</b>", "<u>bladder</u>", "<script>"):
        assert raw not in body
    assert "<img" not in body and "<u>" not in body


def test_markup_in_conversations_is_shown_as_text(small_tracker, make_app, sign_in):
    hostile(small_tracker)
    app = make_app(small_tracker)
    client = sign_in(app)
    pk = pk_of(app, "hostile-1")
    token = csrf_of(client)
    client.post(f"/conversations/{pk}/notes", data={"csrf_token": token, "note": f"note {SCRIPT}"})
    page = client.get(f"/conversations/{pk}").get_data(as_text=True)
    assert_escaped(page)
    assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "&lt;u&gt;bladder&lt;/u&gt;" in page
    listing = client.get("/?q=calcified").get_data(as_text=True)
    assert_escaped(listing)
    assert "&lt;script&gt;" in listing


def test_reflected_input_is_escaped(small_tracker, make_app, sign_in):
    client = sign_in(make_app(small_tracker))
    found = client.get("/", query_string={"q": SCRIPT}).get_data(as_text=True)
    assert SCRIPT not in found and "&lt;script&gt;" in found
    bad = client.get("/", query_string={"from": IMG})
    assert bad.status_code == 400 and "<img" not in bad.get_data(as_text=True)
    tag = client.post("/conversations/1/tags", data={"csrf_token": csrf_of(client), "tag": SCRIPT})
    assert tag.status_code == 400 and SCRIPT not in tag.get_data(as_text=True)
    audit = client.get("/admin/audit", query_string={"actor": SCRIPT}).get_data(as_text=True)
    assert SCRIPT not in audit


def test_no_inline_script_is_allowed_by_the_policy(small_tracker, make_app, sign_in):
    response = sign_in(make_app(small_tracker)).get("/")
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "<script" not in response.get_data(as_text=True)


def test_exports_are_not_html(small_tracker, make_app, sign_in):
    hostile(small_tracker)
    client = sign_in(make_app(small_tracker))
    csv_response = client.get("/export/transcripts.csv?q=calcified")
    assert csv_response.mimetype == "text/csv"
    assert csv_response.headers["Content-Disposition"].startswith("attachment;")
    assert csv_response.headers["X-Content-Type-Options"] == "nosniff"
    json_response = client.get("/export/transcripts.json?q=calcified")
    assert json_response.mimetype == "application/json"
