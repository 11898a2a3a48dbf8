"""``rschat data prepare SOURCE --from DIR --out DIR``: one training format for the openly
licensed sources the lite models learn from.

Each source is a public repository at a known commit (checked out or unpacked into DIR).
What comes out is the same for all of them: RGB PNG tiles under ``images/`` (and masks under
``masks/``), and ``manifest.json`` with the task, the pixel size, the licence and
attribution, and one entry per tile (``image``, ``split``, and ``label`` | ``points`` |
``boxes`` | ``mask``). Splits are fixed by a hash of the tile's name (or the source's own
lists), so that re-running gives the same split.

The NEON tiles rschat is evaluated on (OSBS_029, SOAP_061, SJER ..._477, in DeepForest's
data folder and in ../shared/data/counting) are never written, so no model sees them.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HELP = "turn an openly licensed source (trees, buildings, scenes, land use) into rschat's training format"


@dataclass(frozen=True)
class Source:
    name: str
    task: str  # scene | points | boxes | mask
    repo: str
    commit: str
    licence: str
    attribution: str
    gsd_m: float | None  # None: per item
    read: Callable[[Path, Path], Iterator[dict]]


def split_of(key: str, val: float = 0.1, test: float = 0.2) -> str:
    """A fixed split from a hash of the key (stable across runs and machines)."""
    u = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if u < test else "val" if u < test + val else "train"


def _save_png(array: np.ndarray, path: Path) -> str:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return f"{path.parent.name}/{path.name}"


def _read_rgb(path: Path) -> np.ndarray:
    """Bands 1-3 as uint8 (float NEON tiles are 0-255 already)."""
    import rasterio

    with rasterio.open(path) as src:
        data = src.read([1, 2, 3])
    return np.clip(np.moveaxis(data, 0, -1), 0, 255).astype(np.uint8)


# --- scenes: UC Merced land use -------------------------------------------------------


def _ucmerced(root: Path, out: Path) -> Iterator[dict]:
    from PIL import Image

    images = root / "UCMerced_LandUse" / "Images"
    if not images.is_dir():
        raise SystemExit(f"{images} not found: --from must hold UCMerced_LandUse/Images/<class>/*.tif")
    for folder in sorted(p for p in images.iterdir() if p.is_dir()):
        for tif in sorted(folder.glob("*.tif")):
            rgb = np.asarray(Image.open(tif).convert("RGB").resize((256, 256), Image.Resampling.BILINEAR))
            image = _save_png(rgb, out / "images" / f"{tif.stem}.png")
            yield {"image": image, "split": split_of(tif.stem), "label": folder.name}


# --- land use at 10 m: EuroSAT (Sentinel-2 RGB) ---------------------------------------

EUROSAT_CLASSES = ("AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture",
                   "PermanentCrop", "Residential", "River", "SeaLake")  # fmt: skip


def _eurosat_folder(root: Path) -> Path:
    """The folder that holds EuroSAT's ten class folders, wherever a copy puts it."""
    for folder in sorted([root, *(p for p in root.rglob("*") if p.is_dir())], key=lambda p: len(p.parts)):
        if all((folder / name).is_dir() for name in EUROSAT_CLASSES):
            return folder
    raise SystemExit(f"no folder under {root} holds EuroSAT's class folders ({', '.join(EUROSAT_CLASSES)})")


def _eurosat(root: Path, out: Path) -> Iterator[dict]:
    """64 x 64 true-colour tiles at 10 m, labelled by their folder."""
    from PIL import Image

    images = _eurosat_folder(root)
    for name in EUROSAT_CLASSES:
        for tile in sorted(p for p in (images / name).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")):
            rgb = np.asarray(Image.open(tile).convert("RGB"))
            image = _save_png(rgb, out / "images" / f"{tile.stem}.png")
            yield {"image": image, "split": split_of(tile.stem), "label": name}


# --- trees: NAIP points (urban-tree-detection-data) -----------------------------------


def _urban_trees(root: Path, out: Path) -> Iterator[dict]:
    splits = {}
    for split in ("train", "val", "test"):
        for line in (root / f"{split}.txt").read_text().split():
            splits[line.strip()] = split
    for tif in sorted((root / "images").glob("*.tif")):
        points = []
        table = root / "csv" / f"{tif.stem}.csv"
        if table.is_file():  # no CSV: no trees in the tile
            with table.open() as f:
                points = [[float(r["x"]), float(r["y"])] for r in csv.DictReader(f)]
        image = _save_png(_read_rgb(tif), out / "images" / f"{tif.stem}.png")
        yield {"image": image, "split": splits.get(tif.stem, split_of(tif.stem)), "points": points}


# --- trees: NEON crowns (IDTReeS 2020 and DeepForest's examples) ----------------------


def _idtrees(root: Path, out: Path) -> Iterator[dict]:
    import geopandas as gpd
    import rasterio

    base = root / "data" / "train"
    for site in ("MLBS", "OSBS"):
        crowns = gpd.read_file(base / "ITC" / f"train_{site}.shp")
        for tif in sorted((base / "RemoteSensing" / "RGB").glob(f"{site}_*.tif")):
            with rasterio.open(tif) as src:
                inv = ~src.transform
                b = src.bounds
                near = crowns.cx[b.left : b.right, b.bottom : b.top]
                boxes = []
                for geom in near.geometry:
                    x0, y0, x1, y1 = geom.bounds
                    (c0, r0), (c1, r1) = inv * (x0, y1), inv * (x1, y0)
                    c0, c1 = max(0.0, c0), min(float(src.width), c1)
                    r0, r1 = max(0.0, r0), min(float(src.height), r1)
                    if c1 - c0 > 3 and r1 - r0 > 3:
                        boxes.append([round(c0, 1), round(r0, 1), round(c1, 1), round(r1, 1)])
            image = _save_png(_read_rgb(tif), out / "images" / f"{tif.stem}.png")
            # IDTReeS delineated the crowns of the plot's surveyed trees, not every crown:
            # the trainer uses these as positives only (see rschat.train.trees).
            yield {"image": image, "split": split_of(tif.stem), "boxes": boxes, "partial": True}


EVALUATION_TILES = re.compile(r"OSBS_029|SOAP_061|SJER_3_252000_4107000_image_477", re.I)


def _deepforest(root: Path, out: Path) -> Iterator[dict]:
    from PIL import Image

    data = root / "src" / "deepforest" / "data"
    boxes_of: dict[str, list[list[float]]] = {}
    for table in data.glob("*_bbox.csv"):
        with table.open() as f:
            for r in csv.DictReader(f):
                boxes_of.setdefault(r["image_path"], []).append([float(r[k]) for k in ("xmin", "ymin", "xmax", "ymax")])
    for xml in data.glob("*.xml"):
        tree = ET.parse(xml)
        name = tree.findtext("filename") or f"{xml.stem}.png"
        boxes_of[name] = [
            [float(o.findtext(f"bndbox/{k}") or 0) for k in ("xmin", "ymin", "xmax", "ymax")]
            for o in tree.iter("object")
        ]
    for name, boxes in sorted(boxes_of.items()):
        if EVALUATION_TILES.search(name) or not (data / name).is_file():
            continue  # the evaluation tiles never train a model; absent files (LFS, >4 MiB) are skipped
        rgb = np.asarray(Image.open(data / name).convert("RGB"))
        image = _save_png(rgb, out / "images" / f"{Path(name).stem}.png")
        yield {"image": image, "split": "train", "boxes": boxes}


# --- buildings: OpenAerialMap chips with OpenStreetMap footprints (HOT ramp data) -----

_CHIP = re.compile(r"OAM-(\d+)-(\d+)-(\d+)")


def tile_gsd_m(x: int, y: int, z: int) -> float:
    """Ground size of a web-Mercator tile pixel (256 px tiles) at the tile's latitude."""
    n = math.pi - 2 * math.pi * (y + 0.5) / 2**z
    lat = math.degrees(math.atan(math.sinh(n)))
    return 156543.03392 * math.cos(math.radians(lat)) / 2**z


def _ramp(root: Path, out: Path) -> Iterator[dict]:
    """Adjacent chips are stitched into mosaics (chips at zoom 21 are only ~20 m across,
    one house); each mosaic is one item with its building mask."""
    import rasterio

    base = root / "ramp-data" / "TRAIN" / "HOTOSM" / "2"
    pairs = {}
    for png in sorted(base.glob("data/*/*.png")):
        label = base / "labels" / png.parent.name / f"{png.stem}.tif"
        if label.is_file():
            pairs[png.stem] = (png, label)
    groups: dict[tuple[str, int], dict[tuple[int, int], tuple[Path, Path]]] = {}
    for stem, pair in pairs.items():
        m = _CHIP.fullmatch(stem)
        if m:
            x, y, z = map(int, m.groups())
            groups.setdefault((pair[0].parent.name, z), {})[(x, y)] = pair
    from PIL import Image

    for (part, z), chips in sorted(groups.items()):
        for block in _blocks(chips, 8):
            xs, ys = [k[0] for k in block], [k[1] for k in block]
            x0, y0 = min(xs), min(ys)
            w, h = (max(xs) - x0 + 1) * 256, (max(ys) - y0 + 1) * 256
            rgb, mask = np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.uint8)
            seen, footprints = np.zeros((h, w), bool), np.zeros((h, w), np.int32)
            ids: dict[str, int] = {}  # a building's id across the chips that repeat its polygon
            for (x, y), (png, tif) in block.items():
                r, c = (y - y0) * 256, (x - x0) * 256
                rgb[r : r + 256, c : c + 256] = np.asarray(Image.open(png).convert("RGB"))[:256, :256]
                with rasterio.open(tif) as src:
                    mask[r : r + 256, c : c + 256] = (src.read(1)[:256, :256] > 0).astype(np.uint8) * 255
                    footprints[r : r + 256, c : c + 256] = _footprint_ids(tif.with_suffix(".geojson"), src, ids)
                seen[r : r + 256, c : c + 256] = True
            gsd = tile_gsd_m(x0, y0, z)
            footprints = join_at_seams(footprints, {i for k, i in ids.items() if k.startswith("{")})
            mask[contact_pixels(footprints, max(1, round(CONTACT_M / 2 / gsd)))] = CONTACT
            mask[~seen] = 128  # chips missing from the mosaic: ignored by the trainer
            key = f"ramp{part}_z{z}_{x0}_{y0}"
            yield {
                "image": _save_png(rgb, out / "images" / f"{key}.png"),
                "mask": _save_png(mask, out / "masks" / f"{key}.png"),
                "split": split_of(key),
                "gsd_m": round(tile_gsd_m(x0, y0, z), 4),
            }


# Buildings that touch are one blob in the footprint mask, and one building to a model
# trained on it. The strip where two footprints meet is marked CONTACT (background, weighted
# up in training: U-Net's weight map, ramp's "contact" class), so the model learns to leave a
# gap there and the app's connected parts count them apart.
CONTACT = 64
CONTACT_M = 1.0  # width of the strip: about two pixels of the building model's 0.4 m


def contact_pixels(footprints: np.ndarray, reach_px: int) -> np.ndarray:
    """Pixels within ``reach_px`` of two different footprints (ids > 0)."""
    from scipy import ndimage

    size = 2 * reach_px + 1
    top = ndimage.maximum_filter(footprints, size=size)
    big = np.iinfo(np.int32).max
    low = ndimage.minimum_filter(np.where(footprints > 0, footprints, big), size=size)
    return (top > 0) & (low < big) & (top != low)


def join_at_seams(footprints: np.ndarray, loose: set[int], chip: int = 256) -> np.ndarray:
    """One id for a building without an OSM id that the chips cut at their seams: each chip
    holds its own clipped polygon, so the halves would meet as two buildings and get a
    contact strip across the roof. Halves of such buildings touching across a seam join."""
    parent = np.arange(int(footprints.max()) + 1)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    h, w = footprints.shape
    seams = [(footprints[:, c - 1], footprints[:, c]) for c in range(chip, w, chip)]
    seams += [(footprints[r - 1], footprints[r]) for r in range(chip, h, chip)]
    for a, b in seams:
        for i, j in set(zip(a.tolist(), b.tolist(), strict=True)):
            if i != j and i in loose and j in loose:
                parent[root(i)] = root(j)
    return np.asarray([root(i) for i in range(len(parent))], np.int32)[footprints]


def _footprint_ids(geojson: Path, src: object, ids: dict[str, int]) -> np.ndarray:
    """The chip's OpenStreetMap footprints burnt in with one id per building (256 x 256)."""
    from rasterio import features

    if not geojson.is_file():
        return np.zeros((256, 256), np.int32)
    shapes = []
    for feature in json.loads(geojson.read_text()).get("features", []):
        geometry = feature.get("geometry")
        if not geometry:
            continue
        key = str((feature.get("properties") or {}).get("osm_id") or json.dumps(geometry, sort_keys=True))
        shapes.append((geometry, ids.setdefault(key, len(ids) + 1)))
    if not shapes:
        return np.zeros((256, 256), np.int32)
    burnt = features.rasterize(shapes, out_shape=(256, 256), transform=src.transform, fill=0, dtype="int32")  # type: ignore[attr-defined]
    return np.asarray(burnt, np.int32)


def _blocks(chips: dict[tuple[int, int], tuple[Path, Path]], side: int) -> Iterator[dict]:
    """Chips grouped into side x side blocks of the tile grid (a mosaic per block)."""
    by_block: dict[tuple[int, int], dict] = {}
    for (x, y), pair in chips.items():
        by_block.setdefault((x // side, y // side), {})[(x, y)] = pair
    yield from (by_block[k] for k in sorted(by_block))


SOURCES = {
    s.name: s
    for s in (
        Source(
            "ucmerced", "scene", "527760681/Keras-Remote-sensing-image-retrieval", "ab097bb",
            "public domain (USGS National Map orthoimagery)",
            "UC Merced Land Use Dataset (Yang and Newsam, 2010); imagery courtesy of the USGS National Map",
            0.3, _ucmerced,
        ),
        Source(
            "eurosat", "scene", "FlyBulll/Baris_Cem_Bostancioglu_EuroSAT_RGB", "f4fc3430",
            "MIT (EuroSAT, phelber/EuroSAT); contains modified Copernicus Sentinel data (free and open)",
            "EuroSAT (Helber, Bischke, Dengel and Borth, 2019), RGB version; a faithful copy of its 27,000 "
            "tiles at data/raw/eurosat/2750; contains modified Copernicus Sentinel-2 data",
            10.0, _eurosat,
        ),
        Source(
            "urban-trees", "points", "jonathanventura/urban-tree-detection-data", "78e81bdb",
            "CC BY 4.0 (annotations); NAIP imagery public domain",
            "Ventura et al. (2024), Individual Tree Detection in Large-Scale Urban Environments using "
            "High-Resolution Multispectral Imagery; NAIP via the AWS Open Data registry",
            0.6, _urban_trees,
        ),
        Source(
            "idtrees", "boxes", "lamaoudi/883_idtrees", "2cf6da1f",
            "CC BY 4.0 (IDTReeS 2020); NEON data CC0 / CC BY 4.0",
            "IDTReeS 2020 competition data (Graves, Marconi et al.); data courtesy of NEON/Battelle",
            0.1, _idtrees,
        ),
        Source(
            "deepforest", "boxes", "weecology/DeepForest", "1bad4419",
            "MIT (DeepForest); NEON data CC0 / CC BY 4.0",
            "DeepForest (Weinstein et al.) example annotations; data courtesy of NEON/Battelle",
            0.1, _deepforest,
        ),
        Source(
            "ramp", "mask", "hotosm/fAIr-utilities", "d83e21c0",
            "imagery CC BY 4.0 (OpenAerialMap); building footprints ODbL (OpenStreetMap)",
            "Imagery from OpenAerialMap contributors (CC BY 4.0); footprints (c) OpenStreetMap contributors "
            "(ODbL); chips prepared by the Humanitarian OpenStreetMap Team (ramp / fAIr)",
            None, _ramp,
        ),
    )
}  # fmt: skip


def prepare(name: str, root: Path, out: Path) -> dict:
    src = SOURCES[name]
    out.mkdir(parents=True, exist_ok=True)
    items = list(src.read(root, out))
    manifest = {
        "source": src.name,
        "task": src.task,
        "repo": src.repo,
        "commit": src.commit,
        "licence": src.licence,
        "attribution": src.attribution,
        "gsd_m": src.gsd_m,
        "items": items,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", choices=sorted(SOURCES), help="which source (see the README's table)")
    parser.add_argument("--from", dest="root", required=True, help="the source repository, checked out")
    parser.add_argument("--out", required=True, help="folder to write images/, masks/ and manifest.json")


def run(args: argparse.Namespace) -> int:
    manifest = prepare(args.source, Path(args.root), Path(args.out))
    counts: dict[str, int] = {}
    for item in manifest["items"]:
        counts[item["split"]] = counts.get(item["split"], 0) + 1
    print(f"{args.source}: {len(manifest['items'])} items ({counts}) -> {args.out}/manifest.json")
    print(f"licence: {manifest['licence']}\nattribution: {manifest['attribution']}")
    return 0
