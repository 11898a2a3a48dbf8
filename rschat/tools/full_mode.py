"""Shared bits of the full-mode tools: getting a model or saying how to enable it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rschat.backends.loading import BackendUnavailable
from rschat.geo.errors import InputError
from rschat.tools.base import ToolContext


def require(loader: Callable[[Any], Any], ctx: ToolContext, what: str) -> Any:
    """The loaded backend, or an InputError that says what is missing and how to enable it."""
    if ctx.settings is None:
        raise InputError(f"{what} needs full mode, and this session has no settings.")
    try:
        return loader(ctx.settings)
    except BackendUnavailable as err:
        raise InputError(f"{what} is unavailable: {err}") from err
