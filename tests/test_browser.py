"""The page in a real headless Chromium (Debian's), driven by Playwright: load, ask, screenshot."""

import os
import shutil
from pathlib import Path

from conftest import CHROMIUM, CHROMIUM_ARGS, NEEDS_CHROMIUM, ROOT

pytestmark = NEEDS_CHROMIUM


def test_page_loads_runs_the_example_and_screenshots(app, tmp_path: Path):
    url, _ = app
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # Nothing leaves localhost: the page must work offline.
        page.route(
            "**/*",
            lambda route: (
                route.continue_()
                if "127.0.0.1" in route.request.url or route.request.url.startswith("data:")
                else route.abort()
            ),
        )
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_text("Lite mode is on").wait_for(timeout=30_000)
        page.get_by_role("button", name="Load the example pair").click()
        page.get_by_text("Example loaded").wait_for(timeout=30_000)
        page.locator("#ask textarea").fill("What changed between these two images?")
        page.locator("#ask textarea").press("Enter")
        page.get_by_text("What changed", exact=False).last.wait_for(timeout=60_000)
        page.get_by_text("of the analysed area changed").last.wait_for(timeout=60_000)
        # A click on the image panel adds a point prompt (drawn server-side on the image).
        page.locator("#image-panel img").first.click(position={"x": 60, "y": 60})
        page.get_by_text("added").first.wait_for(timeout=30_000)
        shot = tmp_path / "page.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert shot.stat().st_size > 20_000
    # RSCHAT_SCREENSHOT=assets/screenshot.png refreshes the README's screenshot.
    if os.environ.get("RSCHAT_SCREENSHOT"):
        shutil.copy(shot, ROOT / os.environ["RSCHAT_SCREENSHOT"])
