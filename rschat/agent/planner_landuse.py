"""Land use asked of a satellite image (4-30 m pixels): "is there a residential
building?", "is there an industrial area?", "how much residential land is there?".

At 10 m a building is one pixel and footprints cannot show use, so lite mode refuses
these at fine pixels (``BUILDING_USE``). At satellite pixel sizes the land-use model
(EuroSAT's classes) reads residential and industrial or commercial land from 640 m of
ground: the land the buildings stand on, which is what such an image can answer.
Counting buildings of a use stays refused.
"""

from __future__ import annotations

import re

from rschat.agent.plans import Plan, Request, ToolCall, with_box
from rschat.backends import landuse, lite_models

_USE = re.compile(r"\b(residential|commercial|industrial|retail|housing)\b", re.I)
_BUILDINGS = re.compile(r"\b(buildings?|houses?|homes?|shops?|stores?|factories|factory|warehouses?)\b", re.I)
_COUNT = re.compile(r"\bhow many\b|\bnumber of\b|\bcount\b", re.I)
_FOCUS = {"presence": "land_use:{use}:{kind}", "fraction": "land_use_share:{use}", "area": "land_use_area:{use}"}


def plan_land_use(req: Request) -> Plan | None:
    """classify_scene's land use for a presence, share or area question about residential
    or industrial (commercial) land or buildings, where the image's pixels are in the
    land-use model's range and the model is there; None otherwise."""
    m = _USE.search(req.message)
    if m is None or req.image is None or req.focus not in _FOCUS or _COUNT.search(req.message):
        return None
    if req.intent in ("change", "timeseries", "help", "clear", "export"):
        return None
    raster = req.ws.rasters.get(req.image)
    if raster is None or not landuse.in_range(raster.pixel_size_m()) or lite_models.model("landuse") is None:
        return None
    use = "residential" if m.group(1).lower() in ("residential", "housing") else "industrial"
    kind = "buildings" if _BUILDINGS.search(req.message) else "land"
    focus = _FOCUS[req.focus].format(use=use, kind=kind)
    why = f"{use} land from the land-use model (EuroSAT classes; {raster.pixel_size_m():g} m pixels do not show buildings)"
    return Plan("classify", [ToolCall("classify_scene", with_box({"image": req.image}, req.ws), why)], focus=focus)
