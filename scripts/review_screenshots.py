"""Screenshots of the review app over the seeded demo data, for the README (docs/screenshots/).

    .venv/bin/python scripts/review_screenshots.py [--conversations 3000]

Seeds a demo tracker store in a temporary folder (review.seed_demo), starts the
review app on a free port, signs in with a throwaway admin and takes the
conversation list, an escalated transcript and the statistics page in Debian's
Chromium.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.review_server import ReviewServer  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "demo screenshots only 4821"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=3000)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = ReviewServer(Path(tmp), conversations=args.conversations)
        server.seed()
        server.create_user("dr.osei", "admin", PASSWORD)
        server.start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                page.goto(f"{server.url}/")
                page.get_by_label("User name").fill("dr.osei")
                page.get_by_label("Password").fill(PASSWORD)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_url(re.compile(r"/$"))
                page.screenshot(path=str(OUT / "review-list.png"))
                # An escalation where the red-flag detector overrode the classifier, if one is near the top.
                page.goto(f"{server.url}/?escalated=yes")
                links = [a.get_attribute("href") for a in page.locator("table.list tbody a").all()][:15]
                for href in links:
                    page.goto(f"{server.url}{href}")
                    if page.locator(".override").count():
                        break
                page.screenshot(path=str(OUT / "review-transcript.png"))
                target = page.locator(".override").first if page.locator(".override").count() else page.locator("#tr-h")
                if page.locator(".override details").count():
                    page.locator(".override details").first.evaluate("node => node.open = true")
                target.evaluate("node => { node.scrollIntoView(); window.scrollBy(0, -330); }")
                page.screenshot(path=str(OUT / "review-transcript-turns.png"))
                page.goto(f"{server.url}/stats")
                page.screenshot(path=str(OUT / "review-stats.png"), full_page=True)
                browser.close()
        finally:
            server.stop()
    from PIL import Image

    for path in sorted(OUT.glob("review-*.png")):
        # 256 colours are plenty for a web page and keep the committed files small.
        Image.open(path).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        print(path.relative_to(OUT.parent.parent), path.stat().st_size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
