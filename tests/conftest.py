"""Test-wide setup: offline, deterministic, small synthetic rasters with explicit CRSs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

os.environ["HF_HUB_OFFLINE"] = "1"  # read once at import time by Hugging Face libraries
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
# One intra-op thread for torch: SAM's mask post-processing is many tiny ops, which two
# threads on two cores (shared with the app under test) slow down tenfold.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from rschat.config import Settings  # noqa: E402
from rschat.geo.raster import Raster  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
ASSETS = ROOT / "assets" / "examples"

_real_connect = socket.socket.connect


def _local_only(self, address):  # type: ignore[no-untyped-def]
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0") and not host.startswith("/"):
        raise OSError(f"network disabled in tests (tried {address})")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def no_network():
    socket.socket.connect = _local_only  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(work_dir=tmp_path / "work")


def make_pair(crs: str | None = "EPSG:32617", pixel: float = 0.5, size: int = 128, seed: int = 0):
    """A textured RGB pair where a bright 'building' (32x24 px) appears in the after image.

    Returns (before, after, truth_mask). The after image also gets a global brightness
    change (x1.1 + 8) that is not a change on the ground.
    """
    rng = np.random.default_rng(seed)
    base = np.zeros((3, size, size), dtype=np.float32)
    base[0], base[1], base[2] = 90, 120, 70  # vegetation-ish
    base += rng.normal(0, 6, base.shape)
    after = base * 1.1 + 8
    truth = np.zeros((size, size), dtype=bool)
    truth[40:64, 50:82] = True
    after[:, truth] = np.array([210, 205, 200])[:, None] + rng.normal(0, 3, (3, int(truth.sum())))
    after[:, 40:64, 50] = 60  # a roof edge
    tr = Affine(pixel, 0, 500000.0, 0, -pixel, 3000000.0) if crs else None
    kw = {"crs": CRS.from_string(crs) if crs else None, "transform": tr, "band_names": ("red", "green", "blue")}
    before_r = Raster(np.clip(base, 0, 255).astype(np.uint8), name="before", **kw)
    after_r = Raster(np.clip(after, 0, 255).astype(np.uint8), name="after", **kw)
    return before_r, after_r, truth


@contextmanager
def launched(settings: Settings) -> Iterator[tuple[str, object]]:
    """The app, launched as `python app.py` launches it, on a free local port: (url, demo)."""
    from rschat.ui.app import build_demo, launch_options

    demo = build_demo(settings)
    demo.queue()
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_options(settings))
    try:
        yield url, demo
    finally:
        demo.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """A launched lite-mode app shared by a test module: (url, demo)."""
    with launched(Settings(work_dir=tmp_path_factory.mktemp("work"))) as running:
        yield running


# Debian's Chromium drives the browser tests (Playwright cannot download its own here).
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
NEEDS_CHROMIUM = [
    pytest.mark.browser,
    # Justified skip: `make test` installs Debian's chromium as root; only a run without it lands here.
    pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (make test installs it as root)"),
]


def rschat(*args: str, env: dict[str, str] | None = None, timeout: int = 180) -> subprocess.CompletedProcess:
    """Run the `rschat` command as a user runs it (a subprocess of this Python)."""
    return subprocess.run(
        [sys.executable, "-m", "rschat.cli", *args],
        capture_output=True,
        text=True,
        env=None if env is None else {**os.environ, **env},
        timeout=timeout,
    )


def prepare_and_train(
    source: str, kind: str, src: Path, work: Path, validate_every: int
) -> tuple[subprocess.CompletedProcess, Path]:
    """``rschat data prepare SOURCE`` on a small source tree, then ``rschat train KIND`` for
    three steps of batch 4, as a user runs them: (the training run, its output folder)."""
    prepared = rschat("data", "prepare", source, "--from", str(src), "--out", str(work / "d"))
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    out = work / "model"
    run = rschat("train", kind, "--data", str(work / "d"), "--out", str(out), "--steps", "3", "--batch", "4",
                 "--validate-every", str(validate_every), timeout=300)  # fmt: skip
    return run, out
