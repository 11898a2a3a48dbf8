"""Tool ``analyze_timeseries``: an index through N dated images: table, plot, trend, jumps."""

from __future__ import annotations

import csv
from typing import Any

import numpy as np
from scipy import stats

from rschat.geo.bands import available_indices, spectral_index
from rschat.geo.errors import InputError
from rschat.geo.pair import align_pair
from rschat.geo.preview import rgb_preview
from rschat.geo.raster import Raster, clip_box
from rschat.tools.base import BOX_SCHEMA, REGION_SCHEMA, Artifact, Tool, ToolContext, ToolResult, region_mask_of

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "index": {
            "type": "string",
            "enum": ["auto", "water", "ndvi", "ndwi", "mndwi", "ndbi", "brightness"],
            "default": "auto",
        },
        "box": BOX_SCHEMA,
        "region": REGION_SCHEMA,
    },
    "additionalProperties": False,
}


def stack_names(rasters: dict[str, Raster]) -> list[str]:
    """Names of the dated stack t1..tN in order."""
    names = [n for n in rasters if n.startswith("t") and n[1:].isdigit()]
    return sorted(names, key=lambda n: int(n[1:]))


def _index_map(raster: Raster, index: str) -> np.ndarray:
    if index == "brightness":
        rgb = rgb_preview(raster).astype(np.float32) / 255.0
        out = rgb.mean(axis=-1)
        out[~raster.valid_mask()] = np.nan
        return out
    values = spectral_index(raster, index)
    assert values is not None
    return values


def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    # 1. Inputs: the dated stack on the first image's grid, and the index.
    names = stack_names(dict(ctx.rasters))
    if len(names) < 3:
        raise InputError(
            "A time series needs three or more images in one upload (dates in the file names, "
            "e.g. 2009.tif or scene_20200831.tif)."
        )
    rasters = [ctx.rasters[n] for n in names]
    ref = rasters[0]
    aligned = [ref] + [align_pair(ref, r)[1] for r in rasters[1:]]
    index = args.get("index", "auto")
    usable = available_indices(ref)
    if index == "auto":
        index = "ndvi" if "ndvi" in usable else "brightness"
    if index == "water":  # MNDWI (green/SWIR1) separates water from built-up better than NDWI
        index = "mndwi" if "mndwi" in usable else "ndwi"
    if index not in (*usable, "brightness"):
        raise InputError(
            f"{index.upper()} needs bands this stack does not name ({', '.join(ref.band_names)}). "
            "Say the band order, e.g. 'the bands are red, green, blue, NIR'."
        )
    notes = []
    dates = [r.date for r in rasters]
    if any(d is None for d in dates):
        notes.append("some images carry no date; they are placed in upload order, one year apart")
        base = next((d for d in dates if d), None)
        dates = [d or (base.replace(year=base.year + i) if base else None) for i, d in enumerate(dates)]
    years = np.array([d.year + (d.timetuple().tm_yday - 1) / 365.25 if d else float(i) for i, d in enumerate(dates)])

    # 2. Per-date statistics over the image or the box.
    box = args.get("box")
    window = clip_box(box, ref.width, ref.height) if box else (0, 0, ref.width, ref.height)
    x0, y0, x1, y1 = window
    inside = region_mask_of(args, ctx, ref)
    rows = []
    for name, r, d in zip(names, aligned, dates, strict=True):
        values = _index_map(r, index)
        if inside is not None:
            values = np.where(inside, values, np.nan)
        values = values[y0:y1, x0:x1]
        finite = values[np.isfinite(values)]
        rows.append(
            {
                "image": name,
                "source": r.name,
                "date": d.isoformat() if d else "",
                "mean": float(finite.mean()) if finite.size else float("nan"),
                "median": float(np.median(finite)) if finite.size else float("nan"),
                "std": float(finite.std()) if finite.size else float("nan"),
                "valid_percent": 100.0 * finite.size / values.size,
                "above_zero_percent": 100.0 * float((finite > 0).mean()) if finite.size else float("nan"),
            }
        )
    means = np.array([row["mean"] for row in rows])
    ctx.progress(0.6, "statistics computed")

    # 3. Trend (least squares, per year) and the largest jump between consecutive dates.
    fit = stats.linregress(years, means)
    jumps = np.abs(np.diff(means))
    k = int(np.nanargmax(jumps))
    data: dict[str, float | int | None] = {
        "dates": len(rows),
        "first_mean": float(means[0]),
        "last_mean": float(means[-1]),
        "trend_per_year": float(fit.slope),
        "trend_p_value": float(fit.pvalue),
        "trend_r2": float(fit.rvalue**2),
        "largest_change": float(means[k + 1] - means[k]),
    }
    direction = "rising" if fit.slope > 0 else "falling"
    significance = "significant" if fit.pvalue < 0.05 else "not significant"
    jump = f"{rows[k]['date'] or rows[k]['image']} -> {rows[k + 1]['date'] or rows[k + 1]['image']}"

    # 4. Artifacts: table (CSV) and plot (PNG).
    stem = f"timeseries_{index}"
    table = ctx.out_dir / f"{stem}.csv"
    with table.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot = ctx.out_dir / f"{stem}.png"
    _plot(years, means, [row["std"] for row in rows], fit, index, plot)
    label = index.upper() if index != "brightness" else "brightness (0-1)"
    water = ""
    if index in ("ndwi", "mndwi"):
        shares = [row["above_zero_percent"] for row in rows]
        data["first_water_percent"], data["last_water_percent"] = shares[0], shares[-1]
        water = f"; water ({label} > 0) covered {shares[0]:.1f}% on the first date and {shares[-1]:.1f}% on the last"
    summary = (
        f"mean {label} over {len(rows)} dates went from {means[0]:.3f} to {means[-1]:.3f}; trend "
        f"{fit.slope:+.4f} per year ({direction}, {significance}, p={fit.pvalue:.3f}); largest change "
        f"{data['largest_change']:+.3f} between {jump}{water}"
    )
    return ToolResult(
        summary=summary,
        data=data,
        artifacts=[
            Artifact("plot", plot, f"{label} through time (PNG)"),
            Artifact("table", table, "per-date table (CSV)"),
        ],
        method=f"per-date mean of {label} over the valid pixels of "
        + ("the box" if box else "the image")
        + "; images reprojected onto the first date's grid; least-squares trend",
        limits=["clouds, haze and seasonal timing differ between dates and move the index; check the table"],
        notes=notes,
        memory={"rows": rows, "index": index, "jump": (names[k], names[k + 1])},
    )


def _plot(years, means, stds, fit, index: str, path) -> None:  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.errorbar(years, means, yerr=stds, fmt="o-", capsize=3, label=f"mean {index} (+/- 1 std)")
    ax.plot(years, fit.intercept + fit.slope * years, "--", label=f"trend {fit.slope:+.4f}/yr")
    ax.set_xlabel("year")
    ax.set_ylabel(index)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


TOOL = Tool(
    name="analyze_timeseries",
    description=(
        "Follow a spectral index (NDVI, NDWI, MNDWI, NDBI, or brightness) through a dated stack of 3+ images: "
        "per-date table, plot, trend per year, and the dates of the largest change."
    ),
    schema=SCHEMA,
    run=run,
    needs=(),
)
