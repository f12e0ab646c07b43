"""All-reduce check run by `runner check comm` on every device of every node (under msrun).

Every rank contributes rank+1; the sum must be world*(world+1)/2 everywhere. Rank 0 prints one
`commcheck` line per message size with the time and the algorithm and bus bandwidth, as
nccl-tests and hccl_test report them (bus bandwidth = algbw * 2 * (n - 1) / n for all-reduce).
"""

import argparse
import os
import socket
import sys
import time

import numpy as np


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="4K,64K,1M,16M")
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()

    import mindspore as ms
    from mindspore import Tensor, hal, ops
    from mindspore.communication import get_group_size, get_rank, init

    target = os.environ.get("RUNNER_COMM_DEVICE") or ("Ascend" if hal.is_available("Ascend") else "CPU")
    ms.set_device(target)
    init()
    rank, world = get_rank(), get_group_size()
    node = os.environ.get("NODE_RANK", "?")
    print(f"rank {rank} of {world} on node {node} ({socket.gethostname()}), device {target}", flush=True)
    allreduce = ops.AllReduce()
    expected = world * (world + 1) / 2
    failed = False
    for nbytes in [parse_size(s) for s in args.sizes.split(",") if s.strip()]:
        count = max(1, nbytes // 4)
        x = Tensor(np.full(count, rank + 1, dtype=np.float32))
        for _ in range(args.warmup):
            allreduce(x).asnumpy()
        start = time.perf_counter()
        for _ in range(args.iters):
            y = allreduce(x).asnumpy()
        seconds = (time.perf_counter() - start) / args.iters
        ok = bool(np.allclose(y, expected))
        if not ok:
            failed = True
            print(
                f"error: rank {rank} on node {node}: all-reduce of {count * 4} bytes gave "
                f"{float(y.min())}..{float(y.max())}, expected {expected}",
                flush=True,
            )
        if rank == 0:
            algbw = count * 4 / seconds / 1e9
            busbw = algbw * 2 * (world - 1) / world
            print(
                f"commcheck bytes={count * 4} ranks={world} time_us={seconds * 1e6:.1f} "
                f"algbw_gbps={algbw:.6g} busbw_gbps={busbw:.6g} ok={int(ok)}",
                flush=True,
            )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
