"""The conversation list over thousands of demo conversations: filters, pagination, indexes, bad input, stats."""
from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timezone

import pytest

from review.store import ListFilter
from tests.review.conftest import DEMO_CONVERSATIONS, add_conversation

PAGE = 50


def store_of(app):
    return app.extensions["review"]["store"]


def exported_ids(client, query: str = "") -> list:
    """The conversation ids an export lists (by the app's review id: ids that look like phone numbers are masked)."""
    body = client.get(f"/export/conversations.json?{query}").get_data(as_text=True)
    data = json.loads(body)
    assert data["count"] == len(data["items"])
    store = store_of(client.application)
    return [store.summary_by_pk(item["review_id"])["conversation_id"] for item in data["items"]]


@pytest.fixture(scope="module")
def truth(demo_tracker):
    """What the raw events say, worked out here without the app's code."""
    db = sqlite3.connect(demo_tracker / "conversations.db")
    rows = db.execute("SELECT sender_id, type_name, timestamp, intent_name, action_name, data FROM events ORDER BY id")
    facts = {}
    for sender, kind, ts, intent, action, data in rows:
        f = facts.setdefault(sender, {"escalated": False, "fallback": False, "outcome": None, "open_form": False,
                                      "last": 0.0, "texts": []})
        f["last"] = max(f["last"], ts)
        event = json.loads(data)
        if kind == "bot" and ((event.get("data") or {}).get("custom") or {}).get("escalation"):
            f["escalated"] = True
        if kind == "user":
            f["texts"].append(event["text"].lower())
            if intent == "nlu_fallback":
                f["fallback"] = True
        if kind == "action" and action == "action_search_article":
            f["fallback"] = True
        if kind == "active_loop" and event.get("name") == "surgery_criteria_form":
            f["open_form"] = True
        if kind == "slot" and action == "checklist_result" and event.get("value"):
            f["outcome"], f["open_form"] = event["value"]["outcome"], False
    for f in facts.values():
        if f["open_form"]:
            f["outcome"] = "incomplete"
    return facts


def test_the_demo_has_thousands_of_conversations(demo_app, truth):
    assert len(truth) == DEMO_CONVERSATIONS
    assert store_of(demo_app).list_page(ListFilter(), 0.6, PAGE).total == DEMO_CONVERSATIONS


def test_pages_cover_every_conversation_once_newest_first(demo_app, truth):
    store = store_of(demo_app)
    seen, last_times = [], []
    page_count = store.list_page(ListFilter(), 0.6, PAGE).pages
    assert page_count == -(-DEMO_CONVERSATIONS // PAGE)
    for number in range(1, page_count + 1):
        page = store.list_page(ListFilter(page=number), 0.6, PAGE)
        assert len(page.rows) == (PAGE if number < page_count else DEMO_CONVERSATIONS - PAGE * (page_count - 1))
        seen += [r["conversation_id"] for r in page.rows]
        last_times += [r["last_ts"] for r in page.rows]
    assert len(seen) == len(set(seen)) == DEMO_CONVERSATIONS
    assert last_times == sorted(last_times, reverse=True)
    newest = max(truth, key=lambda s: truth[s]["last"])
    assert seen[0] == newest


def test_pages_over_http(demo_app, sign_in):
    client = sign_in(demo_app)
    first = client.get("/").get_data(as_text=True)
    assert f"<strong>{DEMO_CONVERSATIONS}</strong> conversations" in first
    assert first.count('href="/conversations/') == PAGE
    assert f"Page 1 of {-(-DEMO_CONVERSATIONS // PAGE)}" in first and 'rel="next"' in first
    second = client.get("/?page=2").get_data(as_text=True)
    ids_1 = set(re.findall(r'href="/conversations/(\d+)"', first))
    ids_2 = set(re.findall(r'href="/conversations/(\d+)"', second))
    assert len(ids_2) == PAGE and not ids_1 & ids_2
    beyond = client.get("/?page=999")
    assert beyond.status_code == 200 and "There is no page 999" in beyond.get_data(as_text=True)


@pytest.mark.parametrize("query, expected", [
    ("escalated=yes", lambda f: f["escalated"]),
    ("escalated=no", lambda f: not f["escalated"]),
    ("checklist=any", lambda f: f["outcome"] is not None),
    ("checklist=none", lambda f: f["outcome"] is None),
    ("checklist=discuss_surgery", lambda f: f["outcome"] == "discuss_surgery"),
    ("checklist=urgent_care", lambda f: f["outcome"] == "urgent_care"),
    ("checklist=incomplete", lambda f: f["outcome"] == "incomplete"),
    ("fallback=1", lambda f: f["fallback"]),
    ("q=toilet+paper", lambda f: any("toilet paper" in t for t in f["texts"])),
    ("escalated=yes&checklist=urgent_care", lambda f: f["escalated"] and f["outcome"] == "urgent_care"),
])
def test_filters_match_the_raw_events(demo_app, sign_in, truth, query, expected):
    ids = exported_ids(sign_in(demo_app), query)
    wanted = {sender for sender, facts in truth.items() if expected(facts)}
    assert wanted, query
    assert set(ids) == wanted
    assert len(ids) < DEMO_CONVERSATIONS or query == ""


def test_date_range_filter(demo_app, sign_in, truth):
    def day(ts):
        return datetime.fromtimestamp(ts, tz=timezone.utc).date().isoformat()
    ids = exported_ids(sign_in(demo_app), "from=2025-06-20&to=2025-06-25")
    assert set(ids) == {s for s, f in truth.items() if "2025-06-20" <= day(f["last"]) <= "2025-06-25"}
    assert ids


def test_unanswered_and_low_confidence_filters(demo_app):
    store = store_of(demo_app)
    unanswered = list(store.iter_filtered(ListFilter(unanswered=True), 0.6))
    fallback = {r["conversation_id"] for r in store.iter_filtered(ListFilter(fallback=True), 0.6)}
    assert unanswered and all(r["unanswered_turns"] > 0 for r in unanswered)
    assert {r["conversation_id"] for r in unanswered} <= fallback
    low = list(store.iter_filtered(ListFilter(low_confidence=True), 0.6))
    assert low and all(r["min_confidence"] < 0.6 for r in low)
    assert len(low) < DEMO_CONVERSATIONS
    stricter = list(store.iter_filtered(ListFilter(low_confidence=True), 0.3))
    assert len(stricter) < len(low)


def test_tag_and_handled_filters(small_tracker, make_app, sign_in):
    app = make_app(small_tracker)
    store = store_of(app)
    store.refresh()
    escalated = [r["conversation_id"] for r in store.iter_filtered(ListFilter(escalated="yes"), 0.6)]
    assert len(escalated) >= 2
    store.mark_handled(escalated[0], "alice")
    store.add_tag(escalated[1], "callback", "alice")
    client = sign_in(app)
    assert set(exported_ids(client, "escalated=handled")) == {escalated[0]}
    assert escalated[0] not in exported_ids(client, "escalated=unhandled")
    assert set(exported_ids(client, "escalated=unhandled")) == set(escalated[1:])
    assert exported_ids(client, "tag=callback") == [escalated[1]]
    assert '<option value="callback"' in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("args, index", [
    ({}, "ix_review_conv_last_ts"),
    ({"escalated": "yes"}, "ix_review_conv_escalated"),
    ({"escalated": "unhandled"}, "ix_review_conv_escalated"),
    ({"checklist": "discuss_surgery"}, "ix_review_conv_checklist"),
    ({"fallback": "1"}, "ix_review_conv_fallback"),
    ({"unanswered": "1"}, "ix_review_conv_unanswered"),
    ({"from": "2025-06-01", "to": "2025-06-10"}, "ix_review_conv_last_ts"),
    ({"lowconf": "1"}, "ix_review_conv_"),
    # These two walk the last-message index in order and test every row on the way: text
    # search is a LIKE '%…%' scan of the search text, a tag an EXISTS per row. No sort, but
    # no narrowing either (the README says so).
    ({"q": "bladder"}, "ix_review_conv_last_ts"),
    ({"tag": "callback"}, "ix_review_conv_last_ts"),
])
def test_the_list_query_uses_an_index_and_no_sort(demo_app, args, index):
    plan = store_of(demo_app).explain_list(ListFilter.parse(args), 0.6, PAGE)
    main = plan[0]
    assert f"USING INDEX {index}" in main or (index.endswith("_") and index in main), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
    assert not any(step.startswith("SCAN review_conversations") and "INDEX" not in step for step in plan), plan


@pytest.mark.parametrize("query", [
    "escalated=maybe", "checklist=surgery", "fallback=2", "lowconf=yes", "from=2025-02-30", "from=yesterday",
    "to=2025-13-01", "from=2025-06-10&to=2025-06-01", "page=0", "page=-1", "page=abc", "page=1.5",
    "page=99999999999999", "q=" + "x" * 201, "tag=" + "t" * 41, "from=%00", "page=%F0%9F%98%80",
])
def test_bad_filters_give_a_clear_400_never_a_500(demo_app, sign_in, query):
    client = sign_in(demo_app)
    response = client.get(f"/?{query}")
    assert response.status_code == 400, query
    body = response.get_data(as_text=True)
    assert "Bad filter" in body and "Back to the conversations" in body
    assert client.get(f"/export/conversations.csv?{query}").status_code == 400
    assert client.get(f"/stats?{query}").status_code in (200, 400)


@pytest.mark.parametrize("path, status", [
    ("/conversations/999999", 404), ("/conversations/abc", 404), ("/export/conversations.xml", 404),
    ("/conversations/1/transcript.pdf", 404), ("/stats?from=2020-01-01&to=2025-01-01", 400),
    ("/stats?from=2025-07-01&to=2025-06-01", 400), ("/stats?from=garbage", 400), ("/admin/users/999999", 405),
])
def test_other_bad_requests(demo_app, sign_in, path, status):
    assert sign_in(demo_app).get(path).status_code == status


def test_oversized_and_odd_posts_are_refused_cleanly(small_tracker, make_app, sign_in):
    from tests.review.conftest import csrf_of
    app = make_app(small_tracker)
    client = sign_in(app)
    token = csrf_of(client)
    assert client.post("/conversations/1/notes", data={"csrf_token": token, "note": "x" * 4001}).status_code == 400
    assert client.post("/conversations/1/notes", data={"csrf_token": token, "note": "  "}).status_code == 400
    assert client.post("/conversations/1/notes", data={"csrf_token": token, "note": "x" * 70000}).status_code in (400, 413)
    assert client.post("/admin/users/1", data={"csrf_token": token, "action": "explode"}).status_code == 400
    assert client.post("/admin/users/1", data={"csrf_token": token, "action": "role", "role": "god"}).status_code == 400


def test_statistics_page(demo_app, sign_in):
    client = sign_in(demo_app)
    page = client.get("/stats?from=2025-06-01&to=2025-06-30").get_data(as_text=True)
    assert page.count("<svg") == 4
    for title in ("Conversations per day", "Escalations per day", "Fallback rate per day", "Top topics"):
        assert title in page
    data = store_of(demo_app).stats(datetime(2025, 6, 1).date(), datetime(2025, 6, 30).date(), 0.6)
    assert len(data["days"]) == 30
    assert data["totals"]["conversations"] == sum(d["conversations"] for d in data["days"]) > 0
    assert data["totals"]["escalations"] > 0 and 0 < data["totals"]["fallback_rate"] < 1
    topics = [t for t, _ in data["top_topics"]]
    assert topics and all(t not in ("greet", "nlu_fallback", "affirm") for t in topics)
    assert any(t.startswith("faq/") for t in topics)
    default = client.get("/stats").get_data(as_text=True)  # the 30 days up to the latest conversation
    assert 'value="2025-06-30"' in default and 'value="2025-06-01"' in default


def test_new_events_appear_without_a_restart(small_tracker, make_app, sign_in):
    app = make_app(small_tracker)
    client = sign_in(app)
    store = store_of(app)
    store.refresh()
    before = store.list_page(ListFilter(), 0.6, PAGE)
    oldest = store.list_page(ListFilter(page=before.pages), 0.6, PAGE).rows[-1]
    add_conversation(small_tracker, "brand-new", "a new question about the disc")
    add_conversation(small_tracker, oldest["conversation_id"], "back again with another question")
    page = client.get("/").get_data(as_text=True)
    assert f"<strong>{before.total + 1}</strong> conversations" in page
    top = store.list_page(ListFilter(), 0.6, PAGE).rows[:2]
    assert {r["conversation_id"] for r in top} == {"brand-new", oldest["conversation_id"]}
    assert store.summary_by_id(oldest["conversation_id"])["id"] == oldest["id"]  # links stay valid


def _events(tracker_dir, sender):
    with sqlite3.connect(tracker_dir / "conversations.db") as db:
        return db.execute("SELECT * FROM events WHERE sender_id = ? ORDER BY id", (sender,)).fetchall()


def _withhold(tracker_dir, rows):
    with sqlite3.connect(tracker_dir / "conversations.db") as db:
        db.executemany("DELETE FROM events WHERE id = ?", [(row[0],) for row in rows])


def _commit_late(tracker_dir, rows):
    with sqlite3.connect(tracker_dir / "conversations.db") as db:
        marks = ",".join("?" * len(rows[0]))
        db.executemany(f"INSERT INTO events VALUES ({marks})", rows)


def _summary_table(store):
    import sqlalchemy as sa
    from review.store import conversations
    with store.engine.connect() as db:
        return [dict(r._mapping) for r in db.execute(sa.select(conversations).order_by(conversations.c.id))]


def test_events_committed_late_with_lower_ids_are_picked_up(small_tracker, make_app):
    """On PostgreSQL a transaction's ids are visible when it commits, not in id order: a slower
    writer's events show up after later ids were read. Simulated on SQLite by holding rows back
    (their ids taken, not yet visible) and inserting them with those ids after a refresh."""
    app = make_app(small_tracker)
    store = store_of(app)
    add_conversation(small_tracker, "regular", "a first question about the disc")
    add_conversation(small_tracker, "slow-writer", "a question whose transaction commits late")
    add_conversation(small_tracker, "regular", "a second question about the disc")
    add_conversation(small_tracker, "later", "a question after both")
    slow = _events(small_tracker, "slow-writer")
    regular = _events(small_tracker, "regular")
    second_turn = [row for row in regular if row[0] > slow[-1][0]]  # the second exchange, after slow-writer's
    first_user = next(i for i, row in enumerate(second_turn) if row[2] == "user")
    held_back_from_regular = second_turn[first_user:]  # its second question and the answer
    assert max(r[0] for r in slow + held_back_from_regular) < max(r[0] for r in _events(small_tracker, "later"))
    _withhold(small_tracker, slow + held_back_from_regular)

    store.refresh()
    assert store.summary_by_id("slow-writer") is None
    assert store.summary_by_id("later") is not None
    assert store.summary_by_id("regular")["user_turns"] == 1

    _commit_late(small_tracker, slow + held_back_from_regular)
    store.refresh()
    late = store.summary_by_id("slow-writer")
    assert late is not None and late["user_turns"] == 1
    assert "commits late" in late["search_text"]
    assert store.summary_by_id("regular")["user_turns"] == 2
    assert store.list_page(ListFilter(q="commits late"), 0.6, PAGE).total == 1

    # Idempotent: refreshing again (nothing new, or the window read once more) changes nothing.
    table = _summary_table(store)
    assert store.refresh() == 0
    with store.engine.begin() as db:
        from review.store import state
        db.execute(state.update().where(state.c.key == "window_count").values(value="-1"))  # force a re-read
    assert store.refresh() > 0
    assert _summary_table(store) == table
