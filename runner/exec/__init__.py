"""Running commands on nodes: one Transport per node (SSH or local) and a parallel fan-out."""

from runner.exec.base import CommandResult, Stream, Transport
from runner.exec.fanout import FanoutResult, fan_out, raise_for_failures

__all__ = ["CommandResult", "FanoutResult", "Stream", "Transport", "fan_out", "raise_for_failures"]
