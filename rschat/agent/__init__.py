"""Sessions, planning, execution and answers. Entry point: ``agent.turn``."""

from rschat.agent.agent import backends, turn
from rschat.agent.steps import Step, ToolCall
from rschat.agent.workspace import Workspace

__all__ = ["Step", "ToolCall", "Workspace", "backends", "turn"]
