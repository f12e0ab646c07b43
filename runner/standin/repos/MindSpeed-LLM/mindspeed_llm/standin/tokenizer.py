"""The stand-in tokenizer (TEST DOUBLE, not a Qwen tokenizer).

It reads ``tokenizer.json`` of the simulator's tiny model: byte tokens ``<0xNN>`` in
``model.vocab`` and special tokens in ``added_tokens``. Text is split on the special
tokens, everything else is encoded byte by byte, so encoding is deterministic and
``decode(encode(text)) == text``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path


class ByteTokenizer:
    """Byte-level tokenizer built from a tokenizer.json file or a model directory."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        file = path / "tokenizer.json" if path.is_dir() else path
        if not file.is_file():
            raise OSError(
                f"Can't load tokenizer for '{path}'. Make sure '{path}' is the correct path to a "
                "directory containing all relevant files for a Qwen2TokenizerFast tokenizer."
            )
        data = json.loads(file.read_text(encoding="utf-8"))
        vocab: dict[str, int] = data["model"]["vocab"]
        self.byte_ids = [vocab[f"<0x{b:02X}>"] for b in range(256)]
        self.id_to_byte = {tid: b for b, tid in enumerate(self.byte_ids)}
        self.special = {tok["content"]: tok["id"] for tok in data.get("added_tokens", [])}
        self.id_to_special = {tid: text for text, tid in self.special.items()}
        self.vocab_size = max([*vocab.values(), *self.special.values()]) + 1
        self.eod = self.special.get("<|endoftext|>", self.vocab_size - 1)
        self.pad = self.eod
        names = sorted(self.special, key=len, reverse=True)
        self._split = re.compile("(" + "|".join(re.escape(n) for n in names) + ")") if names else None

    def encode(self, text: str) -> list[int]:
        parts = self._split.split(text) if self._split else [text]
        ids: list[int] = []
        for part in parts:
            if not part:
                continue
            if part in self.special:
                ids.append(self.special[part])
            else:
                ids.extend(self.byte_ids[b] for b in part.encode("utf-8"))
        return ids

    def decode(self, ids: list[int]) -> str:
        out = bytearray()
        text: list[str] = []
        for tid in ids:
            if tid in self.id_to_byte:
                out.append(self.id_to_byte[tid])
                continue
            text.append(out.decode("utf-8", errors="replace"))
            out.clear()
            text.append(self.id_to_special.get(tid, ""))
        text.append(out.decode("utf-8", errors="replace"))
        return "".join(text)
