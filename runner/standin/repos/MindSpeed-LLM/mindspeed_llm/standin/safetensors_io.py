"""Minimal reader and writer of the safetensors format (header JSON + raw little-endian data).

bf16 is stored as the upper 16 bits of float32, like torch does.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np


def to_bf16(values: np.ndarray) -> bytes:
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return (bits >> 16).astype("<u2").tobytes()


def from_bf16(raw: bytes) -> np.ndarray:
    bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
    return bits.view(np.float32)


def write_file(path: str | Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Write float32 arrays as BF16 tensors, in the order given."""
    header: dict[str, object] = {"__metadata__": dict(metadata or {"format": "pt"})}
    blobs: list[bytes] = []
    offset = 0
    for name, array in tensors.items():
        blob = to_bf16(array.reshape(-1))
        header[name] = {"dtype": "BF16", "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(head)))
        out.write(head)
        for blob in blobs:
            out.write(blob)


def read_file(path: str | Path) -> dict[str, np.ndarray]:
    """Read every tensor of a safetensors file as float32 arrays with their shapes."""
    raw = Path(path).read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size])
    base = 8 + size
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        chunk = raw[base + start:base + end]
        if info["dtype"] == "BF16":
            values = from_bf16(chunk)
        elif info["dtype"] == "F32":
            values = np.frombuffer(chunk, dtype="<f4").astype(np.float32)
        else:
            raise ValueError(f"{path}: tensor {name} has dtype {info['dtype']}, the stand-in reads BF16/F32")
        out[name] = values.reshape(info["shape"])
    return out
