"""Scenes too large to hold whole: tiles, seams, the tiled detect_changes, rschat batch."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.warp import calculate_default_transform, reproject
from rasterio.windows import Window

from conftest import ROOT
from rschat.agent.workspace import Workspace
from rschat.backends import change_tiled
from rschat.config import load_settings
from rschat.geo.errors import InputError
from rschat.geo.tiles import tile_grid
from rschat.geo.windowed import PairSource, open_source
from rschat.tools import REGISTRY
from rschat.tools.base import Reading, ToolContext

EXAMPLES = ROOT / "assets" / "examples"
BEFORE, AFTER = EXAMPLES / "naip_2009-08-18.tif", EXAMPLES / "naip_2015-09-26.tif"
sys.path.insert(0, str(ROOT / "scripts"))


def test_tile_cores_cover_the_image_once_and_margins_stay_inside() -> None:
    tiles = tile_grid(1000, 700, 256, 40, align=4)
    seen = np.zeros((1000, 700), dtype=int)
    for t in tiles:
        seen[t.row : t.row + t.height, t.col : t.col + t.width] += 1
        assert t.read_row <= t.row and t.read_col <= t.col
        assert t.read_row + t.read_height >= t.row + t.height and t.read_row + t.read_height <= 1000
        assert t.row % 4 == 0 and t.col % 4 == 0 and t.read_row % 4 == 0 and t.read_col % 4 == 0
    assert (seen == 1).all()
    inner = tile_grid(1000, 700, 256, 40, within=Window(100, 200, 300, 400))  # col, row, width, height
    assert min(t.read_col for t in inner) == 100 and max(t.read_col + t.read_width for t in inner) == 400
    assert min(t.read_row for t in inner) == 200 and max(t.read_row + t.read_height for t in inner) == 600
    assert sum(t.height * t.width for t in inner) == 300 * 400


@pytest.mark.parametrize("red_nir", [None, (0, 3)])
def test_small_and_large_tiles_give_the_same_mask(red_nir) -> None:
    """With shared statistics and a margin wider than the detector's reach, the stitched
    mask does not depend on the tile size: no seams (vegetation by colour, and by NDVI)."""
    pair = PairSource(open_source(BEFORE), open_source(BEFORE.with_name("naip_2015-09-26.tif")))
    stats = change_tiled.estimate_stats(pair, change_tiled.plan(pair, 4096), (0, 1, 2), red_nir)
    assert stats is not None

    def mosaic(tile_px: int) -> np.ndarray:
        out = np.zeros((512, 512), dtype=bool)
        for tile in change_tiled.plan(pair, tile_px):
            result = change_tiled.tile_change(pair, tile, stats)
            out[tile.row : tile.row + tile.height, tile.col : tile.col + tile.width] = result.mask
        return out

    whole, tiled = mosaic(4096), mosaic(128)
    assert 0.05 < whole.mean() < 0.6
    assert np.array_equal(whole, tiled)


def _large_settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Limits that make the 512 x 512 examples 'large': tiled, with a 256 px overview."""
    return dataclasses.replace(
        load_settings({}), work_dir=tmp_path, tile_above_pixels=100_000, max_pixels=200_000, overview_side=256
    )


def _tiled_run(ws: Workspace, args: dict, messages: list[str] | None = None):  # type: ignore[no-untyped-def]
    progress = (lambda f, text: messages.append(text)) if messages is not None else (lambda f, text: None)
    ctx = ToolContext(rasters=ws.rasters, out_dir=ws.out_dir, settings=ws.settings, progress=progress)
    return REGISTRY["detect_changes"].run(args, ctx)


def test_a_large_pair_is_held_as_overviews_and_changes_are_found_tile_by_tile(tmp_path: Path) -> None:
    ws = Workspace(_large_settings(tmp_path))
    ws.load("before", BEFORE)
    ws.load("after", AFTER)
    before = ws.rasters["before"]
    assert before.source is not None and before.width == 256  # an overview in memory
    assert "tile by tile" in before.notes[0]
    messages: list[str] = []
    result = _tiled_run(ws, {}, messages)
    assert any("tile 1/" in m and "s left" in m for m in messages)
    f = result.figures
    assert 10 < f.changed_percent < 50 and f.region_count > 0
    assert f.pixel_size_m == pytest.approx(5.0) and f.analysed_area_m2 == pytest.approx(512 * 511 * 25, rel=0.01)
    mask_file = result.artifact("geotiff").path
    with rasterio.open(mask_file) as ds, rasterio.open(BEFORE) as src:
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.crs == src.crs and ds.transform.almost_equals(src.transform)
        assert (ds.width, ds.height) == (512, 512)  # full resolution, not the overview
        values = ds.read(1)
        assert int((values == 1).sum()) == f.changed_pixels
        # Pixels without data in both images are no data, not "unchanged"
        assert ds.nodata == 255 and int((values == 255).sum()) == 512 * 512 - round(f.analysed_area_m2 / 25) > 0
    geojson = json.loads(result.artifact("geojson").path.read_text())
    assert len(geojson["features"]) == f.region_count
    text = REGISTRY["detect_changes"].answer(result, Reading(source="r1"))
    assert "ha" in text and "%" in text


def test_a_black_edge_is_no_data_tile_by_tile_too(tmp_path: Path) -> None:
    """A large warped pair's black edge, declared nowhere, was analysed (and written as
    'unchanged') tile by tile while the same pair in memory left it out."""
    paths = []
    for src_path in (BEFORE, AFTER):
        with rasterio.open(src_path) as ds:
            data, profile = ds.read()[:3], ds.profile
        data[:, :40] = 0  # a warp's fill, no nodata declared
        profile.update(count=3, nodata=None, photometric="RGB")
        paths.append(tmp_path / src_path.name)
        with rasterio.open(paths[-1], "w", **profile) as dst:
            dst.write(data)
    ws = Workspace(_large_settings(tmp_path))
    ws.load("before", paths[0])
    ws.load("after", paths[1])
    assert ws.rasters["before"].source.nodata == 0 and "black edge" in " ".join(ws.rasters["before"].notes)
    result = _tiled_run(ws, {})
    with rasterio.open(result.artifact("geotiff").path) as ds:
        values = ds.read(1)
    assert set(np.unique(values[:40])) == {255} and (values[40:] != 255).any()
    assert result.figures.analysed_area_m2 < 512 * 472 * 25 * 1.001


def test_an_after_file_with_its_bands_in_another_order_is_read_by_name(tmp_path: Path) -> None:
    """Tile by tile, each file's red, green and blue are its own (by band name): an after
    file stored blue-green-red gives the same change as the original."""
    reordered = tmp_path / "after_bgr.tif"
    with rasterio.open(AFTER) as src:
        profile, data, names = src.profile, src.read(), src.descriptions
    order = [2, 1, 0, 3]
    with rasterio.open(reordered, "w", **profile) as dst:
        dst.write(data[order])
        for band, i in enumerate(order, start=1):
            dst.set_band_description(band, names[i])
    changed = []
    for after in (AFTER, reordered):
        ws = Workspace(_large_settings(tmp_path / after.stem))
        ws.load("before", BEFORE)
        ws.load("after", after)
        changed.append(_tiled_run(ws, {}).figures.changed_pixels)
    assert changed[0] == changed[1] > 0


def test_a_box_on_the_overview_is_scaled_to_the_file(tmp_path: Path) -> None:
    ws = Workspace(_large_settings(tmp_path))
    ws.load("before", BEFORE)
    ws.load("after", AFTER)
    result = _tiled_run(ws, {"box": [0, 0, 128, 128]})  # a quarter of the 256 px overview
    assert result.figures.analysed_area_m2 == pytest.approx(256 * 256 * 25, rel=0.01)
    assert "x 0-128" in result.summary


def test_building_change_on_a_tiled_pair_is_refused_with_what_to_do(tmp_path: Path) -> None:
    ws = Workspace(_large_settings(tmp_path))
    ws.load("before", BEFORE)
    ws.load("after", AFTER)
    with pytest.raises(InputError, match="not measured yet on scenes read tile by tile.*crop both images"):
        _tiled_run(ws, {"target": "building"})


def test_an_after_image_on_another_crs_is_warped_tile_by_tile(tmp_path: Path) -> None:
    moved = tmp_path / "after_3857.tif"
    with rasterio.open(AFTER) as src:
        transform, width, height = calculate_default_transform(src.crs, "EPSG:3857", src.width, src.height, *src.bounds)
        profile = src.profile | {"crs": "EPSG:3857", "transform": transform, "width": width, "height": height}
        with rasterio.open(moved, "w", **profile) as dst:
            for band in range(1, src.count + 1):
                reproject(rasterio.band(src, band), rasterio.band(dst, band))
            dst.descriptions = src.descriptions  # the same bands (NDVI needs to know which is near-infrared)
    ws = Workspace(_large_settings(tmp_path / "work"))
    ws.load("before", BEFORE)
    ws.load("after", moved)
    warped = _tiled_run(ws, {})
    ws.load("after", AFTER)
    same_grid = _tiled_run(ws, {})
    assert abs(warped.figures.changed_percent - same_grid.figures.changed_percent) < 6


def test_a_pair_with_no_common_data_says_so(tmp_path: Path) -> None:
    blank = tmp_path / "blank.tif"
    with rasterio.open(BEFORE) as src, rasterio.open(blank, "w", **(src.profile | {"nodata": 0})) as dst:
        dst.write(np.zeros((src.count, src.height, src.width), dtype=np.uint8))
    ws = Workspace(_large_settings(tmp_path / "work"))
    ws.load("before", BEFORE)
    ws.load("after", blank)
    with pytest.raises(InputError, match="no valid data|all no-data"):
        _tiled_run(ws, {})


def _make_pair(folder: Path, side: int) -> tuple[Path, Path]:
    from bench_large_change import make_scene

    pair = folder / f"before_{side}.tif", folder / f"after_{side}.tif"
    make_scene(BEFORE, pair[0], side)
    make_scene(AFTER, pair[1], side)
    return pair


def test_a_large_pair_runs_in_bounded_memory_from_the_cli(tmp_path: Path) -> None:
    """A 3000 x 3000 pair with limits that make it 'large': peak RSS of the whole CLI run
    stays far below what holding the pair (and its float copies) would take. (VmHWM, not
    ru_maxrss: Linux carries the parent's ru_maxrss into a child across exec.)"""
    before, after = _make_pair(tmp_path, 3000)
    env = os.environ | {
        "RSCHAT_WORK_DIR": str(tmp_path / "work"),
        "RSCHAT_TILE_ABOVE_PIXELS": "1000000",
        "RSCHAT_MAX_PIXELS": "2000000",
        "RSCHAT_OVERVIEW_SIDE": "512",
    }
    code = (
        "import sys; from rschat.cli import main; "
        f"rc = main(['ask', 'what changed?', '--before', {str(before)!r}, '--after', {str(after)!r}, '--json']); "
        "hwm = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]; "
        "print('PEAK_MB', int(hwm) / 1024); sys.exit(rc)"
    )
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    peak = float(run.stdout.rsplit("PEAK_MB", 1)[1])
    assert "tile by tile" in run.stdout and "ha" in run.stdout
    assert peak < 900, f"peak RSS {peak:.0f} MB"


distributed = pytest.importorskip("distributed", reason="rschat batch needs the batch extra (Dask)")


def test_batch_on_local_worker_processes_matches_local_threads(tmp_path: Path) -> None:
    from rschat.batch import run_batch

    settings = dataclasses.replace(load_settings({}), tile_px=128)  # 16 tiles per scene
    items = [[BEFORE, AFTER]]
    quiet = {"log": lambda s: None}
    threads = run_batch("detect_changes", items, tmp_path / "threads", settings, "threads", 2, **quiet)
    procs = run_batch("detect_changes", items, tmp_path / "procs", settings, "processes", 3, **quiet)
    assert threads[0]["figures"] == procs[0]["figures"]
    name = next((tmp_path / "threads").iterdir()).name
    masks = []
    for run in ("threads", "procs"):
        with rasterio.open(tmp_path / run / name / threads[0]["files"]["geotiff"]) as ds:
            masks.append(ds.read(1))
    assert masks[0].any() and np.array_equal(masks[0], masks[1])
    assert (tmp_path / "procs" / "batch.json").is_file()


def test_rschat_batch_command_for_each_tool(tmp_path: Path) -> None:
    from rschat.cli import main

    out = tmp_path / "out"
    rc = main(["batch", "detect_changes", "--input", str(BEFORE), str(AFTER), "--output", str(out), "--tile-px", "256"])
    assert rc == 0
    summary = json.loads((out / "batch.json").read_text())[0]
    assert summary["figures"]["changed_percent"] > 0 and summary["files"]["geotiff"].endswith(".tif")
    rc = main(["batch", "segment", "--input", str(BEFORE), "--input", str(AFTER), "--output", str(out / "lc")])
    assert rc == 0 and len(json.loads((out / "lc" / "batch.json").read_text())) == 2
    rc = main(["batch", "count_objects", "--input", str(EXAMPLES / "OSBS_029.tif"), "--output", str(out / "n")])
    counted = json.loads((out / "n" / "batch.json").read_text())[0]
    assert rc == 0 and counted["figures"]["count"] > 30
    assert main(["batch", "detect_changes", "--input", "nope.tif", str(AFTER), "--output", str(out)]) == 2
    assert main(["batch", "detect_changes", "--input", str(BEFORE), "--output", str(out)]) == 2  # a pair needs two
    assert main(["batch", "count_objects", "--target", "unicorn", "--input", str(BEFORE), "--output", str(out)]) == 2


def _segment_tiled_and_whole(tmp_path: Path, image: Path, target: str, large):  # type: ignore[no-untyped-def]
    """segment on an image loaded as a large scene (tiled) and as a whole image in memory."""
    ws = Workspace(large)
    ws.load("image", image)
    tiled = REGISTRY["segment"].run(
        {"target": target}, ToolContext(rasters=ws.rasters, out_dir=ws.out_dir, settings=ws.settings)
    )
    plain = Workspace(dataclasses.replace(load_settings({}), work_dir=tmp_path / "p"))
    plain.load("image", image)
    whole = REGISTRY["segment"].run({"target": target}, ToolContext(rasters=plain.rasters, out_dir=plain.out_dir))
    return tiled, whole


def test_land_cover_of_a_large_scene_matches_the_whole_image_and_is_written_full_size(tmp_path: Path) -> None:
    tiled, whole = _segment_tiled_and_whole(tmp_path, BEFORE, "water", _large_settings(tmp_path))
    # built-up too: tiles take the building model's footprints as the whole image does
    for name in ("water", "trees", "bare_soil", "built_up"):
        assert tiled.data[f"{name}_percent"] == pytest.approx(whole.data[f"{name}_percent"], abs=0.05)
    assert ("buildings in built-up" in tiled.method) == ("buildings in built-up" in whole.method)
    assert tiled.data["water_area_m2"] == pytest.approx(whole.data["water_area_m2"], rel=0.01)
    with rasterio.open(tiled.artifact("geotiff").path) as ds:
        assert (ds.width, ds.height, ds.nodata) == (512, 512, 0) and ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
    assert tiled.kept.landcover is not None and tiled.kept.landcover.classes.shape == (256, 256)
    assert "tile by tile" in tiled.notes[-1]


def test_land_cover_tiles_take_the_building_model_as_the_whole_image_does(tmp_path: Path) -> None:
    """At building-resolving pixels (OSBS_029, 0.1 m) each tile of a large scene marks the
    building model's footprints as built-up, as the whole image in memory does."""
    tile = EXAMPLES / "OSBS_029.tif"
    settings = dataclasses.replace(
        _large_settings(tmp_path), overview_side=128, tile_above_pixels=50_000, max_pixels=100_000, tile_px=256
    )
    tiled, whole = _segment_tiled_and_whole(tmp_path, tile, "built_up", settings)
    assert "tile by tile" in tiled.notes[-1] and "4 tiles" in tiled.notes[-1]
    assert "buildings in built-up" in tiled.method and "buildings in built-up" in whole.method
    assert tiled.data["built_up_percent"] == pytest.approx(whole.data["built_up_percent"], abs=1.0)


def test_trees_on_a_large_scene_are_counted_at_full_resolution_once_per_crown(tmp_path: Path) -> None:
    tile = EXAMPLES / "OSBS_029.tif"  # 400 x 400 at 0.1 m: its 128 px overview is too coarse for crowns
    settings = dataclasses.replace(
        _large_settings(tmp_path), overview_side=128, tile_above_pixels=50_000, max_pixels=100_000
    )
    whole_ws = Workspace(dataclasses.replace(settings, tile_above_pixels=10**9, max_pixels=10**9))
    whole_ws.load("image", tile)
    whole = REGISTRY["count_objects"].run({"target": "tree"}, ToolContext(rasters=whole_ws.rasters, out_dir=tmp_path))
    ws = Workspace(settings)
    ws.load("image", tile)
    assert ws.rasters["image"].width == 128
    ctx = ToolContext(rasters=ws.rasters, out_dir=ws.out_dir, settings=settings)
    one_tile = REGISTRY["count_objects"].run({"target": "tree"}, ctx)
    assert one_tile.figures.count == whole.figures.count and one_tile.figures.pixel_size_m == pytest.approx(0.1)
    ctx.settings = dataclasses.replace(settings, tile_px=128)  # 16 tiles: crowns on tile edges counted once
    many = REGISTRY["count_objects"].run({"target": "tree"}, ctx)
    assert abs(many.figures.count - whole.figures.count) <= 0.1 * whole.figures.count
    centres = {(round(d.center[0]), round(d.center[1])) for d in many.kept.detections}
    assert len(centres) >= len(many.kept.detections) - 1  # no crown twice
    assert all(0 <= d.center[0] <= 128 and 0 <= d.center[1] <= 128 for d in many.kept.detections)  # overview pixels


def test_a_count_tile_by_tile_leaves_out_a_black_edge_as_in_memory(tmp_path: Path) -> None:
    """Tile by tile, 3 trees were counted on a warp's black edge and its area counted in."""
    from rschat.agent.agent import turn
    from rschat.config import Settings

    with rasterio.open(ROOT / "tests" / "data" / "neon" / "OSBS_029.tif") as src:
        data, profile = src.read(), src.profile
    h, w = data.shape[1:]
    yy, xx = np.ogrid[:h, :w]
    data[:, (xx + yy) < w // 2] = 0  # a warp's triangular edge, declared nowhere
    profile.pop("nodata", None)
    path = tmp_path / "osbs_edge.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    found = {}
    for tile_above in (16_000_000, 0):
        ws = Workspace(Settings(work_dir=tmp_path / str(tile_above), tile_above_pixels=tile_above))
        list(turn(ws, "how many trees?", uploads=[path]))
        result, valid = ws.last_result().result, ws.rasters["image"].valid_mask()  # type: ignore[union-attr]
        assert all(valid[min(int(d.center[1]), h - 1), min(int(d.center[0]), w - 1)] for d in result.kept.detections)
        found[tile_above] = (result.figures.count, round(result.figures.density_per_ha, 1))
        ws.close()
    assert found[0] == found[16_000_000]


def test_a_warped_after_image_keeps_its_black_edge_out_of_the_warp(tmp_path: Path) -> None:
    """The after file's undeclared black edge, bilinearly blended into its neighbours by
    the warp, made a dark seam of 'data' (mean 51 against 102 beside it)."""
    from dataclasses import replace as with_

    from affine import Affine

    with rasterio.open(AFTER) as ds:
        data, profile = ds.read()[:3], ds.profile
    data[:, :, :100] = 0
    profile.update(count=3, photometric="RGB", nodata=None, transform=ds.transform * Affine.translation(0.5, 0.5))
    with rasterio.open(tmp_path / "after.tif", "w", **profile) as dst:
        dst.write(data)
    with rasterio.open(BEFORE) as ds:
        data, profile = ds.read()[:3], ds.profile
    profile.update(count=3, photometric="RGB")
    with rasterio.open(tmp_path / "before.tif", "w", **profile) as dst:
        dst.write(data)
    before = open_source(tmp_path / "before.tif")
    pair = PairSource(before, with_(open_source(tmp_path / "after.tif"), nodata=0))  # as read_scene finds it
    assert pair.warped
    _, after, valid = pair.read(Window(0, 0, before.width, before.height))
    seam, inside = after[:, valid[:, 100], 100].mean(), after[:, valid[:, 110], 110].mean()
    assert seam > 0.8 * inside
