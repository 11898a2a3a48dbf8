"""Hostile inputs (issue 12, item 4): each is answered with a plain message, in the chat
(``agent.turn``, as the UI drives it) and from the CLI (``rschat ask``), within seconds and
bounded memory, with nothing written outside the session folder.

The files come from tests/corpus.py (``python scripts/make_bad_inputs.py DIR`` writes them
for trying by hand). A case is (files, question, what the answer must say, CLI exit code);
the CLI's rule: 0 answered, 1 not answered or refused, 2 a command line that does not parse.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from corpus import make_corpus
from PIL import Image

from conftest import ROOT
from rschat.agent import Workspace, turn
from rschat.config import Settings
from rschat.geo.errors import InputError
from rschat.geo.io import date_from_name, read_raster
from rschat.geo.region import load_region

SECONDS = 20  # per case, generous: the CI machine's two cores are shared
BAD_WORDS = ("Traceback", "failed unexpectedly")


@dataclass(frozen=True)
class Case:
    files: tuple[str, ...]  # corpus names; two are a before/after pair, three a series
    question: str
    says: str  # a phrase the answer must contain (lower case); "" for a plain answer
    rc: int  # the CLI's exit code
    box: tuple[int, int, int, int] | None = None
    point: tuple[float, float] | None = None
    region: str | None = None  # a corpus GeoJSON file
    extra: tuple[str, ...] = field(default=())


WATER = "how much water is there?"
CASES = {
    "truncated_tiff": Case(("truncated.tif",), WATER, "corrupt or truncated", 1),
    "bomb_png": Case(("bomb_30000x30000.png",), WATER, "over the limit", 1),
    "sparse_tiff": Case(("sparse_float64.tif",), WATER, "rschat_max_decoded_bytes", 1),
    "one_strip_tiff": Case(("one_strip.tif",), WATER, "save it tiled", 1),
    "blank_describe": Case(("black_8000x8000.png",), "describe the image", "blank", 1),
    "blank_water": Case(("black_8000x8000.png",), WATER, "blank", 1),
    "blank_trees": Case(("black_8000x8000.png",), "how many trees are there?", "blank", 1),
    "one_pixel": Case(("one_pixel.png",), "describe the image", "too small", 1),
    "wide": Case(("wide_100000x3.png",), WATER, "", 0),
    "all_nodata": Case(("all_nodata.tif",), WATER, "no valid pixels", 1),
    "all_nan": Case(("all_nan.tif",), "describe the image", "no valid pixels", 1),
    "inf_values": Case(("inf_values.tif",), "describe the image", "", 0),
    "uint16_2band": Case(("uint16_2band.tif",), WATER, "2 band(s)", 1),
    "uint16_13band": Case(("uint16_13band.tif",), WATER, "band order is unknown", 1),  # named first
    "palette": Case(("palette.png",), WATER, "", 0),
    "cmyk": Case(("cmyk.jpg",), WATER, "", 0),
    "rotated": Case(("rotated.tif",), WATER, "", 0),
    "sheared": Case(("sheared.tif",), WATER, "", 0),
    "polar": Case(("polar_3413.tif",), WATER, "", 0),
    "national_crs": Case(("swiss_crs2056.tif",), WATER, "", 0),
    "antimeridian": Case(("antimeridian_4326.tif",), WATER, "", 0),
    "zero_pixel_size": Case(("zero_pixel.tif",), WATER, "", 0),
    "text_as_tif": Case(("text_as.tif",), WATER, "not a png, jpeg or (geo)tiff", 1),
    "html_as_png": Case(("html_as.png",), WATER, "not a png, jpeg or (geo)tiff", 1),
    "zip_as_jpg": Case(("zip_as.jpg",), WATER, "not a png, jpeg or (geo)tiff", 1),
    "empty_png": Case(("empty.png",), WATER, "is empty", 1),
    "png_header_only": Case(("png_header_only.png",), WATER, "corrupt", 1),
    "long_name": Case(("long_name.png",), WATER, "", 0),
    "shell_name": Case(("shell_name.png",), WATER, "", 0),
    "dash_name": Case(("dash_name.png",), WATER, "", 0),
    "newline_name": Case(("newline_name.png",), WATER, "", 0),
    "pair_size": Case(("pair_size_a.png", "pair_size_b.png"), "what changed?", "does not line up", 1),
    "pair_crs": Case(("pair_crs_a.tif", "pair_crs_b.tif"), "what changed?", "reprojected", 0),
    "pair_disjoint": Case(("pair_far_a.tif", "pair_far_b.tif"), "what changed?", "do not overlap", 1),
    "pair_nodata": Case(("all_nodata.tif", "all_nodata.tif"), "what changed?", "no change can be measured", 1),
    "change_one_image": Case(("pair_crs_a.tif",), "what changed?", "two images", 1),
    "series_one_image_thrice": Case(("long_name.png",) * 3, "how did it change over time?", "", 0),
    "box_degenerate": Case(("pair_size_a.png",), WATER, "box cannot be used", 1, box=(5, 5, 5, 5)),
    "box_outside": Case(("pair_size_a.png",), "how many trees?", "box cannot be used", 1, box=(1000, 1000, 2000, 2000)),
    "point_outside": Case(("pair_size_a.png",), "is this water?", "outside the image", 0, point=(1000.0, 1000.0)),
    "region_outside": Case(("pair_crs_a.tif",), WATER + " in the region", "does not overlap", 1, region="region_outside.geojson"),
    "enormous_message": Case(("pair_size_a.png",), "water? " * 20_000, "characters", 1),
}  # fmt: skip
REGIONS = {
    "region_not_lonlat.geojson": "not longitude/latitude",
    "region_three_coords.geojson": "has no area",
    "region_two_coords.geojson": "at least 4",
    "region_strings.geojson": "not a valid geometry",
    "region_point.geojson": "holds no polygon",
    "region_garbage.geojson": "not a readable geojson",
}
USAGE = {  # command lines that do not parse: exit 2 with the reason, never a traceback
    "point_nan": ("--point", "nan,nan"),
    "point_inf": ("--point", "inf,-inf"),
    "box_strings": ("--box", "a,b,c,d"),
    "box_three_numbers": ("--box", "1,2,3"),
    "box_infinite": ("--box", "0,0,inf,5"),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _agent_answer(case: Case, corpus: dict[str, Path], work: Path) -> tuple[str, Workspace]:
    ws = Workspace(Settings(work_dir=work))
    if case.box:
        ws.add_box(case.box)
    if case.point:
        ws.add_point(*case.point)
    if case.region:
        ws.set_region(json.loads(corpus[case.region].read_text()))
    paths = [corpus[f] for f in case.files]
    named = {"before": paths[0], "after": paths[1]} if len(paths) == 2 else None
    steps = list(turn(ws, case.question, uploads=None if named else paths, named=named))
    return "\n".join(s.text for s in steps if s.kind in ("error", "answer")), ws


@pytest.mark.parametrize("name", list(CASES))
def test_chat_answers_plainly(name: str, corpus: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    case = CASES[name]
    monkeypatch.chdir(tmp_path)
    before = _listing(corpus["truncated.tif"].parent)
    started = time.perf_counter()
    text, ws = _agent_answer(case, corpus, tmp_path / "work")
    took = time.perf_counter() - started
    try:
        assert not any(w in text for w in BAD_WORDS), text
        assert case.says in text.lower(), text
        assert took < SECONDS, f"{name} took {took:.1f} s"
        # Nothing written beside the inputs or in the working directory; only session folders.
        assert _listing(corpus["truncated.tif"].parent) == before
        assert {p.name for p in tmp_path.iterdir()} <= {"work"}
        assert all(p.name.startswith("session-") for p in (tmp_path / "work").glob("*"))
    finally:
        ws.close()


def _cli(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    from rschat import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RSCHAT_WORK_DIR", str(tmp_path / "work"))
    try:
        rc = cli.main(args)
    except SystemExit as exit_:  # argparse: a command line that does not parse
        rc = int(exit_.code or 0)
    out = capsys.readouterr()
    return rc, out.out + out.err


def _cli_args(case: Case, corpus: dict[str, Path], out: Path) -> list[str]:
    paths = [str(corpus[f]) for f in case.files]
    args = ["ask", "--json", "--out", str(out)]
    args += ["--before", paths[0], "--after", paths[1]] if len(paths) == 2 else [f"--image={p}" for p in paths]
    if case.box:
        args += ["--box", ",".join(map(str, case.box))]
    if case.point:
        args += ["--point", ",".join(map(str, case.point))]
    if case.region:
        args += ["--region", str(corpus[case.region])]
    return [*args, case.question]


@pytest.mark.parametrize("name", list(CASES))
def test_cli_answers_plainly_with_its_exit_code(name, corpus, tmp_path, monkeypatch, capsys):  # type: ignore[no-untyped-def]
    case = CASES[name]
    started = time.perf_counter()
    rc, text = _cli(_cli_args(case, corpus, tmp_path / "out"), tmp_path, monkeypatch, capsys)
    assert time.perf_counter() - started < SECONDS
    assert rc == case.rc, text[-2000:]
    assert not any(w in text for w in BAD_WORDS), text[-2000:]
    assert case.says in text.lower().replace("\\n", " "), text[-2000:]
    assert {p.name for p in tmp_path.iterdir()} <= {"work", "out"}


@pytest.mark.parametrize("name", list(REGIONS))
def test_bad_regions_are_refused_plainly(name, corpus, tmp_path, monkeypatch, capsys):  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="(?i)" + REGIONS[name].replace("(", r"\(")):
        region = load_region(corpus[name])  # the CLI's path; the map's goes through set_region
        Workspace(Settings(work_dir=tmp_path / "work")).set_region(region)
    args = ["ask", f"--image={corpus['pair_crs_a.tif']}", "--region", str(corpus[name]), WATER]
    rc, text = _cli(args, tmp_path, monkeypatch, capsys)
    assert rc == 1 and REGIONS[name] in text.lower() and "Traceback" not in text


@pytest.mark.parametrize("name", list(USAGE))
def test_bad_points_and_boxes_are_usage_errors(name, corpus, tmp_path, monkeypatch, capsys):  # type: ignore[no-untyped-def]
    rc, text = _cli(["ask", f"--image={corpus['one_pixel.png']}", *USAGE[name], WATER], tmp_path, monkeypatch, capsys)
    assert rc == 2 and "finite numbers" in text and "Traceback" not in text


# -- what the readers make of the files --------------------------------------------------------


def test_names_dates_and_georeference_are_not_invented(corpus: dict[str, Path]):
    assert read_raster(corpus["swiss_crs2056.tif"]).date is None  # 'crs2056' is a code, not a year
    assert date_from_name("EPSG_2100_scene") is None and date_from_name("tile_2099") is None
    assert date_from_name("S2A_20200715") is not None and date_from_name("naip_2015") is not None
    zero = read_raster(corpus["zero_pixel.tif"])
    assert not zero.georeferenced and "pixel size is 0" in zero.notes[0]
    long = read_raster(corpus["long_name.png"])
    assert len(long.name) <= 80 and "\n" not in read_raster(corpus["newline_name.png"]).name
    many = read_raster(corpus["uint16_13band.tif"])
    assert any("13 bands" in n and "band order" in n for n in many.notes)


def test_decoded_bytes_limit_counts_bands_and_sample_size(corpus: dict[str, Path], monkeypatch):  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=r"300 band\(s\) of 64-bit.*14\.4 GB.*RSCHAT_MAX_DECODED_BYTES"):
        read_raster(corpus["sparse_float64.tif"])
    # 64x64 x 13 x (2 + 4) bytes = 319 KB: over a 300 KB limit, given as an argument or by the setting.
    with pytest.raises(InputError, match="over the limit of 0.0 GB"):
        read_raster(corpus["uint16_13band.tif"], max_decoded_bytes=300_000)
    monkeypatch.setenv("RSCHAT_MAX_DECODED_BYTES", "300000")
    with pytest.raises(InputError, match="RSCHAT_MAX_DECODED_BYTES"):
        read_raster(corpus["uint16_13band.tif"])
    monkeypatch.setenv("RSCHAT_MAX_DECODED_BYTES", "400000")
    assert read_raster(corpus["uint16_13band.tif"]).count == 13


# -- the map: whole footprints, the antimeridian, the poles ------------------------------------


@pytest.mark.parametrize("name", ["rotated.tif", "sheared.tif", "antimeridian_4326.tif", "pair_crs_b.tif"])
def test_map_picture_covers_the_whole_footprint(name: str, corpus: dict[str, Path], tmp_path: Path):
    import shapely
    from shapely.geometry import shape

    from rschat.geo.region import footprint_wgs84
    from rschat.geo.warp import mercator_png

    raster = read_raster(corpus[name])
    path, ((south, west), (north, east)) = mercator_png(raster, tmp_path / "map.png")
    footprint = shape(footprint_wgs84(raster))
    # The bounds hold the whole footprint (east past 180 across the antimeridian)...
    assert shapely.box(west, south, east, north).buffer(1e-9).contains(footprint)
    # ...and the opaque share of the picture is the footprint's share of its bounds.
    alpha = np.asarray(Image.open(path))[..., 3] > 0
    assert abs(alpha.mean() - footprint.area / ((east - west) * (north - south))) < 0.06
    if name.startswith("antimeridian"):
        assert west < 180 < east


def test_map_refuses_plainly_a_scene_beyond_web_mercator(corpus: dict[str, Path], tmp_path: Path):
    from shapely.geometry import shape

    from rschat.geo.region import footprint_wgs84
    from rschat.geo.warp import mercator_png

    raster = read_raster(corpus["polar_3413.tif"])
    with pytest.raises(InputError, match="beyond 85 degrees"):
        mercator_png(raster, tmp_path / "map.png")
    lon0, lat0, lon1, lat1 = shape(footprint_wgs84(raster)).bounds
    assert (lon0, lon1, lat1) == (-180.0, 180.0, 90.0) and lat0 > 89


def test_skeleton_of_a_large_blob_is_bounded():
    from rschat.geo.vector import skeleton_length

    started = time.perf_counter()
    length = skeleton_length(np.ones((6000, 6000), dtype=bool))
    assert time.perf_counter() - started < 5 and length > 0
    line = np.zeros((3000, 3000), dtype=bool)
    line[1500, :] = True  # a one-pixel river keeps its length when thinned on blocks
    assert abs(skeleton_length(line) - 3000) < 0.05 * 3000


# -- peak memory of the worst cases, once, in a fresh process ----------------------------------

# VmHWM, not ru_maxrss: Linux carries a parent's ru_maxrss across exec into the child.
_PEAK = """
import re, sys, time
from pathlib import Path
from rschat import cli
started = time.perf_counter()
rc = cli.main(sys.argv[1:])
took = time.perf_counter() - started
peak_kb = re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)
print("PEAK", rc, peak_kb, took)
"""


@pytest.mark.parametrize(
    ("name", "question"),
    [
        ("black_8000x8000.png", "describe the image"),
        ("black_8000x8000.png", "how many trees are there?"),
        ("sparse_float64.tif", WATER),
        ("bomb_30000x30000.png", WATER),
        ("one_strip.tif", WATER),
    ],
)
def test_bombs_stay_within_memory_and_time(name: str, question: str, corpus: dict[str, Path], tmp_path: Path):
    env = {"RSCHAT_WORK_DIR": str(tmp_path / "work"), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK, "ask", f"--image={corpus[name]}", question],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    line = next(row for row in proc.stdout.splitlines() if row.startswith("PEAK"))
    _, rc, peak_kb, took = line.split()
    assert int(rc) == 1, proc.stdout[-1000:] + proc.stderr[-1000:]
    assert int(peak_kb) < 1.5 * 1024 * 1024, f"{name}: peak {int(peak_kb) / 1024:.0f} MB"
    assert float(took) < 60, f"{name}: {float(took):.1f} s"


def test_the_generator_script_writes_the_corpus(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_bad_inputs.py"), str(tmp_path / "bad")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    on_disk = sum(p.stat().st_size for p in (tmp_path / "bad").iterdir())
    assert on_disk < 3_000_000 and "wrote" in proc.stdout  # the bombs are small on disk


def test_a_stated_pixel_size_of_zero_is_refused_not_ignored(corpus: dict[str, Path], tmp_path: Path):
    ws = Workspace(Settings(work_dir=tmp_path / "work"))
    steps = list(turn(ws, "the pixel size is 0 m. " + WATER, uploads=[corpus["pair_size_a.png"]]))
    ws.close()
    assert "pixel size" in steps[-1].text.lower() and "0 m" in steps[-1].text
