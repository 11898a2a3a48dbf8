"""How much of a nearly unchanged pair "what changed?" flags: a label-free check of the
change detector's false alarms on real multi-date imagery.

    python benchmarks/change_false_alarms.py --images DIR [--years 2016,2018] [--limit 1000] [--target building]
        [--cities claremont,long_beach | all]

DIR holds the NAIP tiles of jonathanventura/urban-tree-detection-data (CC BY 4.0; NAIP is
public domain), ``images/<city>_<year>_<n>.tif``: the same 256 x 256 places at 0.6 m,
co-registered, in 2016, 2018 and 2020. Get them with the search tool's ``fetch``
(github:jonathanventura/urban-tree-detection-data) and ``git show HEAD:images/NAME``, or a
clone. Residential California over two years is nearly unchanged (a new house here and
there), so most of what is flagged is false alarm: the share is an upper bound on the
false-alarm rate. Runs ``detect_changes`` as the app does (any change, or with ``--target
building`` buildings that appeared or went), with the learned building model unless
RSCHAT_LITE_MODELS=none, and prints the mean, median and 90th percentile of the changed
share per pair.

The learned change model (``rschat train change``) learned "unchanged" from the other
cities' pairs; claremont and long_beach never trained it, so they are the default (192
pairs per two dates); ``--cities all`` scores every place.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import numpy as np

from rschat.geo import read_raster
from rschat.tools import REGISTRY
from rschat.tools.base import ToolContext

NAME = re.compile(r"(?P<place>.+)_(?P<year>\d{4})_(?P<n>\d+)\.tif$")


def pairs(images: Path, first: str, second: str, limit: int, cities: str = "") -> list[tuple[Path, Path]]:
    found = []
    wanted = {c for c in cities.split(",") if c}
    for path in sorted(images.glob(f"*_{first}_*.tif")):
        m = NAME.match(path.name)
        if not m or (wanted and m["place"] not in wanted):
            continue
        if (other := images / f"{m['place']}_{second}_{m['n']}.tif").exists():
            found.append((path, other))
    return found[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--years", default="2016,2018")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--target", choices=["any", "building"], default="any")
    parser.add_argument(
        "--cities", default="claremont,long_beach",
        help="only these places, comma-separated (default: the two the change model never trained on; 'all': every one)",
    )  # fmt: skip
    args = parser.parse_args()
    first, second = args.years.split(",")
    todo = pairs(args.images, first, second, args.limit, "" if args.cities == "all" else args.cities)
    if not todo:
        raise SystemExit(f"no {first}/{second} pairs named <place>_<year>_<n>.tif in {args.images}")
    shares = []
    with tempfile.TemporaryDirectory() as tmp:
        for before, after in todo:
            ctx = ToolContext(rasters={"before": read_raster(before), "after": read_raster(after)}, out_dir=Path(tmp))
            result = REGISTRY["detect_changes"].run({"target": args.target}, ctx)
            shares.append(result.figures.changed_percent)  # type: ignore[union-attr]
    s = np.array(shares)
    print(
        f"detect_changes ({args.target} change) on {len(s)} NAIP pairs {first} -> {second}: changed share "
        f"mean {s.mean():.1f}%, median {np.median(s):.1f}%, 90th percentile {np.percentile(s, 90):.1f}%"
    )


if __name__ == "__main__":
    main()
