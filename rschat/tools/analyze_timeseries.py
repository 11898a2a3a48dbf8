"""Tool ``analyze_timeseries``: an index through N dated images: table, plot, trend, jumps."""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import stats

from rschat.geo.bands import available_indices, spectral_index
from rschat.geo.errors import InputError
from rschat.geo.pair import align_pair
from rschat.geo.preview import rgb_preview
from rschat.geo.raster import Raster
from rschat.geo.stack import stack_names
from rschat.tools.base import (
    Args,
    Artifact,
    Box,
    Figures,
    Kept,
    Phrase,
    Reading,
    Tool,
    ToolContext,
    ToolResult,
    UseRegion,
    clipped_box,
    plain_answer,
    region_mask_of,
)


class TimeseriesArgs(Args):
    index: Literal["auto", "water", "ndvi", "ndwi", "mndwi", "ndbi", "brightness"] = "auto"
    box: Box = None
    region: UseRegion = False


class TimeseriesFigures(Figures):
    dates: int
    first_mean: float
    last_mean: float
    trend_per_year: float
    trend_p_value: float
    trend_r2: float
    largest_change: float
    first_water_percent: float | None = None  # water indices only: share above 0
    last_water_percent: float | None = None


PHRASES = (
    Phrase(
        "timeseries",
        re.compile(
            r"\btrend|time.?series|over time|through time|\bevolution|each (year|date)|"
            r"\bsince (19|20)\d\d|over the (years|dates)",
            re.I,
        ),
        30,
    ),
)


def _index_map(raster: Raster, index: str) -> np.ndarray:
    if index == "brightness":
        rgb = rgb_preview(raster).astype(np.float32) / 255.0
        out = rgb.mean(axis=-1)
        out[~raster.valid_mask()] = np.nan
        return out
    values = spectral_index(raster, index)
    assert values is not None
    return values


def _stack(ctx: ToolContext) -> tuple[list[str], list[Raster]]:
    """The dated stack's names and rasters, all on the first date's grid."""
    names = stack_names(dict(ctx.rasters))
    if len(names) < 3:
        raise InputError(
            "A time series needs three or more images in one upload (dates in the file names, "
            "e.g. 2009.tif or scene_20200831.tif)."
        )
    ref = ctx.rasters[names[0]]
    return names, [ref] + [align_pair(ref, ctx.rasters[n])[1] for n in names[1:]]


def _choose_index(asked: str, ref: Raster) -> str:
    """The index to follow: 'auto' -> NDVI (else brightness), 'water' -> MNDWI (else NDWI)."""
    usable = available_indices(ref)
    index = asked
    if index == "auto":
        index = "ndvi" if "ndvi" in usable else "brightness"
    if index == "water":  # MNDWI (green/SWIR1) separates water from built-up better than NDWI
        index = "mndwi" if "mndwi" in usable else "ndwi"
    if index not in (*usable, "brightness"):
        raise InputError(
            f"{index.upper()} needs bands this stack does not name ({', '.join(ref.band_names)}). "
            "Say the band order, e.g. 'the bands are red, green, blue, NIR'."
        )
    return index


def _decimal_years(rasters: list[Raster], notes: list[str]) -> tuple[list[Any], np.ndarray]:
    """(dates, decimal years); undated images are placed one year apart, with a note."""
    dates = [r.date for r in rasters]
    if any(d is None for d in dates):
        notes.append("some images carry no date; they are placed in upload order, one year apart")
        base = next((d for d in dates if d), None)
        dates = [d or (base.replace(year=base.year + i) if base else None) for i, d in enumerate(dates)]
    years = np.array([d.year + (d.timetuple().tm_yday - 1) / 365.25 if d else float(i) for i, d in enumerate(dates)])
    return dates, years


def _row(name: str, raster: Raster, date: str, values: np.ndarray) -> dict[str, Any]:
    """One date's statistics of the index over the valid pixels."""
    finite = values[np.isfinite(values)]
    nan = float("nan")
    return {
        "image": name,
        "source": raster.name,
        "date": date,
        "mean": float(finite.mean()) if finite.size else nan,
        "median": float(np.median(finite)) if finite.size else nan,
        "std": float(finite.std()) if finite.size else nan,
        "valid_percent": 100.0 * finite.size / values.size,
        "above_zero_percent": 100.0 * float((finite > 0).mean()) if finite.size else nan,
    }


def _per_date(  # type: ignore[no-untyped-def]
    names: list[str], aligned: list[Raster], dates, index: str, ctx: ToolContext, inside, box: tuple[int, int, int, int]
) -> list[dict[str, Any]]:
    """Each date's row of statistics over the box (and the drawn region)."""
    x0, y0, x1, y1 = box
    rows: list[dict[str, Any]] = []
    previous = None
    for name, r, d in zip(names, aligned, dates, strict=True):
        values = _index_map(r, index)
        if inside is not None:
            values = np.where(inside, values, np.nan)
        label = ctx.rasters[name].date_label or (d.isoformat() if d else "")  # '1985' when only the year is known
        rows.append(_row(name, r, label, values[y0:y1, x0:x1]))
        if index in ("ndwi", "mndwi"):  # "when did the river move?": the pixels that turned water or land
            rows[-1]["water_switched_percent"] = _switched_percent(previous, values[y0:y1, x0:x1])
            previous = values[y0:y1, x0:x1]
    return rows


def _switched_percent(before: np.ndarray | None, after: np.ndarray) -> float:
    """The share (%) of the pixels valid on both dates that are water (index > 0) on one and
    not the other: a river that moves keeps its area but switches its banks; NaN on the
    first date."""
    if before is None:
        return float("nan")
    both = np.isfinite(before) & np.isfinite(after)
    return 100.0 * float(((before > 0) != (after > 0))[both].mean()) if both.any() else float("nan")


def _dates_with_data(
    rows: list[dict[str, Any]], years: np.ndarray, notes: list[str]
) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """The dates with valid pixels (rows, means, years); dates without any are left out of
    the trend with a note, and fewer than two usable dates is an InputError."""
    means = np.array([row["mean"] for row in rows])
    usable = np.isfinite(means)
    if usable.sum() < 2:
        raise InputError(
            "The stack has valid pixels on fewer than two dates in the analysed area (no data or clouds "
            "everywhere else), so there is no trend to give."
        )
    if not usable.all():
        skipped = ", ".join(row["date"] or row["image"] for row, ok in zip(rows, usable, strict=True) if not ok)
        notes.append(f"no valid pixels on {skipped}: left out of the trend")
    return [r for r, ok in zip(rows, usable, strict=True) if ok], means[usable], years[usable]


def _write_table(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _rate(slope_per_year: float, span_years: float) -> str:
    """The trend's rate in the unit its dates span: a season's series (May to September)
    read '+1.4622 per year', a rise no index can make in a year."""
    if span_years < 1:
        return f"{slope_per_year / 12:+.4f} per month"
    return f"{slope_per_year:+.4f} per year"


def _trend_text(fit: Any, span_years: float) -> str:
    """The fitted trend in words; a flat series (identical dates) has no trend to test."""
    if fit.slope == 0 or not np.isfinite(fit.pvalue):
        return "no change over the dates"
    trend = f"{'rising' if fit.slope > 0 else 'falling'}, {'' if fit.pvalue < 0.05 else 'not '}significant"
    return f"trend {_rate(fit.slope, span_years)} ({trend}, p={fit.pvalue:.3f})"


def run(args: TimeseriesArgs, ctx: ToolContext) -> ToolResult:
    # 1. Inputs: the dated stack on the first image's grid, and the index.
    names, aligned = _stack(ctx)
    ref = aligned[0]
    index = _choose_index(args.index, ref)
    notes: list[str] = []
    dates, years = _decimal_years([ctx.rasters[n] for n in names], notes)

    # 2. Per-date statistics over the image, the box or the drawn region.
    x0, y0, x1, y1 = clipped_box(args.box, ref) if args.box else (0, 0, ref.width, ref.height)
    inside = region_mask_of(args.region, ctx, ref)
    rows = _per_date(names, aligned, dates, index, ctx, inside, (x0, y0, x1, y1))
    rows, means, years = _dates_with_data(rows, years, notes)
    ctx.progress(0.6, "statistics computed")

    # 3. Trend (least squares, per year) and the largest jump between consecutive dates.
    fit = stats.linregress(years, means)
    k = int(np.nanargmax(np.abs(np.diff(means))))
    figures = TimeseriesFigures(
        dates=len(rows), first_mean=float(means[0]), last_mean=float(means[-1]), trend_per_year=float(fit.slope),
        trend_p_value=float(fit.pvalue), trend_r2=float(fit.rvalue**2), largest_change=float(means[k + 1] - means[k]),
    )  # fmt: skip
    jump = f"{rows[k]['date'] or rows[k]['image']} -> {rows[k + 1]['date'] or rows[k + 1]['image']}"

    # 4. Artifacts (table and plot) and the summary.
    table = _write_table(ctx.path(f"timeseries_{index}.csv"), rows)
    plot = ctx.path(f"timeseries_{index}.png")
    _plot(years, means, [row["std"] for row in rows], fit, index, plot)
    label = index.upper() if index != "brightness" else "brightness (0-1)"
    water = ""
    if index in ("ndwi", "mndwi"):
        shares = [row["above_zero_percent"] for row in rows]
        figures.first_water_percent, figures.last_water_percent = shares[0], shares[-1]
        water = f"; water ({label} > 0) covered {shares[0]:.1f}% on the first date and {shares[-1]:.1f}% on the last"
    summary = (
        f"mean {label} over {len(rows)} dates went from {means[0]:.3f} to {means[-1]:.3f}; {_trend_text(fit, float(years[-1] - years[0]))}; largest change "
        f"{figures.largest_change:+.3f} between {jump}{water}"
    )
    where = "the box" if args.box else "the image"
    return ToolResult(
        summary=summary,
        figures=figures,
        artifacts=[
            Artifact("plot", plot, f"{label} through time (PNG)"),
            Artifact("table", table, "per-date table (CSV)"),
        ],
        method=f"per-date mean of {label} over the valid pixels of {where}; images reprojected onto the first "
        "date's grid; least-squares trend",
        limits=["clouds, haze and seasonal timing differ between dates and move the index; check the table"],
        notes=notes,
        kept=Kept(rows=rows, target=index, scope=where),
    )


def answer(result: ToolResult, reading: Reading) -> str:
    """The series in one line, or one date's row when the question names its year
    (focus 'date:2005', a follow-up on the stored table)."""
    if reading.focus and reading.focus.startswith("date:"):
        year = reading.focus.split(":", 1)[1]
        rows = [r for r in result.kept.rows if str(r["date"]).startswith(year) or year in str(r["image"])]
        label = (result.kept.target or "index").upper()
        if not rows:
            dates = ", ".join(str(r["date"] or r["image"]) for r in result.kept.rows)
            skipped = [n for n in result.notes if n.startswith("no valid pixels on") and year in n]
            why = "its image there had no valid pixel (cloud or no data)" if skipped else "no image of that year"
            return f"The series has no usable date in {year}: {why} (dates used: {dates}) ({reading.source})."
        said = "; ".join(
            f"{'in' if len(str(r['date'])) == 4 else 'on'} {r['date'] or r['image']} the mean {label} over {result.kept.scope} was {r['mean']:.3f} "
            f"(median {r['median']:.3f}, std {r['std']:.3f}; {r['valid_percent']:.0f}% of the pixels valid)"
            for r in rows
        )
        return f"{said[0].upper()}{said[1:]} ({reading.source})."
    if reading.focus and reading.focus.startswith("date_of:"):
        return _extreme_date_text(result, reading)
    if reading.focus == "when_changed":
        return _when_text(result, reading)
    if reading.focus and reading.focus.startswith("between:"):
        return _between_text(result, reading)
    return plain_answer("Time series")(result, reading)


def _between_text(result: ToolResult, reading: Reading) -> str:
    """'What about between 2000 and 2020 only?' after a trend: the mean on those two dates
    and its change, from the stored table (focus 'between:t2:t3', the stack's names)."""
    first, last = (reading.focus or "").split(":")[1:3]
    rows = {r.get("image"): r for r in result.kept.rows or []}
    label = (result.kept.target or "index").upper()
    a, b = rows.get(first), rows.get(last)
    if a is None or b is None:
        return f"The series has no usable value on one of those dates ({reading.source})."
    when = [str(r["date"] or r["source"]) for r in (a, b)]
    change = b["mean"] - a["mean"]
    return (
        f"**{change:+.3f}**: the mean {label} over {result.kept.scope} went from {a['mean']:.3f} ({when[0]}) to "
        f"{b['mean']:.3f} ({when[1]}) ({reading.source})."
    )


def _when_text(result: ToolResult, reading: Reading) -> str:
    """'When did the river move?': the interval between consecutive dates where most pixels
    turned water or land (a water index), else where the mean index moved most."""
    rows = result.kept.rows or []
    label = (result.kept.target or "index").upper()
    when = [str(r["date"] or r["image"]) for r in rows]
    switched = [float(r.get("water_switched_percent", np.nan)) for r in rows]
    if len(rows) > 1 and all(np.isfinite(s) for s in switched[1:]):
        k = int(np.argmax(switched[1:])) + 1
        steps = ", ".join(f"{when[i - 1]} -> {when[i]} {switched[i]:.1f}%" for i in range(1, len(rows)))
        return (
            f"Most change came between {when[k - 1]} and {when[k]}: {switched[k]:.1f}% of the pixels turned water or "
            f"land ({label} > 0 on one date, not the other). Between consecutive dates: {steps}. The dates bound when "
            f"it happened; images between them would narrow it ({reading.source})."
        )
    means = [r["mean"] for r in rows]
    k = int(np.nanargmax(np.abs(np.diff(means)))) + 1 if len(rows) > 1 else 0
    steps = ", ".join(f"{when[i - 1]} -> {when[i]} {means[i] - means[i - 1]:+.3f}" for i in range(1, len(rows)))
    return (
        f"The mean {label} changed most between {when[k - 1]} and {when[k]} ({means[k] - means[k - 1]:+.3f}); between "
        f"consecutive dates: {steps} ({reading.source})."
    )


def extreme_row(result: ToolResult, focus: str) -> dict[str, Any] | None:
    """The table's row with the lowest ('date_of:min') or highest ('date_of:max') mean, or
    water share ('date_of:max:water')."""
    key = "above_zero_percent" if focus.endswith(":water") else "mean"
    rows = [r for r in result.kept.rows or [] if np.isfinite(r[key])]
    return (min if ":min" in focus else max)(rows, key=lambda r: r[key]) if rows else None


def _extreme_date_text(result: ToolResult, reading: Reading) -> str:
    focus = reading.focus or ""
    row = extreme_row(result, focus)
    label = (result.kept.target or "index").upper()
    if row is None:
        return f"The series has no date with valid pixels ({reading.source})."
    when = row["date"] or row["image"]
    on = "in" if len(str(when)) == 4 else "on"  # 'in 1990', 'on 2015-09-26'
    most = "least" if ":min" in focus else "most"
    if focus.endswith(":water"):
        shares = ", ".join(f"{r['date'] or r['image']} {r['above_zero_percent']:.1f}%" for r in result.kept.rows or [])
        return (
            f"Water ({label} > 0) covered the {most} of {result.kept.scope} {on} {when}: {row['above_zero_percent']:.1f}% "
            f"(per date: {shares}) ({reading.source})."
        )
    means = ", ".join(f"{r['date'] or r['image']} {r['mean']:.3f}" for r in result.kept.rows or [])
    return (
        f"The mean {label} over {result.kept.scope} was {'lowest' if ':min' in focus else 'highest'} {on} "
        f"{when}: {row['mean']:.3f} (per date: {means}) ({reading.source})."
    )


def _plot(years, means, stds, fit, index: str, path) -> None:  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import dates as mdates

    # Dates on the axis, not decimal years ("0.35 ... 0.70 +2.016e3" for one season).
    dated = bool(np.min(years) >= 1000)  # undated images are placed at 0, 1, 2, ...
    when = (
        np.array([dt.datetime(int(y), 1, 1) + dt.timedelta(days=(y - int(y)) * 365.25) for y in years])
        if dated
        else years
    )
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.errorbar(when, means, yerr=stds, fmt="o-", capsize=3, label=f"mean {index} (+/- 1 std)")
    rate = _rate(fit.slope, float(years[-1] - years[0])).replace(" per ", "/")
    ax.plot(when, fit.intercept + fit.slope * years, "--", label=f"trend {rate}")
    if dated:
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlabel("date" if dated else "image (upload order; no dates)")
    ax.set_ylabel(index)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


HELP = "- **time series** of NDVI, NDWI or brightness over 3+ dated images (*show the NDVI trend*)"


TOOL = Tool(
    name="analyze_timeseries",
    description=(
        "Follow a spectral index (NDVI, NDWI, MNDWI, NDBI, or brightness) through a dated stack of 3+ images: "
        "per-date table, plot, trend per year, and the dates of the largest change."
    ),
    args=TimeseriesArgs,
    figures=TimeseriesFigures,
    function=run,
    answer=answer,
    phrases=PHRASES,
    layer=None,
    reads_colours=lambda args: False,  # named bands' indices only
    help=HELP,
    needs=(),
)
