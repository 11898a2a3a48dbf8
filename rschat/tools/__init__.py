"""The tools the agent can call, by name. One file per tool; see ``base`` for what a tool
declares and ``docs/ARCHITECTURE.md`` for adding one (its file + one line below)."""

from rschat.tools import (
    analyze_timeseries,
    classify_scene,
    count_objects,
    describe_scene,
    detect_changes,
    generate_image,
    image_info,
    measure,
    raster_values,
    segment,
    segment_objects,
    spectral_index,
)
from rschat.tools.base import Artifact, Kept, Reading, Tool, ToolContext, ToolResult

REGISTRY: dict[str, Tool] = {
    t.name: t
    for t in (
        detect_changes.TOOL,
        segment.TOOL,
        count_objects.TOOL,
        measure.TOOL,
        describe_scene.TOOL,
        analyze_timeseries.TOOL,
        classify_scene.TOOL,
        segment_objects.TOOL,
        generate_image.TOOL,
        image_info.TOOL,
        spectral_index.TOOL,
        raster_values.TOOL,
    )
}

__all__ = ["REGISTRY", "Artifact", "Kept", "Reading", "Tool", "ToolContext", "ToolResult"]
