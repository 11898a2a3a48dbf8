"""Sessions, planning, execution and answers. Entry point: ``agent.turn``."""

from rschat.agent.agent import backends, turn
from rschat.agent.steps import Step, ToolCall
from rschat.agent.workspace import Workspace
from rschat.backends.loading import gpu_task  # the UI wraps model-running events with it (ZeroGPU)

__all__ = ["Step", "ToolCall", "Workspace", "backends", "gpu_task", "turn"]
