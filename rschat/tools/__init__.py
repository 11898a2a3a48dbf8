"""The tools the agent can call, by name. One file per tool; see ``base`` for the interface."""

from rschat.tools import detect_changes
from rschat.tools.base import Artifact, Tool, ToolContext, ToolResult

REGISTRY: dict[str, Tool] = {t.name: t for t in (detect_changes.TOOL,)}

__all__ = ["REGISTRY", "Artifact", "Tool", "ToolContext", "ToolResult"]
