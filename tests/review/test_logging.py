"""Patient text never reaches the application log at INFO or above."""
from __future__ import annotations

import logging

from tests.review.conftest import add_conversation, csrf_of, pk_of

PATIENT_TEXT = "my neighbour Zebulon says the numbness is from his dog"


def test_views_exports_and_errors_log_no_patient_text(small_tracker, make_app, sign_in, caplog):
    add_conversation(small_tracker, "logged-1", PATIENT_TEXT)
    caplog.set_level(logging.DEBUG)
    app = make_app(small_tracker)
    client = sign_in(app)
    pk = pk_of(app, "logged-1")
    token = csrf_of(client)
    client.get("/?q=zebulon")
    client.get(f"/conversations/{pk}")
    client.post(f"/conversations/{pk}/notes", data={"csrf_token": token, "note": f"Zebulon {PATIENT_TEXT}"})
    for path in ("/export/conversations.csv?q=zebulon", "/export/transcripts.json?q=zebulon",
                 f"/conversations/{pk}/transcript.csv", "/stats", "/?from=zebulon"):
        client.get(path).get_data()
    app.extensions["review"]["store"].refresh()
    assert caplog.records, "the app logs something (sign-in, refresh), so the check is not vacuous"
    for record in caplog.records:
        if record.levelno >= logging.INFO:
            message = record.getMessage().lower()
            assert "zebulon" not in message and "numbness" not in message, record.getMessage()


def test_a_failed_sign_in_logs_the_address_not_the_password(small_tracker, make_app, caplog):
    from tests.review.conftest import do_login
    caplog.set_level(logging.INFO)
    do_login(make_app(small_tracker).test_client(), "alice.admin", "Zebulon-password-123")
    assert any("Failed sign-in" in r.getMessage() for r in caplog.records)
    assert all("Zebulon" not in r.getMessage() for r in caplog.records)
