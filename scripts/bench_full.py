"""Agent overhead per turn with a tiny VLM, and the memory of a 4-bit load, on the CPU.

    python scripts/bench_full.py

Builds the tiny random Qwen2-VL of the tests, loads it through rschat's loading code in
4-bit NF4 and unquantised, and times the same turn ("what changed?" on the example pair)
in lite mode and with the model planning and answering. Prints figures; asserts nothing.
For a real-size architecture on a GPU see scripts/gpu_check.py.
"""

from __future__ import annotations

import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fixtures.tiny_models import build_qwen2_vl  # noqa: E402
from rschat.agent import Workspace, turn  # noqa: E402
from rschat.backends import loading  # noqa: E402
from rschat.config import Settings  # noqa: E402

PAIR = [ROOT / "assets/examples/naip_2009-08-18.tif", ROOT / "assets/examples/naip_2015-09-26.tif"]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def turn_seconds(settings: Settings, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        ws = Workspace(settings)
        t0 = time.perf_counter()
        list(turn(ws, "what changed?", uploads=PAIR))
        times.append(time.perf_counter() - t0)
        ws.close()
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_qwen2_vl(Path(tmp) / "qwen2_vl", "2")
        lite = turn_seconds(Settings(work_dir=Path(tmp) / "w"))
        print(f"lite turn (rules + detect_changes, 512 px pair): {lite:.2f} s")
        for quant in ("none", "4bit"):
            loading.clear_cache()
            before = rss_mb()
            t0 = time.perf_counter()
            vlm = loading.load_vlm(Settings(vlm=str(folder), vlm_quant=quant))
            load_s = time.perf_counter() - t0
            params = sum(p.numel() for p in vlm.model.parameters())
            footprint = vlm.model.get_memory_footprint() / 1e6
            st = Settings(vlm=str(folder), vlm_quant=quant, work_dir=Path(tmp) / "w")
            with_model = turn_seconds(st)
            print(
                f"tiny Qwen2-VL, quant={quant}: load {load_s:.2f} s, {params / 1e6:.2f} M parameters, "
                f"model footprint {footprint:.2f} MB, peak RSS now {rss_mb():.0f} MB (was {before:.0f}); "
                f"turn {with_model:.2f} s, agent + model overhead {with_model - lite:+.2f} s per turn "
                "(a random model writes no valid plan: two planning tries, the rules take over, then it writes an answer)"
            )


if __name__ == "__main__":
    main()
