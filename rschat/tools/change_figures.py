"""The figures and sentences of a ``detect_changes`` result: changed share, area and
regions, and for a building or land-cover target what appeared and went. Apart from the
tool's file so the tool reads as inputs -> mask -> figures -> answer."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage

from rschat.backends import landcover_rules as lcr
from rschat.backends.cover_change import CoverChange, transitions
from rschat.geo.places import place
from rschat.geo.raster import Raster
from rschat.geo.vector import Region, regions_geojson, regions_of
from rschat.tools.base import Figures
from rschat.tools.change_mask import BuildingChange


class ChangeFigures(Figures):
    changed_fraction: float
    changed_percent: float
    changed_pixels: int
    changed_area_m2: float | None
    changed_area_ha: float | None
    analysed_area_m2: float | None
    region_count: int
    largest_region_pixels: int
    largest_region_area_m2: float | None
    pixel_size_m: float | None
    # target 'building' only: the changed pixels split into buildings that appeared and went.
    appeared_count: int | None = None  # connected parts: touching buildings count as one
    gone_count: int | None = None
    appeared_pixels: int | None = None
    gone_pixels: int | None = None
    appeared_area_m2: float | None = None
    gone_area_m2: float | None = None
    # a land-cover target only ("how much forest was lost?"): the class on each date, its loss and gain.
    cover_before_percent: float | None = None  # of the judged area (valid, no cloud or shadow on either date)
    cover_after_percent: float | None = None
    cover_before_pixels: int | None = None
    cover_before_m2: float | None = None
    cover_after_m2: float | None = None
    lost_m2: float | None = None
    gained_m2: float | None = None
    lost_pixels: int | None = None
    gained_pixels: int | None = None
    lost_patches: int | None = None  # connected patches of the loss ("how many patches of forest were lost?")
    gained_patches: int | None = None
    lost_specks: int | None = None  # patches of one pixel: at the classifier's limit, often noise
    gained_specks: int | None = None
    lost_largest_m2: float | None = None
    gained_largest_m2: float | None = None
    # what the loss became on the after date and what the gain was on the before date:
    # 'bare soil 62% (2,546.10 ha), low vegetation 30% (1,231.80 ha)', largest first
    lost_became: str | None = None
    gained_was: str | None = None


def fmt_area(m2: float | None) -> str:
    if m2 is None:
        return "area unknown (no georeference)"
    return f"{m2:,.0f} m2 ({m2 / 1e4:,.2f} ha)"


def summary(
    scope: str, f: ChangeFigures, regions: list[Region], approximate: bool = False, cover: str | None = None
) -> str:
    """The result in one line; a region's pixels traced on an overview are approximate.
    ``cover``: the land-cover class whose loss and gain the figures hold."""
    if cover is not None:
        text = f"in {scope}, {cover_text(f, cover)}"
    elif f.appeared_count is not None:
        text = (
            f"in {scope}, {buildings_text(f)}; together they cover {f.changed_percent:.1f}% of the analysed area "
            f"({f.changed_pixels:,} pixels)"
        )
    else:
        text = (
            f"in {scope}, {f.changed_percent:.1f}% of the analysed area changed ({f.changed_pixels:,} pixels, "
            f"{fmt_area(f.changed_area_m2)}) in {len(regions)} regions"
        )
    if regions:
        big, px = regions[0], f"{'about ' if approximate else ''}{regions[0].pixels:,} pixels"
        text += f"; the largest covers {f'{px} (no georeference, so no area)' if big.area_m2 is None else f'{fmt_area(big.area_m2)} ({px})'}"
    return text


def buildings_text(f: ChangeFigures, gone_first: bool = False) -> str:
    """'3 buildings appeared (1,240 m2) and 1 building disappeared, demolished or no longer seen
    (90 m2)' (pixels where the pixel size is unknown); the ones that went first when asked."""

    def size(px: int | None, m2: float | None) -> str:
        return f"{m2:,.0f} m2" if m2 is not None else f"{px:,} pixels"

    def buildings(n: int | None) -> str:
        return f"{n} building" + ("" if n == 1 else "s")

    appeared = f"{buildings(f.appeared_count)} appeared ({size(f.appeared_pixels, f.appeared_area_m2)})"
    gone = (
        f"{buildings(f.gone_count)} disappeared, demolished or no longer seen ({size(f.gone_pixels, f.gone_area_m2)})"
    )
    return f"{gone}, and {appeared}" if gone_first else f"{appeared} and {gone}"


def with_buildings(f: ChangeFigures, before: Raster, b: BuildingChange, mask: np.ndarray) -> ChangeFigures:
    """The figures with the changed pixels split into buildings that appeared and went
    (inside the final mask, so a drawn region clips them too)."""
    appeared, gone = b.appeared & mask, b.gone & mask
    return f.model_copy(
        update={
            "appeared_count": int(ndimage.label(appeared)[1]),
            "gone_count": int(ndimage.label(gone)[1]),
            "appeared_pixels": int(appeared.sum()),
            "gone_pixels": int(gone.sum()),
            "appeared_area_m2": before.area_m2(appeared),
            "gone_area_m2": before.area_m2(gone),
        }
    )


def cover_text(f: ChangeFigures, cover: str) -> str:
    """'trees covered 72.1% (1,234.5 ha) on the before date and 51.3% (878.2 ha) on the after:
    401.2 ha lost and 45.0 ha gained (net -356.2 ha)' (pixels without a pixel size)."""
    name = cover.replace("_", " ")

    def size(px: int | None, m2: float | None) -> str:
        if m2 is None:
            return f"{px:,} pixels"
        return f"{m2:,.0f} m2" if m2 < 1e3 else f"{m2 / 1e4:,.2f} ha ({m2:,.0f} m2)"

    def share(pct: float | None, m2: float | None) -> str:
        return f"{pct or 0.0:.1f}%" + (f" ({m2 / 1e4:,.2f} ha)" if m2 is not None else "")

    net = ""
    if f.lost_m2 is not None and f.gained_m2 is not None:
        net = f" (net {(f.gained_m2 - f.lost_m2) / 1e4:+,.2f} ha)"
    # "how much forest was lost, in hectares and as a percentage?": the loss as a share of the first date's cover
    of_before = f" ({100 * (f.lost_pixels or 0) / f.cover_before_pixels:.1f}% of it)" if f.cover_before_pixels else ""
    return (
        f"{name} covered {share(f.cover_before_percent, f.cover_before_m2)} of the judged area on the before date "
        f"and {share(f.cover_after_percent, f.cover_after_m2)} on the after: {size(f.lost_pixels, f.lost_m2)} "
        f"lost{of_before} and {size(f.gained_pixels, f.gained_m2)} gained{net}"
    )


class CoverParts(NamedTuple):
    """A class's loss and gain inside the analysed pixels, as connected patches (computed
    once: the figures count them, the GeoJSON outlines them)."""

    change: CoverChange
    lost: np.ndarray
    gained: np.ndarray
    lost_patches: tuple[np.ndarray, list[Region]]
    gained_patches: tuple[np.ndarray, list[Region]]


def cover_parts(c: CoverChange, mask: np.ndarray, before: Raster) -> CoverParts:
    lost, gained = c.lost & mask, c.gained & mask
    return CoverParts(c, lost, gained, regions_of(lost, before), regions_of(gained, before))


def cover_count_text(f: ChangeFigures, cover: str, lost: bool) -> str:
    """'1,234 separate patches of trees were lost (39,427 ha in all; the largest 812 ha);
    903 of them are single pixels, at the classifier's limit'."""
    what = "lost" if lost else "gained"
    n, specks = (f.lost_patches, f.lost_specks) if lost else (f.gained_patches, f.gained_specks)
    m2, largest = (f.lost_m2, f.lost_largest_m2) if lost else (f.gained_m2, f.gained_largest_m2)
    text = f"{n or 0:,} separate patch{'' if n == 1 else 'es'} of {cover} {'was' if n == 1 else 'were'} {what}"
    if n and m2 is not None:
        text += f" ({fmt_area(m2)} in all; the largest {fmt_area(largest)})"
    if specks:
        text += f"; {specks:,} of them are single pixels, at the limit of what the classifier tells apart"
    return text


def with_cover(f: ChangeFigures, before: Raster, parts: CoverParts, valid: np.ndarray) -> ChangeFigures:
    """The figures with the class on each date, its loss and its gain, over the judged
    pixels inside the analysed ones (``valid`` and ``parts`` are clipped to a drawn region)."""
    c = parts.change
    judged = c.judged & valid
    n = max(1, int(judged.sum()))
    lost, gained = parts.lost, parts.gained
    return f.model_copy(
        update={
            "cover_before_percent": 100.0 * int((c.before & judged).sum()) / n,
            "cover_after_percent": 100.0 * int((c.after & judged).sum()) / n,
            "cover_before_pixels": int((c.before & judged).sum()),
            "cover_before_m2": before.area_m2(c.before & judged),
            "cover_after_m2": before.area_m2(c.after & judged),
            "lost_m2": before.area_m2(lost),
            "gained_m2": before.area_m2(gained),
            "lost_pixels": int(lost.sum()),
            "gained_pixels": int(gained.sum()),
            "lost_patches": len(parts.lost_patches[1]),
            "gained_patches": len(parts.gained_patches[1]),
            "lost_specks": sum(r.pixels == 1 for r in parts.lost_patches[1]),
            "gained_specks": sum(r.pixels == 1 for r in parts.gained_patches[1]),
            "lost_largest_m2": parts.lost_patches[1][0].area_m2 if parts.lost_patches[1] else None,
            "gained_largest_m2": parts.gained_patches[1][0].area_m2 if parts.gained_patches[1] else None,
            "lost_became": _transition_text(c, lost, before, became=True),
            "gained_was": _transition_text(c, gained, before, became=False),
        }
    )


def _transition_text(c: CoverChange, pixels: np.ndarray, before: Raster, became: bool) -> str | None:
    """'bare soil 62% (2,546.10 ha), low vegetation 30% (1,231.80 ha)': the classes the
    pixels had on the other date, largest first, down to 5% (None when there are none)."""
    found = transitions(c, pixels, became)
    total = sum(n for _, n in found)
    if not total:
        return None
    classes = c.classes_after if became else c.classes_before
    parts: list[str] = []
    for name, n in found:
        if n < 0.05 * total and parts:
            break
        m2 = before.area_m2(pixels & (classes == lcr.CLASSES.index(name))) if classes is not None else None
        size = "" if not m2 else f" ({m2 / 1e4:,.2f} ha)" if m2 >= 1e4 else f" ({m2:,.0f} m2)"
        parts.append(f"{name.replace('_', ' ')} {100 * n / total:.0f}%{size}")
    return ", ".join(parts)


def figures_of(before: Raster, valid: np.ndarray, mask: np.ndarray, regions: list[Region]) -> ChangeFigures:
    """Changed share, area and regions of a change mask over the valid pixels."""
    return change_figures(
        int(valid.sum()), int(mask.sum()), before.area_m2(mask), before.area_m2(valid), regions, before.pixel_size_m()
    )


def change_figures(
    valid_px: int,
    changed_px: int,
    changed_m2: float | None,
    valid_m2: float | None,
    regions: list[Region],
    pixel_size_m: float | None,
) -> ChangeFigures:
    """The figures from pixel counts and areas (in memory and tiled alike)."""
    largest = regions[0] if regions else None
    return ChangeFigures(
        changed_fraction=changed_px / valid_px if valid_px else 0.0,
        changed_percent=100.0 * changed_px / valid_px if valid_px else 0.0,
        changed_pixels=changed_px,
        changed_area_m2=changed_m2,
        changed_area_ha=None if changed_m2 is None else changed_m2 / 1e4,
        analysed_area_m2=valid_m2,
        region_count=len(regions),
        largest_region_pixels=largest.pixels if largest else 0,
        largest_region_area_m2=largest.area_m2 if largest else (0.0 if changed_m2 is not None else None),
        pixel_size_m=pixel_size_m,
    )


def cover_layers(parts: CoverParts, mask: np.ndarray, before: Raster) -> tuple[np.ndarray, str, dict, str]:
    """What a class's change writes and says apart from any change: the mask coded 1 = lost,
    2 = gained (one file a GIS can style), its regions as GeoJSON with kind 'trees lost' /
    'trees gained', and where the largest loss and gain lie ('in the south-east')."""
    c = parts.change
    name = c.target.replace("_", " ")
    lost, gained = parts.lost, parts.gained
    collections, where = [], []
    for (labels, regions), what in ((parts.lost_patches, "lost"), (parts.gained_patches, "gained")):
        collections.append(regions_geojson(labels, regions, before, f"{name} {what}"))
        if regions:
            x, y = regions[0].centroid
            where.append(f"the largest patch {what} is in {place(x, y, mask.shape[1], mask.shape[0])} of the image")
    for feature in collections[1]["features"]:  # region ids unique across both kinds
        feature["properties"]["region_id"] += len(collections[0]["features"])
    geojson = {**collections[0], "features": collections[0]["features"] + collections[1]["features"]}
    coded = lost.astype(np.uint8) + 2 * gained.astype(np.uint8)
    coded[~c.judged] = UNJUDGED  # cloud, shadow or no data on a date: not "unchanged"
    what = f"change mask (GeoTIFF, 1 = {name} lost, 2 = {name} gained, {UNJUDGED} = not judged: no data)"
    return coded, what, geojson, "; ".join(where)


UNJUDGED = 255  # the coded mask's no-data value
