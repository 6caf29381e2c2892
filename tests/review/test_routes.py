"""Every route of the review app, enumerated from its URL map: nothing without signing in, roles enforced.

A new route fails test_every_route_is_listed until it is added to ROUTES with the
role it needs, and then the other tests check it signed out, as a viewer and as
an admin.
"""
from __future__ import annotations

import pytest

from review.app import API_ENDPOINTS, route_roles
from review.redaction import redact
from tests.review.conftest import VIEWER, csrf_of

ROUTES = {
    # public: the login page, static files, the health check
    "login": "public", "static": "public", "health": "public",
    # any signed-in staff member
    "conversations": "viewer", "conversation": "viewer", "stats": "viewer",
    "mark_handled": "viewer", "reopen": "viewer", "add_tag": "viewer", "remove_tag": "viewer",
    "add_note": "viewer", "logout": "viewer", "account": "viewer", "change_password": "viewer",
    # admins only
    "export_list": "admin", "export_transcripts": "admin", "export_transcript": "admin",
    "users": "admin", "create_user": "admin", "update_user": "admin", "audit_page": "admin",
    "purge_page": "admin", "purge_run": "admin",
}
ARGS = {"pk": 1, "user_id": 1, "fmt": "csv", "filename": "review.css"}


def requests(app):
    """(endpoint, method, url) for every rule and method of the app."""
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            url = rule.build({arg: ARGS[arg] for arg in rule.arguments}, append_unknown=False)[1]
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule.endpoint, method, url


def test_every_route_is_listed(demo_app):
    assert set(demo_app.view_functions) == set(ROUTES), (
        "a route was added or removed: list it in ROUTES with the role it needs")
    assert route_roles(demo_app) == ROUTES
    assert {name for name, role in ROUTES.items() if role == "admin"} >= API_ENDPOINTS


def test_signed_out_every_route_redirects_to_login_or_answers_401(demo_app):
    client = demo_app.test_client()
    # The conversation the URLs point at (pk 1): what it says must not come back signed out.
    shown = demo_app.extensions["review"]["store"].summary_by_pk(ARGS["pk"])
    convo = demo_app.extensions["review"]["store"].reader.conversation(shown["conversation_id"])
    patient_texts = [m.text for m in convo.user_messages
                     if len(m.text) >= 10 and not m.text.startswith("/") and redact(m.text) == m.text]
    assert patient_texts, "conversation 1 has patient messages to look for"
    assert sign_in_body_shows(demo_app, ARGS["pk"], patient_texts[0]), "the check can see a leak"
    checked = 0
    for endpoint, method, url in requests(demo_app):
        if ROUTES[endpoint] == "public":
            continue
        response = client.open(url, method=method)
        checked += 1
        if endpoint in API_ENDPOINTS:
            assert response.status_code == 401, (endpoint, method, response.status_code)
        else:
            assert response.status_code == 302, (endpoint, method, response.status_code)
            assert response.headers["Location"].startswith("/login"), (endpoint, response.headers["Location"])
        answer = response.get_data(as_text=True) + str(response.headers)
        for text in patient_texts:
            assert text not in answer, (endpoint, method)
    assert checked >= 20


def sign_in_body_shows(app, pk, text):
    """Signed in, the same conversation's page does show the text (so its absence above means something)."""
    from tests.review.conftest import ADMIN, do_login
    client = app.test_client()
    do_login(client, *ADMIN)
    page = client.get(f"/conversations/{pk}").get_data(as_text=True)
    from markupsafe import escape
    return str(escape(text)) in page


def test_signed_out_unknown_paths_and_json_clients_get_nothing(demo_app):
    client = demo_app.test_client()
    assert client.get("/no/such/page").status_code == 302
    assert client.get("/conversations/1", headers={"Accept": "application/json"}).status_code == 401
    assert client.get("/export/conversations.json").status_code == 401


def test_public_routes(demo_app):
    client = demo_app.test_client()
    assert client.get("/login").status_code == 200
    assert client.get("/health").get_json() == {"status": "ok"}
    assert client.get("/static/review.css").status_code == 200


def test_viewer_gets_403_on_every_admin_route(demo_app, sign_in):
    client = sign_in(demo_app, VIEWER)
    token = csrf_of(client)
    for endpoint, method, url in requests(demo_app):
        if ROUTES[endpoint] != "admin":
            continue
        data = {"csrf_token": token} if method == "POST" else None
        response = client.open(url, method=method, data=data)
        assert response.status_code == 403, (endpoint, method, response.status_code)


def test_viewer_reads_and_admin_reaches_every_page(demo_app, sign_in):
    viewer, admin = sign_in(demo_app, VIEWER), sign_in(demo_app)
    for endpoint, method, url in requests(demo_app):
        if method != "GET" or ROUTES[endpoint] == "public":
            continue
        response = admin.get(url)
        assert response.status_code == 200, (endpoint, response.status_code)
        if ROUTES[endpoint] == "viewer":
            assert viewer.get(url).status_code == 200, endpoint


def test_a_get_never_changes_anything(demo_app, sign_in):
    """State changes are POST only: a GET on their URL is 405."""
    client = sign_in(demo_app)
    methods_by_url = {}
    for endpoint, method, url in requests(demo_app):
        methods_by_url.setdefault(url, set()).add(method)
    post_only = [url for url, methods in methods_by_url.items() if methods == {"POST"}]
    assert len(post_only) >= 8
    for url in post_only:
        assert client.get(url).status_code == 405, url


@pytest.mark.parametrize("path", ["/", "/stats", "/conversations/1", "/admin/audit"])
def test_security_headers(demo_app, sign_in, path):
    response = sign_in(demo_app).get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp and "script-src" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
