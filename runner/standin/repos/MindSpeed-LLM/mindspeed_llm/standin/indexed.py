"""Megatron ``mmap`` indexed datasets: ``<prefix>.bin`` plus ``<prefix>.idx``.

The stand-in writes the real on-disk format (header ``MMIDIDX``, version 1, dtype code,
sequence sizes, byte pointers, document index), so the files look like real output.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

_HDR = b"MMIDIDX\x00\x00"
_DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64,
           7: np.float32, 8: np.uint16}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}


def write_dataset(prefix: str | Path, sequences: list[list[int]], dtype: type = np.int32) -> None:
    """Write ``prefix.bin`` and ``prefix.idx``, one document per sequence."""
    prefix = str(prefix)
    arrays = [np.asarray(seq, dtype=dtype) for seq in sequences]
    sizes = np.array([len(a) for a in arrays], dtype=np.int32)
    itemsize = np.dtype(dtype).itemsize
    pointers = np.zeros(len(arrays), dtype=np.int64)
    if len(arrays) > 1:
        pointers[1:] = np.cumsum(sizes[:-1].astype(np.int64) * itemsize)
    doc_idx = np.arange(len(arrays) + 1, dtype=np.int64)
    with open(prefix + ".bin", "wb") as out:
        for array in arrays:
            out.write(array.tobytes(order="C"))
    with open(prefix + ".idx", "wb") as out:
        out.write(_HDR)
        out.write(struct.pack("<Q", 1))
        out.write(struct.pack("<B", _CODES[np.dtype(dtype)]))
        out.write(struct.pack("<Q", len(arrays)))
        out.write(struct.pack("<Q", len(doc_idx)))
        out.write(sizes.tobytes(order="C"))
        out.write(pointers.tobytes(order="C"))
        out.write(doc_idx.tobytes(order="C"))


class IndexedDataset:
    """Read-only view of a ``prefix.bin``/``prefix.idx`` pair."""

    def __init__(self, prefix: str | Path) -> None:
        prefix = str(prefix)
        with open(prefix + ".idx", "rb") as idx:
            header = idx.read(9)
            if header != _HDR:
                raise ValueError(f"{prefix}.idx is not an mmap indexed dataset (bad header)")
            (_version,) = struct.unpack("<Q", idx.read(8))
            (code,) = struct.unpack("<B", idx.read(1))
            (count,) = struct.unpack("<Q", idx.read(8))
            (_docs,) = struct.unpack("<Q", idx.read(8))
            self.dtype = np.dtype(_DTYPES[code])
            self.sizes = np.frombuffer(idx.read(4 * count), dtype=np.int32)
            self.pointers = np.frombuffer(idx.read(8 * count), dtype=np.int64)
        self.data = np.fromfile(prefix + ".bin", dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, i: int) -> np.ndarray:
        start = int(self.pointers[i])
        end = start + int(self.sizes[i]) * self.dtype.itemsize
        return self.data[start:end].view(self.dtype)
