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


def test_map_follows_a_new_upload_elsewhere_and_a_new_session_empties_it(app, tmp_path: Path):
    """Issue 9, item 2, in the browser: a pair in North Dakota with a region, then a Florida
    tile: the map moves to the tile, names it after its file, and "New session" empties it."""
    from playwright.sync_api import sync_playwright

    url, _ = app
    florida = str(ROOT / "tests" / "data" / "neon" / "OSBS_029.tif")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route(
            "**/*", lambda r: r.continue_() if r.request.url.startswith(("http://127.0.0.1", "data:")) else r.abort()
        )
        page.goto(url, wait_until="domcontentloaded")
        page.get_by_role("button", name="Load the example pair").click()
        page.get_by_text("Example loaded").wait_for(timeout=30_000)
        page.get_by_role("tab", name="Map").click()
        page.wait_for_function(
            "() => window.rschatMap && Object.values(window.rschatMap._layers).some(l => l._url)", timeout=30_000
        )
        page.evaluate(DRAW_WEST_HALF)
        page.get_by_text("map region set").wait_for(timeout=30_000)
        page.locator("#ask input[type=file]").set_input_files([florida])
        page.locator("#ask textarea").fill("how many trees?")
        page.locator("#ask textarea").press("Enter")
        page.get_by_role("button", name="Region cleared").wait_for(timeout=60_000)  # the step in the chat
        page.get_by_text("map region cleared").wait_for(timeout=30_000)  # and the status line
        page.wait_for_function(
            "() => document.querySelector('#map .rsmap-legend').innerText.includes('OSBS_029.tif')", timeout=60_000
        )
        legend = page.locator("#map .rsmap-legend").inner_text()
        assert "drawn region" not in legend and "naip" not in legend
        centre = page.evaluate("() => { const c = window.rschatMap.getCenter(); return [c.lat, c.lng]; }")
        assert 29 < centre[0] < 30.5 and -82.5 < centre[1] < -81.5  # fitted to the Florida tile
        page.wait_for_timeout(500)  # the fit's zoom animation
        widths = page.evaluate(
            "() => [...document.querySelectorAll('#map img.leaflet-image-layer')].map(i => i.getBoundingClientRect().width)"
        )
        map_width = page.locator("#map .rsmap").bounding_box()["width"]  # type: ignore[index]
        assert widths and max(widths) > map_width / 3  # the tile fills the map, not an invisible speck
        assert page.get_by_role("button", name="Clear the drawn region").is_visible()
        page.wait_for_timeout(800)
        shot = tmp_path / "map_florida.png"
        page.screenshot(path=str(shot), full_page=True)
        page.get_by_role("button", name="New session").click()
        page.wait_for_function(
            "() => !Object.values(window.rschatMap._layers).some(l => l._url && l._bounds)", timeout=30_000
        )
        browser.close()
    if os.environ.get("RSCHAT_SHOTS"):
        shutil.copy(shot, Path(os.environ["RSCHAT_SHOTS"]) / shot.name)
