"""The chat widget in a real browser: Debian's Chromium, driven by Playwright.

The page is served by web/serve.py exactly as `make run` serves it, and the
widget talks to the real Rasa server over socket.io. Screenshots of the run are
kept in tests/artifacts/.
"""
from __future__ import annotations

import re

import pytest

from tests.e2e.servers import PROJECT, faq_first_sentence, http

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = PROJECT / "tests" / "artifacts"
REPLY_TIMEOUT_MS = 30_000
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, servers):
    context = browser.new_context(viewport={"width": 1200, "height": 860})
    page = context.new_page()
    page.dialogs = []
    page.errors = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(f"{servers.web_url}/")
    yield page
    context.close()


def open_chat(page):
    page.get_by_role("button", name=re.compile("Chat with us")).click()
    greeting = page.locator(".ccw-bot").first
    expect(greeting).to_contain_text("not a diagnosis", timeout=REPLY_TIMEOUT_MS)
    return greeting


def ask(page, text: str):
    """Type a message, send it with Enter, and return the bot's first reply to it."""
    before = page.locator(".ccw-bot").count()
    page.get_by_label("Your message").fill(text)
    page.keyboard.press("Enter")
    reply = page.locator(".ccw-bot").nth(before)
    expect(reply).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    return reply



def session_id(page) -> str:
    return page.evaluate("() => JSON.parse(Object.values(sessionStorage)[0]).sessionId")


def test_greeting_disclaimer_and_quick_replies(page):
    greeting = open_chat(page)
    expect(page.locator(".ccw-disclaimer")).to_contain_text("not a diagnosis")
    assert greeting.get_by_role("button").count() >= 2
    # A quick reply sends its payload and shows its title.
    title = greeting.get_by_role("button").first.inner_text()
    greeting.get_by_role("button").first.click()
    expect(page.locator(".ccw-user p").last).to_have_text(title)
    expect(page.locator(".ccw-bot")).to_have_count(2, timeout=REPLY_TIMEOUT_MS)


def test_question_gets_the_grounded_answer(page):
    open_chat(page)
    reply = ask(page, "why does a disc calcify in the first place?")
    expect(reply).to_contain_text(faq_first_sentence("utter_faq/causes"))
    page.screenshot(path=str(ARTIFACTS / "widget-answer.png"))


def test_typing_indicator_shows_until_the_reply(page):
    open_chat(page)
    page.get_by_label("Your message").fill("what is the posterior longitudinal ligament")
    page.keyboard.press("Enter")
    expect(page.locator(".ccw-typing")).to_be_visible()
    expect(page.locator(".ccw-bot")).to_have_count(2, timeout=REPLY_TIMEOUT_MS)
    expect(page.locator(".ccw-typing")).to_be_hidden()


def test_red_flag_shows_the_emergency_banner(page):
    open_chat(page)
    expect(page.get_by_role("alert")).to_be_hidden()
    reply = ask(page, "my back hurts and since this morning I can't feel the toilet paper when I wipe")
    expect(reply).to_contain_text("emergency")
    banner = page.get_by_role("alert")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("emergency department or call your local emergency number now")
    expect(banner).to_contain_text("numbness between the legs")
    page.screenshot(path=str(ARTIFACTS / "widget-emergency.png"))


def test_reload_keeps_the_conversation_and_its_session(page, servers):
    open_chat(page)
    ask(page, "what does a CT scan show?")
    before = page.locator(".ccw-msg").all_inner_texts()
    conversation = session_id(page)

    page.reload()

    expect(page.locator(".ccw-msg")).to_have_count(len(before), timeout=10_000)
    assert page.locator(".ccw-msg").all_inner_texts() == before
    ask(page, "and is an x-ray any use?")
    assert session_id(page) == conversation
    status, tracker = http("GET", f"{servers.rasa_url}/conversations/{conversation}/tracker?token={servers.token}")
    said = [e["text"] for e in tracker["events"] if e["event"] == "user"]
    assert "what does a CT scan show?" in said and "and is an x-ray any use?" in said


def test_markup_in_user_and_bot_messages_is_shown_as_text(page, servers):
    open_chat(page)
    ask(page, XSS)
    expect(page.locator(".ccw-user p").last).to_have_text(XSS)

    # A bot message with markup, pushed to this conversation through Rasa's API.
    hostile = "<script>alert(2)</script><b>bold</b>"
    status, _ = http("POST", f"{servers.rasa_url}/conversations/{session_id(page)}/tracker/events"
                             f"?output_channel=socketio&execute_side_effects=true&token={servers.token}",
                     body={"event": "bot", "text": hostile,
                           "data": {"buttons": [{"title": XSS, "payload": "/greet"}]}})
    assert status == 200
    expect(page.locator(".ccw-bot").last).to_contain_text(hostile)
    expect(page.locator(".ccw-bot").last.get_by_role("button")).to_have_text(XSS)

    assert page.locator(".ccw-log img, .ccw-log script, .ccw-log b").count() == 0
    page.wait_for_timeout(500)
    assert page.dialogs == [] and page.errors == []


def test_keyboard_only(page):
    launcher = page.get_by_role("button", name=re.compile("Chat with us"))
    for _ in range(20):
        page.keyboard.press("Tab")
        if launcher.evaluate("node => node === document.activeElement"):
            break
    else:
        pytest.fail("the chat launcher can't be reached with Tab")
    page.keyboard.press("Enter")
    message_box = page.get_by_label("Your message")
    expect(message_box).to_be_focused()
    expect(page.locator(".ccw-bot")).to_have_count(1, timeout=REPLY_TIMEOUT_MS)

    page.keyboard.type("why would a disc calcify")  # an FAQ answer, with follow-up buttons
    page.keyboard.press("Enter")
    expect(page.locator(".ccw-bot")).to_have_count(2, timeout=REPLY_TIMEOUT_MS)
    expect(message_box).to_be_focused()

    # Back from the message box to the latest quick reply, and choose it with Enter.
    last_reply = page.locator(".ccw-bot").last.get_by_role("button").last
    page.keyboard.press("Shift+Tab")
    expect(last_reply).to_be_focused()
    title = last_reply.inner_text()
    page.keyboard.press("Enter")
    expect(page.locator(".ccw-user p").last).to_have_text(title)

    page.keyboard.press("Escape")
    expect(page.locator("#ccw-panel")).to_be_hidden()
    expect(launcher).to_be_focused()


def test_new_messages_are_announced_to_screen_readers(page):
    open_chat(page)
    log = page.get_by_role("log")
    assert log.get_attribute("aria-live") == "polite"
    expect(log.locator(".ccw-bot")).to_have_count(1)


CONTRAST = """() => {
  const rgb = c => c.match(/[\\d.]+/g).slice(0, 4).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
                                    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = node => { for (; node; node = node.parentElement) {
      const c = rgb(getComputedStyle(node).backgroundColor); if (c.length < 4 || c[3] > 0) return c; }
    return [255, 255, 255]; };
  return [...document.querySelectorAll('.ccw p, .ccw button:not(:disabled), .ccw h2, .ccw strong')]
    .filter(node => node.offsetParent !== null && node.textContent.trim())
    .map(node => { const a = lum(rgb(getComputedStyle(node).color)), b = lum(background(node));
                   return [node.className || node.tagName, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]; });
}"""


def test_text_has_readable_contrast(page):
    open_chat(page)
    ask(page, "my back hurts and I can't feel the toilet paper when I wipe")  # shows the banner too
    ratios = page.evaluate(CONTRAST)
    assert len(ratios) >= 8
    low = [(name, round(ratio, 2)) for name, ratio in ratios if ratio < 4.5]
    assert not low, f"below WCAG AA 4.5:1: {low}"


def test_phone_width(browser, servers):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{servers.web_url}/")
    open_chat(page)
    ask(page, "what should I avoid day to day?")
    panel = page.locator("#ccw-panel").bounding_box()
    assert panel["width"] <= 375 and panel["x"] >= 0
    send = page.get_by_role("button", name="Send").bounding_box()
    assert send["x"] + send["width"] <= 375
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    page.screenshot(path=str(ARTIFACTS / "widget-phone.png"))
    context.close()


def test_reconnects_after_rasa_restarts(page, servers):
    open_chat(page)
    servers.stop_rasa()
    expect(page.locator(".ccw-status")).to_contain_text(re.compile("Reconnecting|Can't reach"), timeout=15_000)
    servers.start_rasa()
    expect(page.locator(".ccw-status")).to_be_empty(timeout=60_000)
    reply = ask(page, "what is intermittent claudication")
    expect(reply).to_contain_text(faq_first_sentence("utter_faq/claudication"))
