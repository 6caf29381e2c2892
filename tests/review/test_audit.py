"""The audit log: who viewed, exported, tagged, noted, handled or purged which conversation, and when."""
from __future__ import annotations

import re
import time

from review.store import audit_log
from tests.review.conftest import ADMIN, VIEWER, add_conversation, csrf_of, do_login, pk_of


def test_reviewing_a_conversation_is_audited(small_tracker, make_app, sign_in):
    add_conversation(small_tracker, "audited-1", "is surgery risky for me? call 555-987-6543",
                     intent="report_red_flag", confidence=1.0, signs=["foot_drop"])
    app = make_app(small_tracker)
    audit = app.extensions["review"]["audit"]
    viewer = sign_in(app, VIEWER)
    pk = pk_of(app, "audited-1")
    started = time.time()
    assert viewer.get(f"/conversations/{pk}").status_code == 200
    token = csrf_of(viewer)
    viewer.post(f"/conversations/{pk}/tags", data={"csrf_token": token, "tag": "callback"})
    viewer.post(f"/conversations/{pk}/tags/remove", data={"csrf_token": token, "tag": "callback"})
    viewer.post(f"/conversations/{pk}/notes", data={"csrf_token": token, "note": "Phoned: patient is at A&E."})

    rows = audit.entries(conversation_id="audited-1")
    assert [r["action"] for r in rows] == ["view", "tag", "untag", "note"]
    for row in rows:
        assert row["actor"] == VIEWER[0] and row["ip"] == "127.0.0.1" and row["at"] >= started - 1
    assert rows[1]["detail"] == "added callback"
    # The log says that a note was added, not what it says, and never quotes the patient.
    assert all("A&E" not in (r["detail"] or "") and "555" not in (r["detail"] or "") for r in rows)


def test_handling_an_escalation_records_who_and_when(small_tracker, make_app, sign_in):
    app = make_app(small_tracker)
    store = app.extensions["review"]["store"]
    store.refresh()
    escalated = next(r for r in store.iter_filtered(_filter(escalated="yes"), 0.6))
    client = sign_in(app)
    token = csrf_of(client)
    before = time.time()
    assert client.post(f"/conversations/{escalated['id']}/handled", data={"csrf_token": token}).status_code == 302
    mark = store.handled_of(escalated["conversation_id"])
    assert mark["handled_by"] == ADMIN[0] and mark["handled_at"] >= before - 1
    page = client.get(f"/conversations/{escalated['id']}").get_data(as_text=True)
    assert f"by <strong>{ADMIN[0]}</strong>" in page
    client.post(f"/conversations/{escalated['id']}/reopen", data={"csrf_token": token})
    actions = [r["action"] for r in app.extensions["review"]["audit"].entries(conversation_id=escalated["conversation_id"])]
    assert actions == ["handle", "view", "reopen"]
    not_escalated = next(r for r in store.iter_filtered(_filter(escalated="no"), 0.6))
    assert client.post(f"/conversations/{not_escalated['id']}/handled", data={"csrf_token": token}).status_code == 400


def _filter(**args):
    from review.store import ListFilter
    return ListFilter.parse(args)


def test_exports_are_audited_per_conversation_with_their_filters_but_not_the_search_text(
        small_tracker, make_app, sign_in):
    add_conversation(small_tracker, "searched-1", "my bladder feels odd since yesterday")
    app = make_app(small_tracker)
    store, audit = app.extensions["review"]["store"], app.extensions["review"]["audit"]
    client = sign_in(app)

    def exported(path, wanted):
        """The rows one export wrote: one for the request, one per conversation sent."""
        client.get(path).get_data()
        rows = audit.entries(action="export")
        audit_ids = [r["conversation_id"] for r in rows]
        with store.engine.begin() as db:
            db.execute(audit_log.delete().where(audit_log.c.action == "export"))
        ids = {r["conversation_id"] for r in store.iter_filtered(wanted, 0.6)}
        assert ids, path
        assert audit_ids.count(None) == 1
        assert sorted(cid for cid in audit_ids if cid) == sorted(ids), path
        assert all(r["actor"] == ADMIN[0] and r["ip"] == "127.0.0.1" for r in rows)
        return rows

    rows = exported("/export/conversations.csv?escalated=yes", _filter(escalated="yes"))
    run = next(r for r in rows if r["conversation_id"] is None)
    count = len(rows) - 1
    assert run["detail"] == f"conversation list (csv): escalated; {count} conversation(s)"
    assert all(r["detail"] == "conversation list (csv): escalated" for r in rows if r["conversation_id"])

    rows = exported("/export/conversations.json?q=bladder", _filter(q="bladder"))
    assert all("text search" in r["detail"] and "bladder" not in r["detail"] for r in rows)

    rows = exported("/export/transcripts.json?checklist=any", _filter(checklist="any"))
    assert all(r["detail"].startswith("transcripts (json): checklist: any checklist") for r in rows)
    rows = exported("/export/transcripts.csv?q=bladder", _filter(q="bladder"))
    assert all("bladder" not in r["detail"] for r in rows)

    pk = pk_of(app, "searched-1")
    client.get(f"/conversations/{pk}/transcript.csv").get_data()
    single = audit.entries(action="export")
    assert [(r["conversation_id"], r["detail"]) for r in single] == [("searched-1", "transcript (csv)")]


def test_searches_are_audited_without_the_search_text(small_tracker, make_app, sign_in):
    app = make_app(small_tracker)
    audit = app.extensions["review"]["audit"]
    client = sign_in(app, VIEWER)
    assert client.get("/?escalated=yes").status_code == 200
    assert audit.entries(action="search") == []  # filtering alone is not a search
    assert client.get("/?q=zebulon+numbness&escalated=yes").status_code == 200
    assert client.get("/?q=zebulon+numbness&escalated=yes&page=2").status_code == 200
    rows = audit.entries(action="search")
    assert len(rows) == 2
    for row in rows:
        assert row["actor"] == VIEWER[0] and row["conversation_id"] is None and row["ip"] == "127.0.0.1"
        assert row["detail"].startswith("escalated; text search (page ")
    assert "zebulon" not in str(audit.entries()).lower()


def test_a_double_submit_is_a_no_op_not_an_error(small_tracker, make_app, sign_in):
    app = make_app(small_tracker)
    store, audit = app.extensions["review"]["store"], app.extensions["review"]["audit"]
    store.refresh()
    escalated = next(r for r in store.iter_filtered(_filter(escalated="yes"), 0.6))
    pk, cid = escalated["id"], escalated["conversation_id"]
    client = sign_in(app)
    token = csrf_of(client)
    first = client.post(f"/conversations/{pk}/handled", data={"csrf_token": token})
    second = client.post(f"/conversations/{pk}/handled", data={"csrf_token": token})
    assert (first.status_code, second.status_code) == (302, 302)
    assert "msg=handled" in first.headers["Location"] and "msg=already" in second.headers["Location"]
    assert "Someone had already marked it as handled." in client.get(second.headers["Location"]).get_data(as_text=True)
    assert store.handled_of(cid)["handled_by"] == ADMIN[0]

    tagged = [client.post(f"/conversations/{pk}/tags", data={"csrf_token": token, "tag": "callback"})
              for _ in range(2)]
    assert [r.status_code for r in tagged] == [302, 302]
    assert "msg=tagged" in tagged[0].headers["Location"] and "msg=already_tagged" in tagged[1].headers["Location"]
    assert "It already had that tag." in client.get(tagged[1].headers["Location"]).get_data(as_text=True)
    assert store.tags_of([cid]) == {cid: ["callback"]}
    actions = [r["action"] for r in audit.entries(conversation_id=cid)]
    assert actions.count("handle") == 1 and actions.count("tag") == 1


def test_two_people_at_once_one_wins_and_nobody_gets_an_error(small_tracker, make_app):
    """The unique key decides, not a read before the write, so a race can't raise an IntegrityError."""
    import threading
    app = make_app(small_tracker)
    store = app.extensions["review"]["store"]
    store.refresh()
    cid = next(r for r in store.iter_filtered(_filter(escalated="yes"), 0.6))["conversation_id"]
    for action in (lambda who: store.mark_handled(cid, who), lambda who: store.add_tag(cid, "callback", who)):
        barrier, results, errors = threading.Barrier(6), [], []

        def run(who, action=action, barrier=barrier, results=results, errors=errors):
            barrier.wait()
            try:
                results.append(action(who))
            except Exception as error:  # noqa: BLE001 - what the test is about
                errors.append(error)

        threads = [threading.Thread(target=run, args=(f"user{i}",)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [] and sorted(results) == [False] * 5 + [True]


def test_sign_ins_are_audited(small_tracker, make_app):
    app = make_app(small_tracker)
    do_login(app.test_client(), ADMIN[0], "not the password at all")
    do_login(app.test_client(), *ADMIN)
    audit = app.extensions["review"]["audit"]
    assert audit.entries(action="login_failed", actor=ADMIN[0])
    assert audit.entries(action="login", actor=ADMIN[0])
    assert "not the password" not in str(audit.entries())


def test_admins_read_the_audit_log_in_the_app_paginated(small_tracker, make_app, sign_in):
    app = make_app(small_tracker)
    audit = app.extensions["review"]["audit"]
    audit.record_many("someone", "view", [f"conv-{i}" for i in range(120)], ip="192.0.2.1")
    admin = sign_in(app)
    page = admin.get("/admin/audit").get_data(as_text=True)
    assert "someone" in page and "conv-119" in page and "Page 1 of 3" in page
    assert "conv-0<" not in page
    last = admin.get("/admin/audit?page=3").get_data(as_text=True)
    assert "conv-0<" in last
    filtered = admin.get("/admin/audit?action=login").get_data(as_text=True)
    assert ADMIN[0] in filtered and "conv-5" not in filtered
    assert re.search(r"1 entr(y|ies)", filtered)
    assert admin.get("/admin/audit?action=bogus").status_code == 400
    assert admin.get("/admin/audit?page=x").status_code == 400
    assert sign_in(app, VIEWER).get("/admin/audit").status_code == 403
