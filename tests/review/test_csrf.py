"""Every state-changing request needs the session's CSRF token: enumerated from the URL map."""
from __future__ import annotations

import sqlalchemy as sa

from review.store import audit_log, handled, notes, tags
from tests.review.conftest import csrf_of
from tests.review.test_routes import requests

FORMS = {  # a valid form for each POST endpoint, less the token
    "mark_handled": {}, "reopen": {}, "add_tag": {"tag": "follow-up"}, "remove_tag": {"tag": "follow-up"},
    "add_note": {"note": "called the patient"}, "logout": {},
    "change_password": {"current": "x", "new": "a brand new passphrase", "again": "a brand new passphrase"},
    "create_user": {"username": "mallory", "role": "admin", "password": "a long passphrase 99",
                    "again": "a long passphrase 99"},
    "update_user": {"action": "role", "role": "viewer"}, "purge_run": {"days": "1", "step": "confirm",
                                                                       "confirm": "DELETE"},
}


def counts(app):
    with app.extensions["review"]["store"].engine.connect() as db:
        return {table.name: db.execute(sa.select(sa.func.count()).select_from(table)).scalar()
                for table in (tags, notes, handled)}


def test_every_post_without_a_valid_token_is_refused(small_tracker, make_app, sign_in):
    app = make_app(small_tracker)
    client = sign_in(app)
    other_session_token = csrf_of(sign_in(app))
    posts = [(endpoint, url) for endpoint, method, url in requests(app) if method == "POST" and endpoint != "login"]
    assert {endpoint for endpoint, _ in posts} == set(FORMS), "add the new POST route to FORMS"
    before = counts(app)
    for endpoint, url in posts:
        for token in (None, "", "forged-token", other_session_token):
            data = dict(FORMS[endpoint])
            if token is not None:
                data["csrf_token"] = token
            response = client.post(url, data=data)
            assert response.status_code == 403, (endpoint, token, response.status_code)
            assert "CSRF" in response.get_data(as_text=True)
    assert counts(app) == before
    assert client.get("/").status_code == 200  # still signed in: logout was refused too
    accounts = app.extensions["review"]["accounts"]
    assert accounts.get_user("mallory") is None and accounts.get_user("victor.viewer").role == "viewer"
    with app.extensions["review"]["store"].engine.connect() as db:
        actions = {r[0] for r in db.execute(sa.select(audit_log.c.action))}
    assert not actions & {"tag", "note", "handle", "purge", "user_admin", "password"}


def test_the_same_post_with_the_token_works(small_tracker, make_app, sign_in):
    app = make_app(small_tracker)
    client = sign_in(app)
    token = csrf_of(client)
    assert client.post("/conversations/1/tags", data={"csrf_token": token, "tag": "follow-up"}).status_code == 302
    assert client.post("/conversations/1/notes", data={"csrf_token": token, "note": "ok"}).status_code == 302
    assert counts(app)["review_tags"] == 1 and counts(app)["review_notes"] == 1


def test_each_session_has_its_own_token_in_every_form(small_tracker, make_app, sign_in):
    app = make_app(small_tracker)
    first, second = sign_in(app), sign_in(app)
    assert csrf_of(first) != csrf_of(second)
    page = first.get("/conversations/1").get_data(as_text=True)
    assert page.count('name="csrf_token"') == page.count("<form method=\"post\"")


def test_a_json_body_is_not_accepted_in_place_of_the_form(small_tracker, make_app, sign_in):
    """The token is read from the form only: a JSON body (or a header) carrying it is refused."""
    app = make_app(small_tracker)
    client = sign_in(app)
    token = csrf_of(client)
    before = counts(app)
    for url, body in [("/conversations/1/tags", {"tag": "follow-up"}), ("/conversations/1/notes", {"note": "x"}),
                      ("/conversations/1/handled", {}), ("/logout", {})]:
        as_json = client.post(url, json={"csrf_token": token, **body})
        assert as_json.status_code == 403, url
        assert "CSRF" in as_json.get_data(as_text=True)
        in_a_header = client.post(url, json=body, headers={"X-CSRF-Token": token, "X-CSRFToken": token})
        assert in_a_header.status_code == 403, url
    assert counts(app) == before
    assert client.get("/").status_code == 200  # still signed in
