"""The lite land-use model for satellite pixel sizes (EuroSAT classes): preparing its
data, training it to ONNX, and what it changes for a user: scene classes for a 10 m
image (refused before), towns as built-up land, rural or urban."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rschat.backends import landcover_rules as lcr
from rschat.backends import landuse, lite_models
from rschat.geo.raster import Raster
from rschat.train.prepare import EUROSAT_CLASSES
from tests.conftest import ROOT, prepare_and_train, rschat

SHIPPED = ROOT / "checkpoints" / "lite"
SHARED_LR = ROOT.parent / "shared" / "data" / "vqa"
needs_model = pytest.mark.skipif(not (SHIPPED / "landuse.onnx").is_file(), reason="no shipped land-use model")


@pytest.fixture
def lite_dir(monkeypatch: pytest.MonkeyPatch):
    def use(value: str | Path) -> None:
        monkeypatch.setenv("RSCHAT_LITE_MODELS", str(value))
        lite_models.forget()

    yield use
    lite_models.forget()


def _eurosat_tree(root: Path, per_class: int = 2) -> None:
    """EuroSAT's layout as a copy keeps it: .../2750/<Class>/<Class>_<n>.jpg, 64 px."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(EUROSAT_CLASSES):
        folder = root / "data" / "raw" / "eurosat" / "2750" / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            img = np.clip(20 * k + rng.normal(60, 15, (64, 64, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(folder / f"{name}_{i + 1}.jpg")


def test_prepare_eurosat_finds_the_class_folders_and_carries_the_licence(tmp_path: Path) -> None:
    _eurosat_tree(tmp_path / "src")
    r = rschat("data", "prepare", "eurosat", "--from", str(tmp_path / "src"), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert m["task"] == "scene" and m["gsd_m"] == 10.0 and "MIT" in m["licence"] and "Copernicus" in m["licence"]
    assert len(m["items"]) == 20 and {it["label"] for it in m["items"]} == set(EUROSAT_CLASSES)
    (tmp_path / "empty" / "Forest").mkdir(parents=True)
    bad = rschat("data", "prepare", "eurosat", "--from", str(tmp_path / "empty"), "--out", str(tmp_path / "x"))
    assert bad.returncode != 0 and "class folders" in bad.stderr + bad.stdout


def test_train_landuse_end_to_end_exports_a_model_the_app_runs(tmp_path: Path, lite_dir) -> None:
    pytest.importorskip("torch")
    _eurosat_tree(tmp_path / "src")
    r, out = prepare_and_train("eurosat", "landuse", tmp_path / "src", tmp_path, validate_every=3)
    assert r.returncode == 0, r.stderr[-2000:]
    card = json.loads((out / "landuse.json").read_text())
    assert card["input_side"] == 64 and card["tile_m"] == 640.0 and card["gsd_m"] == 10.0
    assert card["classes"] == sorted(EUROSAT_CLASSES) and card["command"].startswith("rschat train landuse")
    lite_dir(out)
    read = landuse.read(np.full((300, 200, 3), 90, np.uint8), 10.0)
    ranked = read.ranked if read is not None else None
    assert ranked is not None and len(ranked) == 10 and "residential land" in {c for c, _ in ranked}
    assert abs(sum(p for _, p in ranked) - 1) < 1e-3  # resampled to the image's pixels


def test_windows_cover_every_pixel() -> None:
    assert landuse._windows(64, 64, 32) == [0] and landuse._windows(40, 64, 32) == [0]
    starts = landuse._windows(150, 64, 32)
    assert starts[0] == 0 and starts[-1] == 150 - 64
    assert all(b - a <= 32 for a, b in zip(starts, starts[1:], strict=False))
    assert len(landuse._cells(256, 256, 64)) == 49  # a Sentinel-2 tile: half-overlapping
    assert len(landuse._cells(1024, 1024, 64)) == 31 * 31
    big = landuse._cells(4096, 4096, 64)
    assert len(big) == 64 * 64 and max(r for r, _ in big) == 4096 - 64  # a large one: whole tiles, to its edge


def test_no_model_leaves_the_rules_and_says_so_in_classify_scene(tmp_path: Path, lite_dir) -> None:
    from rschat.tools.base import ToolContext
    from rschat.tools.classify_scene import ClassifyArgs, OutOfScale
    from rschat.tools.classify_scene import run as classify

    lite_dir("none")
    field = np.random.default_rng(2).integers(40, 140, (3, 128, 128)).astype(np.uint8)
    raster = Raster(data=field, gsd_m=10.0)
    lc = lcr.classify(raster)
    before = lc.classes.copy()
    assert landuse.add_urban_land(lc, raster) == "" and (lc.classes == before).all()
    with pytest.raises(OutOfScale, match="rschat train landuse"):
        classify(ClassifyArgs(), ToolContext(rasters={"image": raster}, out_dir=tmp_path))
    coarse = Raster(data=np.random.default_rng(3).integers(80, 100, (3, 64, 64)).astype(np.uint8), gsd_m=100.0)
    with pytest.raises(OutOfScale, match="EuroSAT"):
        classify(ClassifyArgs(), ToolContext(rasters={"image": coarse}, out_dir=tmp_path))


@needs_model
@pytest.mark.skipif(not (SHARED_LR / "manifest.json").is_file(), reason="../shared/data/vqa absent")
def test_a_town_at_10_m_is_built_up_and_urban(tmp_path: Path, lite_dir) -> None:
    """RSVQA's Sentinel-2 tiles (../shared, evaluation only): the colour rules read the
    town of lr/32 as bare soil (built-up under 7%, so 'rural'); with the land-use model it
    is built-up and urban, while the open sea (lr/4) and pasture (lr/34) stay rural, as
    RSVQA labels all three. (RSVQA also calls some farmland and sea tiles urban, from
    OpenStreetMap: no image model follows those; see the README.)"""
    from rschat.agent import Workspace, turn
    from rschat.config import Settings

    def ask(image: str) -> tuple[str | None, float]:
        ws = Workspace(Settings(work_dir=tmp_path / image.replace("/", "_")))
        try:
            list(turn(ws, "the pixel size is 10 m", uploads=[SHARED_LR / image]))
            final = [s for s in turn(ws, "Is it a rural or an urban area?") if s.kind == "answer"][-1]
            return final.short_answer, float(ws.results[-1].result.data["built_up_percent"] or 0.0)
        finally:
            ws.close()

    lite_dir("none")
    rules_answer, rules_built = ask("lr/32.png")
    assert rules_answer == "rural" and rules_built < 7
    lite_dir(SHIPPED)
    town, built = ask("lr/32.png")
    assert town == "urban" and built > 50
    assert ask("lr/4.png")[0] == "rural" and ask("lr/34.png")[0] == "rural"


@needs_model
def test_classify_scene_at_10_m_names_land_use_and_the_model(tmp_path: Path, lite_dir) -> None:
    from rschat.tools.base import ToolContext
    from rschat.tools.classify_scene import ClassifyArgs
    from rschat.tools.classify_scene import run as classify

    lite_dir(SHIPPED)
    ripples = np.random.default_rng(4).integers(0, 3, (256, 256))  # a flat image is refused as blank
    sea = Raster(data=np.stack([(v + ripples).astype(np.uint8) for v in (40, 70, 95)]), gsd_m=10.0)
    result = classify(ClassifyArgs(), ToolContext(rasters={"image": sea}, out_dir=tmp_path))
    assert "landuse.onnx" in result.method and "EuroSAT" in result.method
    assert result.kept.ranked[0][0] in set(landuse.READABLE.values())
    card = json.loads((SHIPPED / "landuse.json").read_text())
    assert card["size_mb"] < 25 and all(d["licence"] and d["attribution"] for d in card["data"])
    assert os.path.getsize(SHIPPED / "landuse.md") > 0


@needs_model
def test_residential_buildings_at_satellite_pixels_are_answered_from_land_use(tmp_path: Path, lite_dir) -> None:
    """'Is there a residential building?' on a 5 m NAIP image: the land the buildings stand
    on, from the land-use model, said as such; at 0.5 m, or without the model, building use
    stays refused (footprints do not show use)."""
    from rschat.agent import Workspace, turn
    from rschat.config import Settings

    def ask(image: Path, question: str, intro: str = "hello") -> tuple[str, str | None, list]:
        ws = Workspace(Settings(work_dir=tmp_path / f"w{len(list(tmp_path.iterdir()))}"))
        try:
            list(turn(ws, intro, uploads=[image]))
            steps = list(turn(ws, question))
            final = [s for s in steps if s.kind == "answer"][-1]
            return final.text, final.short_answer, [r.tool for r in ws.results]
        finally:
            ws.close()

    naip = ROOT / "assets" / "examples" / "naip_2015-09-26.tif"
    lite_dir(SHIPPED)
    text, short, tools = ask(naip, "Is there a residential building?")
    assert tools == ["classify_scene"] and "Residential land" in text and "EuroSAT" in text
    assert short in ("yes", None) and (short == "yes") == ("covers 0.0%" not in text)
    text, short, tools = ask(naip, "how much residential land is there?")
    assert short is not None and short.endswith("%") and tools == ["classify_scene"]
    png = tmp_path / "fine.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (96, 96, 3)).astype(np.uint8)).save(png)
    text, short, tools = ask(png, "Is there a residential building?", "the pixel size is 0.5 m")
    assert short is None and "used for" in text and not tools
    lite_dir("none")
    text, short, tools = ask(naip, "Is there a residential building?")
    assert short is None and "used for" in text and not tools


@needs_model
def test_backends_name_each_lite_model_on_its_own(tmp_path: Path, lite_dir) -> None:
    """The change row names the building model whether or not the land-use model is there
    (it once hung on the land-use model's line), and segmentation names the land-use model."""
    from rschat.agent import Workspace
    from rschat.agent.agent import backends
    from rschat.config import Settings

    only_buildings = tmp_path / "only_buildings"
    only_buildings.mkdir()
    for f in SHIPPED.glob("buildings.*"):
        (only_buildings / f.name).write_bytes(f.read_bytes())
    for folder, has_landuse in ((only_buildings, False), (SHIPPED, True)):
        lite_dir(folder)
        rows = backends(Workspace(Settings(work_dir=tmp_path / f"w{has_landuse}")))
        assert "buildings that appeared or went" in rows["change_detection"]
        assert ("lite model (landuse.onnx" in rows["segmentation"]) is has_landuse
        assert ("lite model (landuse.onnx" in rows["scene_classification"]) is has_landuse


def test_a_scene_class_without_a_clear_winner_is_said_to_be_a_guess(tmp_path: Path, monkeypatch) -> None:
    """NAIP prairie with pothole lakes read 'industrial or commercial land (p=0.29)' as if
    it were a classification."""
    from rschat.tools import classify_scene as cs
    from rschat.tools.base import ToolContext

    raster = Raster(data=np.random.default_rng(5).integers(40, 140, (3, 64, 64)).astype(np.uint8), gsd_m=10.0)
    ctx = ToolContext(rasters={"image": raster}, out_dir=tmp_path)
    flat = [("industrial or commercial land", 0.29), ("river", 0.23), ("pasture", 0.15)]
    monkeypatch.setattr(cs, "_lite_ranking", lambda r, s: (flat, "method", "limit", {}))
    assert "no class stands out" in cs._run_lite(cs.ClassifyArgs(), ctx).summary
    clear = [("residential land", 0.82), ("industrial or commercial land", 0.06), ("highway", 0.03)]
    monkeypatch.setattr(cs, "_lite_ranking", lambda r, s: (clear, "method", "limit", {}))
    said = cs._run_lite(cs.ClassifyArgs(), ctx).summary
    assert "no class stands out" not in said and "not sure" not in said
    # a leaning (a New York street read 'tenniscourt' at 0.55) is said to be one
    leaning = [("tenniscourt", 0.55), ("mediumresidential", 0.24), ("intersection", 0.04)]
    monkeypatch.setattr(cs, "_lite_ranking", lambda r, s: (leaning, "method", "limit", {}))
    said = cs._run_lite(cs.ClassifyArgs(), ctx).summary
    assert "leans to tenniscourt but is not sure" in said and "no class stands out" not in said


def test_an_elevation_model_gets_no_scene_class(tmp_path: Path) -> None:
    """A DSM read as a grey picture came out 'baseballdiamond (p=0.35)'."""
    from rschat.geo.errors import InputError
    from rschat.tools import classify_scene as cs
    from rschat.tools.base import ToolContext

    heights = np.random.default_rng(6).normal(300.0, 20.0, (1, 64, 64)).astype(np.float32)
    ctx = ToolContext(rasters={"image": Raster(data=heights, gsd_m=1.0)}, out_dir=tmp_path)
    with pytest.raises(InputError, match="not a picture of the ground"):
        cs.run(cs.ClassifyArgs(), ctx)
