"""Joining the cluster: real MindSpore collectives on CPU under ``msrun``, or a single process.

``msrun`` starts the script once as the scheduler (``MS_ROLE=MS_SCHED``) and once per worker.
``init()`` is called only after argument checks, as Megatron does, so a bad flag fails
every process (scheduler included) before anyone waits on the network.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np


def world_size_from_env() -> int:
    """The world size msrun announces (MS_WORKER_NUM / RANK_SIZE), or 1 when run directly."""
    for name in ("MS_WORKER_NUM", "RANK_SIZE", "WORLD_SIZE"):
        value = os.environ.get(name)
        if value:
            return int(value)
    return 1


class LocalComm:
    """One process, no collectives: the entry point was started without msrun."""

    rank = 0
    world = 1

    def allreduce_sum(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64)

    def barrier(self) -> None:
        return None


class MindSporeComm:
    """MindSpore ``AllReduce`` over every worker msrun started (CPU backend)."""

    def __init__(self) -> None:
        import mindspore as ms
        from mindspore import ops
        from mindspore.communication import get_group_size, get_rank, init

        if hasattr(ms, "set_device"):
            ms.set_device("CPU")
        else:
            ms.set_context(device_target="CPU")
        init()
        if os.environ.get("MS_ROLE") == "MS_SCHED":
            sys.exit(0)  # the scheduler's work ends when the cluster does
        self._ms: Any = ms
        self._allreduce = ops.AllReduce()
        self.rank = int(get_rank())
        self.world = int(get_group_size())

    def allreduce_sum(self, values: np.ndarray) -> np.ndarray:
        tensor = self._ms.Tensor(np.asarray(values, dtype=np.float32))
        return np.asarray(self._allreduce(tensor).asnumpy(), dtype=np.float64)

    def barrier(self) -> None:
        self.allreduce_sum(np.zeros(1))


def init() -> LocalComm | MindSporeComm:
    if os.environ.get("MS_ROLE"):
        return MindSporeComm()
    return LocalComm()
