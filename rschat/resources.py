"""Where rschat's data lives: the prompt templates, the vendored Leaflet, the example pair
and the weights manifest.

In a source checkout (``pyproject.toml`` next to the ``rschat`` package) they are the
top-level folders ``prompts/``, ``assets/`` and ``checkpoints/``. An installed wheel carries
the same folders inside the package as ``rschat/prompts``, ``rschat/assets`` and
``rschat/checkpoints`` (pyproject.toml maps them there), found with ``importlib.resources``.

Every function returns a real folder on disk: Gradio serves the vendored scripts as static
paths and rasterio opens the example GeoTIFFs by name, so a zipped install is refused with
one message rather than half working.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


@cache
def checkout() -> Path | None:
    """The source checkout rschat is imported from, or None for an installed package."""
    root = _PACKAGE.parent
    if (root / "pyproject.toml").is_file() and (root / "prompts").is_dir():
        return root
    return None


@cache
def data_dir(name: str) -> Path:
    """The folder ``name`` (prompts, assets or checkpoints) as a real path on disk."""
    root = checkout()
    if root is not None:
        return root / name
    found = resources.files("rschat").joinpath(name)
    if isinstance(found, Path) and found.is_dir():
        return found
    raise FileNotFoundError(
        f"rschat's data folder '{name}' is not on disk next to the package ({found}); "
        "install rschat from its wheel or source folder, not as a zip"
    )


def prompts_dir() -> Path:
    """The prompt templates (``NAME.txt``)."""
    return data_dir("prompts")


def assets_dir() -> Path:
    """The example images (``examples/``) and vendored scripts (``vendor/``)."""
    return data_dir("assets")


def vendor_dir() -> Path:
    """Leaflet and Leaflet.draw, served by the app itself (no CDN)."""
    return assets_dir() / "vendor"


def examples_dir() -> Path:
    """The example NAIP pair the app's example button loads."""
    return assets_dir() / "examples"


def manifest_path() -> Path:
    """The weights manifest (name, hub id, files, licence, size and memory of each model)."""
    return data_dir("checkpoints") / "manifest.json"


def checkpoints_dir() -> Path:
    """Where ``rschat weights pull`` writes weights: the checkout's ``checkpoints/``, or for an
    installed package ``./checkpoints`` under the current folder (the manifest's settings name
    ``checkpoints/NAME`` relative to where the app runs)."""
    root = checkout()
    return root / "checkpoints" if root is not None else Path.cwd() / "checkpoints"
