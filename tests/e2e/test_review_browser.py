"""The clinic review app in a real browser: Debian's Chromium, driven by Playwright.

The app runs as `make run` runs it (waitress, a real process) over a demo tracker
store written by Rasa's own SQLTrackerStore, with its own database; the admin is
created with the documented command. A clinician signs in, filters the escalations,
opens a transcript, marks it handled, and exports the list as CSV.
"""
from __future__ import annotations

import csv
import io
import json
import re
import sqlite3

import pytest

from tests.e2e.review_server import ReviewServer
from tests.e2e.servers import PROJECT

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = PROJECT / "tests" / "artifacts"
ADMIN, PASSWORD = "nurse.lee", "lantern harbour seven 31"


@pytest.fixture(scope="module")
def review(tmp_path_factory):
    server = ReviewServer(tmp_path_factory.mktemp("review-e2e"), conversations=300)
    server.seed()
    server.create_user(ADMIN, "admin", PASSWORD)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, review):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.dialogs, page.errors = [], []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()


def sign_in(page, review):
    page.goto(f"{review.url}/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("User name").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Conversations")).to_be_visible()


def test_sign_in_filter_open_mark_handled_and_export(page, review):
    sign_in(page, review)
    expect(page.locator(".summaryline")).to_contain_text("300 conversations")

    # Filter: escalated and not yet handled.
    page.get_by_label("Red flag").select_option("unhandled")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"escalated=unhandled"))
    rows = page.locator("table.list tbody tr")
    count = rows.count()
    assert count > 0
    for i in range(count):
        expect(rows.nth(i)).to_contain_text("escalated")
        expect(rows.nth(i)).to_contain_text("not handled")
    total = int(re.search(r"(\d+) conversation", page.locator(".summaryline").inner_text()).group(1))
    page.screenshot(path=str(ARTIFACTS / "review-escalations.png"))

    # Open the first transcript.
    rows.first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Red-flag escalation")).to_be_visible()
    expect(page.locator(".msg.esc").first).to_contain_text("emergency")
    expect(page.locator(".msg.user").first).to_be_visible()
    expect(page.get_by_text("Clinic notification")).to_be_visible()
    conversation_url = page.url

    # Mark it handled: recorded with who and when.
    page.get_by_role("button", name="Mark handled").click()
    expect(page.get_by_role("status")).to_have_text("Marked as handled.")
    expect(page.locator("#review")).to_contain_text(f"handled by {ADMIN}")
    page.screenshot(path=str(ARTIFACTS / "review-transcript.png"))

    # It left the "not handled" list.
    page.goto(f"{review.url}/?escalated=unhandled")
    expect(page.locator(".summaryline")).to_contain_text(f"{total - 1} conversation")

    # Export the escalations as CSV.
    page.goto(f"{review.url}/?escalated=yes")
    shown = int(re.search(r"(\d+) conversation", page.locator(".summaryline").inner_text()).group(1))
    with page.expect_download() as download_info:
        page.locator(".exports").get_by_role("link", name="CSV").first.click()
    download = download_info.value
    assert download.suggested_filename.startswith("conversations-") and download.suggested_filename.endswith(".csv")
    content = open(download.path(), encoding="utf-8").read()
    table = list(csv.DictReader(io.StringIO(content)))
    assert len(table) == shown == total
    assert all(row["escalated"] == "yes" for row in table)
    handled_rows = [row for row in table if row["handled_by"] == ADMIN]
    assert len(handled_rows) == 1
    assert conversation_url.endswith(f"/conversations/{handled_rows[0]['review_id']}")
    assert page.dialogs == [] and page.errors == []


def test_markup_in_patient_messages_is_text_in_the_browser(page, review):
    sign_in(page, review)
    page.get_by_label("Search patient messages").fill("alert")
    page.get_by_role("button", name="Apply").click()
    links = page.locator("table.list tbody tr a")
    assert links.count() >= 2
    links.first.click()
    expect(page.locator(".msg.user .text").filter(has_text="alert(")).to_have_count(1)
    assert page.locator("main img, main b, .transcript script").count() == 0
    page.wait_for_timeout(300)
    assert page.dialogs == [] and page.errors == []


def test_statistics_page_renders_charts(page, review):
    sign_in(page, review)
    page.get_by_role("link", name="Statistics").click()
    expect(page.locator("svg.chart")).to_have_count(4)
    page.screenshot(path=str(ARTIFACTS / "review-stats.png"), full_page=True)


def seeded_patient_messages(review):
    """Every patient message in the seeded tracker store (long enough not to match by chance)."""
    with sqlite3.connect(review.tracker) as db:
        rows = db.execute("SELECT data FROM events WHERE type_name = 'user'").fetchall()
    texts = {json.loads(data).get("text") or "" for (data,) in rows}
    return {text for text in texts if len(text) >= 12 and not text.startswith("/")}


def test_the_apps_log_has_no_patient_text(review, page):
    """The log of the app's process (waitress and the app's own logging, as `make run` writes
    var/log/review.log), after this module's sign-ins, searches, views, exports and a failed
    sign-in: it has the app's own lines, so it is the right file, and no patient's words."""
    sign_in(page, review)
    page.goto(f"{review.url}/?q=toilet")
    page.locator("table.list tbody tr a").first.click()
    expect(page.locator(".msg.user").first).to_be_visible()
    texts = seeded_patient_messages(review)
    assert len(texts) > 100
    # A sign-in attempt with a patient's words typed as the user name.
    page.context.clear_cookies()
    page.goto(f"{review.url}/login")
    page.get_by_label("User name").fill(sorted(texts)[0][:64])
    page.get_by_label("Password").fill("not a password at all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong user name or password")

    log = review.log.read_text()
    assert "Clinic review app on http://127.0.0.1" in log
    assert f"{ADMIN} signed in from 127.0.0.1" in log and "Failed sign-in from 127.0.0.1" in log
    assert "Conversation summary refreshed: 300 conversation(s) updated" in log
    leaked = sorted(text for text in texts if text in log or text[:64] in log)
    assert leaked == []
    assert "toilet" not in log.lower()
