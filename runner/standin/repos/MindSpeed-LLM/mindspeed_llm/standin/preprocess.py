"""Stand-in of MindSpeed-LLM 2.1.0 ``preprocess_data.py`` (TEST DOUBLE, not MindSpeed-LLM).

Reads parquet/json/jsonl rows with pyarrow, formats them with the chosen handler and prompt
template, tokenizes with the tiny model's byte tokenizer and writes the real output names:

- instruction handlers: ``{prefix}_packed_{input_ids,attention_mask,labels}_document.{bin,idx}``
- pretrain handlers: ``{prefix}_{json_key}_document.{bin,idx}``
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from .cli import ArgParser, Opt, fail, known_flags
from .indexed import write_dataset
from .tokenizer import ByteTokenizer

PROMPT_TYPES = ("default", "empty", "trl", "chatglm2", "chatglm3", "chatglm3_system", "glm4", "chatml",
                "chatml_de", "qwen", "qwen_r1", "qwen_math_r1", "llama3", "llama2", "mistral", "mixtral",
                "gemma", "alpaca", "deepseek2", "deepseek2-lite", "cpm", "baichuan2", "deepseek3",
                "intern2", "hunyuan")

PROMPT_TYPE_HANDLERS = ["LlamaFactoryInstructionHandler", "AlpacaStyleInstructionHandler",
                        "SharegptStyleInstructionHandler", "AlpacaStylePairwiseHandler",
                        "SharegptStylePairwiseHandler", "AlpacaStyleProcessRewardHandler",
                        "PPOAlpacaStyleInstructionHandler", "HunyuanInstructionHandler",
                        "R1AlpacaStyleInstructionHandler", "R1SharegptStyleInstructionHandler"]

INSTRUCTION_HANDLERS = {"LlamaFactoryInstructionHandler", "AlpacaStyleInstructionHandler",
                        "SharegptStyleInstructionHandler", "HunyuanInstructionHandler",
                        "R1AlpacaStyleInstructionHandler", "R1SharegptStyleInstructionHandler",
                        "GeneralInstructionHandler"}
PRETRAIN_HANDLERS = {"GeneralPretrainHandler", "AlpacaPretrainHandler"}
UNSUPPORTED_HANDLERS = {"BaseDatasetHandler", "AlpacaStylePairwiseHandler", "SharegptStylePairwiseHandler",
                        "AlpacaStyleProcessRewardHandler", "PPOAlpacaStyleInstructionHandler",
                        "BelleMultiTurnInstructionHandler", "MOSSMultiTurnHandler", "MOSSInstructionHandler",
                        "LeetcodePythonInstructionHandler", "StackOverflowPythonPretrainHandler"}

ALPACA_KEYS = ["prompt", "query", "response", "history", "system", "chosen", "rejected"]
SHAREGPT_KEYS = ["messages", "tags", "system", "tools", "chosen", "rejected", "kto_tag"]
SHAREGPT_TAGS = ["role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag",
                 "system_tag"]

# ChatML family: (default system prompt). Other valid prompt types use plain role prefixes.
CHATML_SYSTEMS = {
    "qwen": "You are a helpful assistant.",
    "qwen_math_r1": "Please reason step by step, and put your final answer within \\boxed{}.",
    "qwen_r1": "",
    "chatml": "",
    "chatml_de": "",
}

OPTS: dict[str, Opt] = {
    "--input": Opt("str"),
    "--output-prefix": Opt("str"),
    "--handler-name": Opt("str", ""),
    "--prompt-type": Opt("str", None, PROMPT_TYPES),
    "--json-keys": Opt("str", ["text"], nargs="+"),
    "--map-keys": Opt("json"),
    "--pack": Opt("bool"),
    "--neat-pack": Opt("bool"),
    "--seq-length": Opt("int"),
    "--append-eod": Opt("bool"),
    "--split-sentences": Opt("bool"),
    "--tokenizer-type": Opt("str", "PretrainedFromHF", ("BertWordPieceLowerCase", "BertWordPieceCase",
                                                        "GPT2BPETokenizer", "GPTSentencePieceTokenizer",
                                                        "PretrainedFromHF")),
    "--tokenizer-name-or-path": Opt("str"),
    "--workers": Opt("int", 1),
    "--n-subs": Opt("int", 1),
    "--log-interval": Opt("int", 100),
    "--max-samples": Opt("int"),
    "--merge-group-keys": Opt("str", None, nargs="+"),
    "--dataset-impl": Opt("str", "mmap", ("lazy", "cached", "mmap")),
    "--pad-to-multiple-of": Opt("int", 1),
    "--seed": Opt("int", 1234),
}


def main(argv: list[str] | None = None) -> int:
    parser = ArgParser("preprocess_data.py", known_flags("preprocess_data.py"), OPTS,
                       required=["--input", "--output-prefix"])
    args = parser.parse(sys.argv[1:] if argv is None else argv)
    validate_args(args)
    handler = resolve_handler(args.handler_name)
    if args.tokenizer_type != "PretrainedFromHF":
        fail("NotImplementedError", f"the simulator's stand-in only implements --tokenizer-type "
             f"PretrainedFromHF, not {args.tokenizer_type}")
    if not args.tokenizer_name_or_path:
        fail("ValueError", "--tokenizer-name-or-path is required with --tokenizer-type PretrainedFromHF")
    tokenizer = ByteTokenizer(args.tokenizer_name_or_path)
    rows = load_rows(args.input)
    if args.max_samples is not None:
        rows = rows[: args.max_samples]
    start = time.time()
    if handler in INSTRUCTION_HANDLERS:
        outputs = instruction_dataset(args, handler, rows, tokenizer)
        prefix = args.output_prefix + "_packed"
    else:
        if args.pack:
            fail("ValueError", "Pre-training data processing does not need to be packed, "
                 "therefore the --pack parameter is not required.")
        outputs = pretrain_dataset(args, handler, rows, tokenizer)
        prefix = args.output_prefix
    level = "sentence" if args.split_sentences else "document"
    for key, sequences in outputs.items():
        write_dataset(f"{prefix}_{key}_{level}", sequences)
    elapsed = max(time.time() - start, 1e-6)
    count = len(next(iter(outputs.values()))) if outputs else 0
    print(f"Processed {count} documents ({count / elapsed:.1f} docs/s).", flush=True)
    for key in outputs:
        print(f"  wrote {prefix}_{key}_{level}.bin and .idx", flush=True)
    return 0


def validate_args(args: Any) -> None:
    """The checks of MindSpeed-LLM 2.1.0 ``preprocess_data.py::validate_args``, same messages."""
    if args.prompt_type is not None and args.handler_name not in PROMPT_TYPE_HANDLERS:
        fail("AssertionError", f"If specify prompt_type , handler name must be in:\n{PROMPT_TYPE_HANDLERS}.")
    if args.merge_group_keys is not None and not os.path.isdir(args.input):
        fail("ValueError", f"{args.input} is not a directory or does not exist")
    if not os.path.isdir(os.path.dirname(args.output_prefix)):
        fail("ValueError", f"{os.path.dirname(args.output_prefix)} is not a directory or does not exist")
    if not args.pack and args.neat_pack:
        fail("ValueError", "Require set `--pack` when `--neat-pack` is set.")


def resolve_handler(name: str) -> str:
    if name in UNSUPPORTED_HANDLERS:
        fail("NotImplementedError", f"the simulator's stand-in does not implement {name}; use "
             "SharegptStyleInstructionHandler, AlpacaStyleInstructionHandler or GeneralPretrainHandler")
    # unknown names fall back to GeneralPretrainHandler, as with the real getattr lookup
    known = name in INSTRUCTION_HANDLERS or name in PRETRAIN_HANDLERS
    chosen = name if known else "GeneralPretrainHandler"
    print(f"dataset will use {chosen} to handle dataset", flush=True)
    return chosen


def load_rows(path_text: str) -> list[dict[str, Any]]:
    path = Path(path_text)
    if not path.exists():
        fail("ConnectionError", f"{path_text} is not a local file or directory, so it would be fetched from "
             "the Hugging Face hub; the simulated nodes have no network. Pass a local --input.")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and _ext(p))
        if not files:
            fail("ValueError", f"no parquet/arrow/csv/json/jsonl/txt file in {path}")
        majority = Counter(_ext(p) for p in files).most_common(1)[0][0]
        files = [p for p in files if _ext(p) == majority]
    else:
        files = [path]
    rows: list[dict[str, Any]] = []
    for file in files:
        rows.extend(_read(file))
    return rows


def _ext(path: Path) -> str | None:
    ext = path.suffix.lstrip(".").lower()
    return {"jsonl": "json"}.get(ext, ext) if ext in ("parquet", "arrow", "csv", "json", "jsonl", "txt") else None


def _read(file: Path) -> list[dict[str, Any]]:
    ext = _ext(file)
    if ext == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(file).to_pylist()
    if ext == "json":
        import json

        text = file.read_text(encoding="utf-8").strip()
        if text.startswith("["):
            return list(json.loads(text))
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if ext == "csv":
        import pyarrow.csv as pcsv

        return pcsv.read_csv(file).to_pylist()
    if ext == "txt":
        return [{"text": line} for line in file.read_text(encoding="utf-8").splitlines()]
    import pyarrow as pa

    with pa.memory_map(str(file)) as src:
        return pa.ipc.open_stream(src).read_all().to_pylist()


def _turn(prompt_type: str | None, role: str, content: str) -> str:
    if prompt_type in CHATML_SYSTEMS:
        if role == "assistant":
            return f"{content}<|im_end|>\n"
        tail = "<|im_start|>assistant\n" if role == "user" else ""
        return f"<|im_start|>{role}\n{content}<|im_end|>\n{tail}"
    if prompt_type in (None, "empty"):
        return content
    if role == "assistant":
        return f"{content}\n"
    return f"{role.capitalize()}: {content}\nAssistant: " if role == "user" else f"{content}\n"


def _conversations(args: Any, handler: str, rows: list[dict[str, Any]]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each row as (system, [(user, assistant), ...]) using --map-keys."""
    map_keys = dict(args.map_keys or {})
    columns = set(rows[0]) if rows else set()
    sharegpt = "Sharegpt" in handler
    allowed = SHAREGPT_KEYS if sharegpt else ALPACA_KEYS
    for key in map_keys:
        if key not in allowed:
            fail("ValueError", f"--map-keys key '{key}' is not valid for {handler}; valid keys: {allowed}")
    tags = dict(map_keys.get("tags") or {})
    for tag in tags:
        if tag not in SHAREGPT_TAGS:
            fail("ValueError", f"--map-keys tag '{tag}' is not valid; valid tags: {SHAREGPT_TAGS}")
    for key, column in map_keys.items():
        if key != "tags" and column not in columns:
            fail("ValueError", f"--map-keys maps '{key}' to column '{column}', which the dataset does not "
                 f"have (columns: {sorted(columns)})")
    out: list[tuple[str, list[tuple[str, str]]]] = []
    default_system = CHATML_SYSTEMS.get(args.prompt_type or "", "")
    if sharegpt:
        column = map_keys.get("messages", "conversations")
        if rows and column not in columns:
            fail("KeyError", f"'{column}' (the messages column; set it with --map-keys)")
        role_tag, content_tag = tags.get("role_tag", "from"), tags.get("content_tag", "value")
        user_tag, assistant_tag = tags.get("user_tag", "human"), tags.get("assistant_tag", "gpt")
        system_tag = tags.get("system_tag", "system")
        skipped = 0
        for row in rows:
            messages = list(row.get(column) or [])
            system = default_system
            if messages and messages[0].get(role_tag) == system_tag:
                system = messages.pop(0).get(content_tag, "")
            roles = [m.get(role_tag) for m in messages]
            valid = len(messages) % 2 == 0 and len(messages) > 0 and all(
                r == (user_tag if i % 2 == 0 else assistant_tag) for i, r in enumerate(roles))
            if not valid:
                skipped += 1
                out.append((system, [("", "")]))
                continue
            pairs = [(messages[i][content_tag], messages[i + 1][content_tag]) for i in range(0, len(messages), 2)]
            out.append((system, pairs))
        if skipped:
            print(f"WARNING: {skipped} samples had an invalid turn structure and were replaced by an "
                  "empty user/assistant pair", flush=True)
        return out
    prompt_col, query_col = map_keys.get("prompt", "instruction"), map_keys.get("query", "input")
    response_col, system_col = map_keys.get("response", "output"), map_keys.get("system")
    history_col = map_keys.get("history")
    for row in rows:
        query = row.get(query_col) or ""
        user = f"{row.get(prompt_col, '')}\n{query}" if query else str(row.get(prompt_col, ""))
        pairs = [(str(u), str(a)) for u, a in (row.get(history_col) or [])] if history_col else []
        pairs.append((user, str(row.get(response_col, ""))))
        out.append((str(row.get(system_col) or default_system) if system_col else default_system, pairs))
    return out


def instruction_dataset(args: Any, handler: str, rows: list[dict[str, Any]],
                        tokenizer: ByteTokenizer) -> dict[str, list[list[int]]]:
    samples: list[tuple[list[int], list[int]]] = []
    skipped = 0
    for system, pairs in _conversations(args, handler, rows):
        ids: list[int] = []
        labels: list[int] = []
        if system and args.prompt_type in CHATML_SYSTEMS:
            sys_ids = tokenizer.encode(_turn(args.prompt_type, "system", system))
            ids += sys_ids
            labels += [-100] * len(sys_ids)
        for user, assistant in pairs:
            prompt = tokenizer.encode(_turn(args.prompt_type, "user", user))
            answer = tokenizer.encode(_turn(args.prompt_type, "assistant", assistant))
            ids += prompt + answer
            labels += [-100] * len(prompt) + answer
        if args.append_eod:
            ids.append(tokenizer.eod)
            labels.append(tokenizer.eod)
        if args.seq_length is not None and not args.pack and len(ids) >= args.seq_length:
            skipped += 1
            continue
        samples.append((ids, labels))
    if skipped:
        print(f"Skip {skipped} sample exceeded seq-length({args.seq_length})", flush=True)
    if args.pack:
        return _pack(args, samples, tokenizer)
    return {
        "input_ids": [s[0] for s in samples],
        "attention_mask": [[1] * len(s[0]) for s in samples],
        "labels": [s[1] for s in samples],
    }


def _pack(args: Any, samples: list[tuple[list[int], list[int]]],
          tokenizer: ByteTokenizer) -> dict[str, list[list[int]]]:
    if args.seq_length is None:
        fail("ValueError", "--pack needs --seq-length")
    limit = args.seq_length - 1
    rows: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": [], "labels": []}
    current: list[tuple[list[int], list[int]]] = []

    def flush() -> None:
        if not current:
            return
        ids = [t for s in current for t in s[0]]
        labels = [t for s in current for t in s[1]]
        # neat-pack marks each sample with its own index (zigzag mask); plain pack uses ones
        mask = [k + 1 for k, s in enumerate(current) for _ in s[0]] if args.neat_pack else [1] * len(ids)
        pad = args.seq_length - len(ids)
        rows["input_ids"].append(ids + [tokenizer.pad] * pad)
        rows["labels"].append(labels + [-100] * pad)
        rows["attention_mask"].append(mask + [0] * pad)
        current.clear()

    dropped = 0
    for ids, labels in samples:
        if len(ids) > limit:
            if not args.neat_pack:
                dropped += 1
                continue
            ids, labels = ids[:limit], labels[:limit]
        if sum(len(s[0]) for s in current) + len(ids) > limit:
            flush()
        current.append((ids, labels))
    flush()
    if dropped:
        print(f"Dropped {dropped} samples longer than seq-length", flush=True)
    return rows


def pretrain_dataset(args: Any, handler: str, rows: list[dict[str, Any]],
                     tokenizer: ByteTokenizer) -> dict[str, list[list[int]]]:
    out: dict[str, list[list[int]]] = {}
    for key in args.json_keys:
        sequences: list[list[int]] = []
        for row in rows:
            if handler == "AlpacaPretrainHandler":
                text = "\n".join(str(row.get(c, "")) for c in ("instruction", "input", "output") if row.get(c))
            else:
                if key not in row:
                    fail("KeyError", f"'{key}' (column named by --json-keys; columns: {sorted(row)})")
                text = str(row[key])
            ids = tokenizer.encode(text)
            if args.append_eod:
                ids.append(tokenizer.eod)
            if args.seq_length is not None and len(ids) >= args.seq_length:
                continue
            sequences.append(ids)
        out[key] = sequences
    return out
