"""The map in a real headless Chromium: vendored Leaflet loads, a rectangle is drawn (by
firing Leaflet.draw's event), and the answer and the map's layers keep to the region."""

import os
import shutil
from pathlib import Path

from conftest import CHROMIUM, CHROMIUM_ARGS, NEEDS_CHROMIUM, ROOT

pytestmark = NEEDS_CHROMIUM

DRAW_WEST_HALF = """() => {
  const map = window.rschatMap;
  const img = map._layers && Object.values(map._layers).find(l => l._url && l._bounds);
  const b = img.getBounds();
  const mid = (b.getWest() + b.getEast()) / 2;
  const rect = L.rectangle([[b.getSouth(), b.getWest()], [b.getNorth(), mid]]);
  map.fire('draw:created', {layer: rect, layerType: 'rectangle'});
  return [b.getWest(), mid];
}"""


def test_draw_a_rectangle_and_ask_about_it(app, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    url, demo = app
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1100})

        def route(r):  # offline: only the app itself answers (basemap tiles are refused)
            requests.append(r.request.url)
            return r.continue_() if r.request.url.startswith(("http://127.0.0.1", "data:")) else r.abort()

        page.route("**/*", route)
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("button", name="Load the example pair").click()
        page.get_by_text("Example loaded").wait_for(timeout=30_000)
        page.get_by_role("tab", name="Map").click()
        page.locator("#map .leaflet-container").wait_for(timeout=30_000)
        page.wait_for_function(
            "() => window.rschatMap && Object.values(window.rschatMap._layers).some(l => l._url)", timeout=30_000
        )
        assert any("leaflet-1.9.4/leaflet.js" in r for r in requests)  # vendored, served by the app
        assert not any("unpkg" in r or "cdn" in r for r in requests)
        west, mid = page.evaluate(DRAW_WEST_HALF)
        page.get_by_text("map region set").wait_for(timeout=30_000)
        page.locator("#ask textarea").fill("What changed inside the region I drew?")
        page.locator("#ask textarea").press("Enter")
        page.get_by_text("region drawn on the map").last.wait_for(timeout=60_000)
        page.wait_for_function(
            "() => document.querySelector('#map .rsmap-legend').innerText.includes('changes')", timeout=30_000
        )
        # Every change polygon drawn on the map lies within the region (up to a pixel).
        lons = page.evaluate("""() => { const out = [];
            Object.values(window.rschatMap._layers).forEach(l => { if (l.feature && l.feature.properties &&
              l.feature.properties.kind === 'change') { const b = l.getBounds(); out.push([b.getWest(), b.getEast()]); } });
            return out; }""")
        assert lons and all(w >= west - 1e-4 and e <= mid + 1e-4 for w, e in lons)
        # The image overlays are served by the app and show (not broken images).
        assert (
            page.evaluate("""() => [...document.querySelectorAll('#map img.leaflet-image-layer')]
            .filter(i => i.complete && i.naturalWidth > 0).length""")
            >= 1
        )
        shot = tmp_path / "map.png"
        page.screenshot(path=str(shot), full_page=True)
        session = next(iter(demo.store._by_session.values()))
        assert session.ws.region["type"] == "FeatureCollection"
        browser.close()
    assert shot.stat().st_size > 20_000
    assert len(demo.store) == 0  # the closed tab's session was dropped (demo.unload)
    if os.environ.get("RSCHAT_SCREENSHOT_MAP"):
        shutil.copy(shot, ROOT / os.environ["RSCHAT_SCREENSHOT_MAP"])


def test_time_series_slider_and_compare_two_dates(app):
    """Upload a dated stack, ask for the trend, flip dates on the map, compare two dates."""
    from playwright.sync_api import sync_playwright

    url, _ = app
    stack = [str(ROOT / "tests" / "data" / "pucallpa" / f"{y}.tif") for y in (1985, 2000, 2020)]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.route(
            "**/*", lambda r: r.continue_() if r.request.url.startswith(("http://127.0.0.1", "data:")) else r.abort()
        )
        page.goto(url, wait_until="domcontentloaded")
        page.locator("#ask input[type=file]").set_input_files(stack)
        page.locator("#ask textarea").fill("The bands are SWIR1, NIR, red, green. How did the water change over time?")
        page.locator("#ask textarea").press("Enter")
        page.get_by_text("Time series").last.wait_for(timeout=60_000)
        page.get_by_role("tab", name="Map").click()
        slider = page.locator("#map .rsmap-slider")
        slider.wait_for(timeout=30_000)
        assert slider.get_attribute("max") == "2"
        slider.fill("0")  # flip to the first date
        page.wait_for_function("() => document.querySelector('#map .rsmap-date-label').textContent.includes('1985')")
        page.locator("#map .rsmap-a").select_option("1985")
        page.locator("#map .rsmap-b").select_option("2020")
        page.locator("#map .rsmap-compare-btn").click()
        page.get_by_text("what changed between 1985 and 2020?").wait_for(timeout=30_000)
        page.get_by_text("of the analysed area changed").last.wait_for(timeout=60_000)
        browser.close()
