"""rschat train build-data: annotations (real NEON, SpaceNet boxes; masks) to conversations.

The counting files in tests/data are real (DeepForest / NEON, SpaceNet); the cases on
../shared/data skip when it is absent.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.warp import transform_geom

from conftest import ROOT, SHARED
from rschat.cli import main
from rschat.train import annotations as ann
from rschat.train import templates as tpl

NEON = ROOT / "tests" / "data" / "neon"
SPACENET = ROOT / "tests" / "data" / "spacenet"
BOX = (40.0, 20.0, 200.0, 100.0)  # pixels of a 400 x 200 image


def _cli(tmp_path: Path, *argv: str, name: str = "out.json") -> tuple[int, list[dict]]:
    out = tmp_path / name
    rc = main(["train", "build-data", *argv, "--out", str(out)])
    return rc, (json.loads(out.read_text()) if rc == 0 else [])


def _manifest(tmp_path: Path, entries: list[dict], name: str = "manifest.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(entries))
    return path


def _turns(records: list[dict]) -> list[tuple[str, str]]:
    return [(r["conversations"][0]["value"], r["conversations"][1]["value"]) for r in records]


# --- box formats, exactly -------------------------------------------------------------


def test_qwen2_vl_boxes_are_integers_on_a_1000_grid() -> None:
    w = tpl.BoxWriter("qwen2_vl", 400, 200)
    assert w.region(BOX) == "<|box_start|>(100,100),(500,500)<|box_end|>"
    assert (
        w.answer([BOX], "tree")
        == "<|object_ref_start|>tree<|object_ref_end|><|box_start|>(100,100),(500,500)<|box_end|>"
    )
    assert w.tagged("refer", "Where?") == "Where?"  # Qwen has no task tags


def test_qwen2_5_vl_boxes_are_pixels_of_the_resized_image_as_json() -> None:
    w = tpl.BoxWriter("qwen2_5_vl", 400, 200)
    # the processor sees 392 x 196 (multiples of 28): x scaled by 0.98, y by 0.98
    assert w.region(BOX) == '{"bbox_2d": [39, 20, 196, 98]}'
    assert w.answer([BOX], "tree") == '```json\n[{"bbox_2d": [39, 20, 196, 98], "label": "tree"}]\n```'
    same = tpl.BoxWriter("qwen2_5_vl", 280, 140)  # already multiples of 28: absolute pixels as they are
    assert same.region(BOX) == '{"bbox_2d": [40, 20, 200, 100]}'


def test_qwen_resize_matches_transformers_smart_resize() -> None:
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    for width, height in [(400, 400), (256, 256), (900, 900), (5000, 3000), (30, 90), (1000, 60)]:
        h, w = smart_resize(height, width, factor=28, min_pixels=tpl.QWEN_MIN_PIXELS, max_pixels=tpl.QWEN_MAX_PIXELS)
        assert tpl.qwen_resized(width, height) == (w, h), (width, height)


def test_llava_boxes_are_fractions_and_geochat_style_has_tags() -> None:
    w = tpl.BoxWriter("llava", 400, 200)
    assert w.region(BOX) == "[0.10, 0.10, 0.50, 0.50]"
    assert w.answer([BOX, (0, 0, 400, 200)], "tree") == "tree [0.10, 0.10, 0.50, 0.50]; tree [0.00, 0.00, 1.00, 1.00]"
    g = tpl.BoxWriter("llava", 400, 200, style="geochat")
    assert g.region(BOX) == "{<10><10><50><50>|<0>}"
    assert g.answer([BOX], "tree") == "{<10><10><50><50>|<0>}"
    assert g.tagged("refer", "Where is the tree?") == "[refer] Where is the tree?"
    assert g.tagged("ground", "Find trees.") == "[grounding] Find trees."
    assert g.tagged("identify", "What is in it?") == "[identify] What is in it?"


# --- readers on real annotations --------------------------------------------------------


def test_readers_on_real_neon_annotations() -> None:
    osbs = ann.read_boxes(NEON / "OSBS_029.csv", NEON / "OSBS_029.tif", "tree")
    assert len(osbs) == 61 and {b.label for b in osbs} == {"tree"}
    assert osbs[0].xyxy == (203, 67, 227, 90)
    sjer = NEON / "2018_SJER_3_252000_4107000_image_477"
    truth = ann.read_boxes(Path(f"{sjer}_truth.csv"), Path(f"{sjer}.tif"), "tree")
    # the file's columns are xmin,xmax,ymin,ymax: the first row 1,82,103,235
    assert len(truth) == 7 and truth[0].xyxy == (1, 103, 82, 235) and truth[0].label == "tree"
    soap = ann.read_boxes(NEON / "SOAP_061.xml", NEON / "SOAP_061.png", "tree")
    assert len(soap) == 37 and sorted({b.label for b in soap}) == ["alive", "dead"]
    assert sum(b.label == "dead" for b in soap) == 28


def test_geojson_polygons_are_placed_through_the_geotransform_in_any_crs(tmp_path: Path) -> None:
    image, labels = SPACENET / "sample_geotiff.tif", SPACENET / "geotiff_labels.geojson"
    boxes = ann.read_boxes(labels, image, "building")
    assert len(boxes) == 43
    assert all(0 <= b.x0 < b.x1 <= 900 and 0 <= b.y0 < b.y1 <= 900 for b in boxes)
    data = json.loads(labels.read_text())
    with rasterio.open(image) as src:
        first = data["features"][0]["geometry"]["coordinates"][0]
        cols, rows = zip(*[~src.transform @ (x, y) for x, y in first], strict=True)
    assert boxes[0].xyxy == pytest.approx((min(cols), min(rows), max(cols), max(rows)))
    # the same polygons in WGS84 (RFC 7946, no crs member) land on the same pixels
    data.pop("crs")
    for f in data["features"]:
        f["geometry"] = transform_geom("EPSG:32616", "EPSG:4326", f["geometry"])
    (tmp_path / "wgs84.geojson").write_text(json.dumps(data))
    again = ann.read_boxes(tmp_path / "wgs84.geojson", image, "building")
    assert [b.xyxy for b in again] == [pytest.approx(b.xyxy, abs=0.5) for b in boxes]


def _coco_from_csv(tmp_path: Path) -> Path:
    """A COCO file of the real OSBS_029 crowns (bbox as x, y, width, height)."""
    with (NEON / "OSBS_029.csv").open() as f:
        rows = list(csv.DictReader(f))
    anns = [
        {
            "id": i,
            "image_id": 7,
            "category_id": 1,
            "bbox": [int(r["xmin"]), int(r["ymin"]), int(r["xmax"]) - int(r["xmin"]), int(r["ymax"]) - int(r["ymin"])],
        }
        for i, r in enumerate(rows)
    ]
    coco = {
        "images": [{"id": 7, "file_name": str(NEON / "OSBS_029.tif")}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "Tree"}],
    }
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco))
    return path


def test_coco_boxes_equal_the_csv_boxes(tmp_path: Path) -> None:
    coco = _coco_from_csv(tmp_path)
    from_coco = ann.read_boxes(coco, NEON / "OSBS_029.tif")
    from_csv = ann.read_boxes(NEON / "OSBS_029.csv", NEON / "OSBS_029.tif", "tree")
    assert from_coco == from_csv
    rc, records = _cli(tmp_path, "--kind", "count", "--from", str(coco), "--family", "llava")
    assert rc == 0 and any("61" in a for _, a in _turns(records))


# --- each kind through the CLI ---------------------------------------------------------


def _neon_manifest(tmp_path: Path) -> Path:
    sjer = "2018_SJER_3_252000_4107000_image_477"
    return _manifest(
        tmp_path,
        [
            {"image": str(NEON / "OSBS_029.tif"), "labels": str(NEON / "OSBS_029.csv"), "object": "tree"},
            {"image": str(NEON / "SOAP_061.png"), "labels": str(NEON / "SOAP_061.xml"), "object": "tree"},
            {"image": str(NEON / f"{sjer}.tif"), "labels": str(NEON / f"{sjer}_truth.csv"), "object": "tree"},
        ],
    )


def test_count_asks_per_class_and_for_the_object(tmp_path: Path) -> None:
    rc, records = _cli(tmp_path, "--kind", "count", "--from", str(_neon_manifest(tmp_path)), "--family", "qwen2_vl")
    assert rc == 0
    soap = [(q, a) for r, (q, a) in zip(records, _turns(records), strict=True) if r["image"].endswith("SOAP_061.png")]
    counts = {q.split("\n")[1]: a for q, a in soap if "28" in a or "9" in a or "37" in a}
    assert any("dead trees" in q and "28" in a for q, a in counts.items())
    assert any("alive trees" in q and "9" in a for q, a in counts.items())
    assert any("dead" not in q and "alive" not in q and "37" in a for q, a in soap)
    assert all(q.startswith("<image>\n") for q, _ in _turns(records))
    assert Path(records[0]["image"]).is_absolute()  # outside the output folder


def test_grounding_boxes_follow_the_family(tmp_path: Path) -> None:
    manifest = _neon_manifest(tmp_path)
    rc, qwen = _cli(tmp_path, "--kind", "grounding", "--from", str(manifest), "--family", "qwen2_5_vl", name="q.json")
    assert rc == 0
    answers = [a for _, a in _turns(qwen) if a.startswith("```json")]
    listed = json.loads(answers[1].removeprefix("```json\n").removesuffix("\n```"))  # OSBS: all 61 crowns
    assert len(listed) == 61 and listed[0]["label"] == "tree"
    # OSBS_029 is 400 x 400: Qwen2.5-VL sees 392 x 392, box (203, 67, 227, 90) * 0.98
    assert listed[0]["bbox_2d"] == [199, 66, 222, 88]
    rc, geo = _cli(
        tmp_path,
        "--kind",
        "grounding",
        "--from",
        str(manifest),
        "--family",
        "llava",
        "--style",
        "geochat",
        name="g.json",
    )
    assert rc == 0
    tags = {q.split("\n")[1].split(" ")[0] for q, _ in _turns(geo)}
    assert tags == {"[identify]", "[refer]", "[grounding]"}


def _pair(tmp_path: Path) -> Path:
    """A 100 x 100 pair with a mask of two changed regions: 20 x 10 and 4 x 5 px."""
    rng = np.random.default_rng(0)
    (tmp_path / "pair").mkdir()
    for name in ("before", "after"):
        Image.fromarray(rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)).save(tmp_path / "pair" / f"{name}.png")
    mask = np.zeros((100, 100), np.uint8)
    mask[30:40, 50:70] = 255
    mask[80:85, 5:9] = 255
    Image.fromarray(mask).save(tmp_path / "pair" / "label.png")
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(tmp_path / "pair" / "none.png")
    entries = [{"before": "pair/before.png", "after": "pair/after.png", "label": "pair/label.png"}]
    entries.append({"before": "pair/before.png", "after": "pair/after.png", "label": "pair/none.png"})
    return _manifest(tmp_path, entries)


def test_change_share_area_and_largest_region(tmp_path: Path) -> None:
    rc, records = _cli(
        tmp_path, "--kind", "change", "--from", str(_pair(tmp_path)), "--family", "qwen2_vl", "--pixel-size", "0.5"
    )
    assert rc == 0
    assert records[0]["images"] == ["pair/before.png", "pair/after.png"]  # inside the output folder: relative
    changed, unchanged = _turns(records[:4]), _turns(records[4:])
    assert all(q.startswith("<image>\n<image>\n") for q, _ in changed)
    assert changed[0][1].startswith("Yes") and "2.2" in changed[1][1]  # 220 of 10,000 px
    assert "55 m2 (0.01 ha)" in changed[2][1] or changed[2][1] == "55 m2 (0.01 ha)"  # 220 px x 0.25 m2
    assert changed[3][1] == "<|object_ref_start|>change<|object_ref_end|><|box_start|>(500,300),(700,400)<|box_end|>"
    assert len(unchanged) == 3 and unchanged[0][1].startswith("No") and "0.0" in unchanged[1][1]
    assert "0 m2 (0.00 ha)" in unchanged[2][1]  # no change: no box to give
    rc, records = _cli(
        tmp_path, "--kind", "change", "--from", str(tmp_path / "manifest.json"), "--family", "llava", name="b.json"
    )
    assert rc == 0 and not any("m2" in a for _, a in _turns(records))  # no pixel size: no area


def test_vqa_and_caption(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(tmp_path / "img" / "a.png")
    vqa = _manifest(
        tmp_path, [{"image": "img/a.png", "question": "Is there water?", "answer": "no", "type": "presence"}], "v.json"
    )
    rc, records = _cli(tmp_path, "--kind", "vqa", "--from", str(vqa), "--family", "qwen2_5_vl", name="vqa.json")
    assert rc == 0 and records[0]["image"] == "img/a.png"
    assert records[0]["conversations"][0]["value"].startswith("<image>\nIs there water?\n")
    assert records[0]["conversations"][1] == {"from": "gpt", "value": "no"}
    captions = _manifest(tmp_path, [{"image": "img/a.png", "captions": ["A grey field.", "Bare soil."]}], "c.json")
    rc, records = _cli(tmp_path, "--kind", "caption", "--from", str(captions), "--family", "llava", name="cap.json")
    assert rc == 0 and [a for _, a in _turns(records)] == ["A grey field.", "Bare soil."]
    assert len({r["id"] for r in records}) == 2


def test_same_seed_same_file_other_seed_other_phrasing(tmp_path: Path) -> None:
    manifest = _neon_manifest(tmp_path)
    argv = ["--kind", "grounding", "--from", str(manifest), "--family", "llava"]
    _cli(tmp_path, *argv, "--seed", "3", name="a.json")
    _cli(tmp_path, *argv, "--seed", "3", name="b.json")
    _cli(tmp_path, *argv, "--seed", "4", name="c.json")
    a, b, c = ((tmp_path / n).read_text() for n in ("a.json", "b.json", "c.json"))
    assert a == b and a != c


# --- refusals and exit codes ----------------------------------------------------------


def test_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = _manifest(tmp_path, [{"image": "nowhere.tif", "labels": str(NEON / "OSBS_029.csv")}], "m1.json")
    assert _cli(tmp_path, "--kind", "count", "--from", str(missing), "--family", "llava")[0] == 1
    assert "nowhere.tif" in capsys.readouterr().err
    (tmp_path / "boxes.txt").write_text("1 2 3 4\n")
    unknown = _manifest(
        tmp_path, [{"image": str(NEON / "OSBS_029.tif"), "labels": str(tmp_path / "boxes.txt")}], "m2.json"
    )
    assert _cli(tmp_path, "--kind", "count", "--from", str(unknown), "--family", "llava")[0] == 1
    assert "unknown annotation format" in capsys.readouterr().err
    empty = _manifest(tmp_path, [], "m3.json")
    assert _cli(tmp_path, "--kind", "vqa", "--from", str(empty), "--family", "llava")[0] == 1
    assert "no vqa conversations" in capsys.readouterr().err
    assert _cli(tmp_path, "--kind", "vqa", "--from", str(empty), "--family", "qwen2_vl", "--style", "geochat")[0] == 1
    assert not (tmp_path / "out.json").exists()
    with pytest.raises(SystemExit) as exc:
        main(["train", "build-data", "--kind", "segment", "--from", str(empty), "--family", "llava", "--out", "x.json"])
    assert exc.value.code == 2


def test_building_data_never_imports_torch() -> None:
    code = "import sys, rschat.train.build_data; assert 'torch' not in sys.modules, 'torch imported'"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT).returncode == 0


# --- the development data beside the project ------------------------------------------

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent")


@needs_shared
@pytest.mark.parametrize("family", tpl.FAMILIES)
def test_shared_manifests_give_conversations(tmp_path: Path, family: str) -> None:
    rc, count = _cli(
        tmp_path,
        "--kind",
        "count",
        "--from",
        str(SHARED / "counting" / "manifest.json"),
        "--family",
        family,
        name="c.json",
    )
    assert rc == 0 and any("43" in a for _, a in _turns(count))  # SpaceNet buildings, from GeoJSON
    rc, change = _cli(
        tmp_path,
        "--kind",
        "change",
        "--from",
        str(SHARED / "change" / "manifest.json"),
        "--family",
        family,
        "--pixel-size",
        "0.5",
        name="ch.json",
    )
    levir = json.loads((SHARED / "change" / "manifest.json").read_text())[0]
    assert rc == 0 and f"{100 * levir['changed_fraction']:.1f}" in change[1]["conversations"][1]["value"]


@needs_shared
def test_shared_vqa_one_conversation_per_question(tmp_path: Path) -> None:
    manifest = SHARED / "vqa" / "manifest.json"
    rc, records = _cli(tmp_path, "--kind", "vqa", "--from", str(manifest), "--family", "qwen2_5_vl")
    entries = json.loads(manifest.read_text())
    assert rc == 0 and len(records) == len(entries)
    assert [r["conversations"][1]["value"] for r in records] == [e["answer"] for e in entries]
    assert len({r["id"] for r in records}) == len(records)
