"""A small OpenR1-Math-220K-shaped parquet set for the simulator, made with a fixed seed.

Same file names (``train-0000{0..9}-of-00010.parquet``), columns and column types as the
default split of open-r1/OpenR1-Math-220K; the rows are generated arithmetic problems with
short worked "reasoning", so a byte-level tokenizer keeps every sample under 1024 tokens.
The bytes are deterministic for a given pyarrow version.
"""

from __future__ import annotations

import io
import random
import uuid
from pathlib import Path
from typing import Any

from runner.standin.manifest import write_tree

SEED = 220_000
SHARDS = 10
ROWS_PER_SHARD = 30
PROBLEM_TYPES = ["Algebra", "Number Theory", "Geometry", "Combinatorics", "Inequalities", "Other"]
SOURCES = ["olympiads", "cn_contest", "aops_forum", "amc_aime", "number_theory", "inequalities"]


def shard_names() -> list[str]:
    return [f"train-{i:05d}-of-{SHARDS:05d}.parquet" for i in range(SHARDS)]


def _schema() -> Any:
    import pyarrow as pa

    message = pa.struct([("content", pa.string()), ("role", pa.string())])
    return pa.schema([
        ("problem", pa.string()),
        ("solution", pa.string()),
        ("answer", pa.string()),
        ("problem_type", pa.string()),
        ("question_type", pa.string()),
        ("source", pa.string()),
        ("uuid", pa.string()),
        ("is_reasoning_complete", pa.list_(pa.bool_())),
        ("generations", pa.list_(pa.string())),
        ("correctness_math_verify", pa.list_(pa.bool_())),
        ("correctness_llama", pa.list_(pa.bool_())),
        ("finish_reasons", pa.list_(pa.string())),
        ("correctness_count", pa.int64()),
        ("messages", pa.list_(message)),
    ])


def _problem(rng: random.Random) -> tuple[str, str, str, str]:
    """(problem, worked steps, answer, problem type)."""
    kind = rng.randrange(5)
    a, b, c = rng.randint(2, 99), rng.randint(2, 99), rng.randint(2, 30)
    if kind == 0:
        return (f"Compute ${a} \\times {b} + {c}$.",
                f"First ${a} \\times {b} = {a * b}$. Adding ${c}$ gives ${a * b + c}$.", str(a * b + c), "Algebra")
    if kind == 1:
        x = rng.randint(-20, 20)
        return (f"Solve for $x$: ${c}x + {a} = {c * x + a}$.",
                f"Subtract ${a}$: ${c}x = {c * x}$. Divide by ${c}$: $x = {x}$.", str(x), "Algebra")
    if kind == 2:
        n = a * b + c
        return (f"What is the remainder when ${n}$ is divided by ${c + 1}$?",
                f"We have ${n} = {c + 1} \\cdot {n // (c + 1)} + {n % (c + 1)}$.", str(n % (c + 1)), "Number Theory")
    if kind == 3:
        return (f"A rectangle has sides ${a}$ and ${b}$. What is its perimeter?",
                f"The perimeter is $2({a} + {b}) = {2 * (a + b)}$.", str(2 * (a + b)), "Geometry")
    n = rng.randint(4, 12)
    k = rng.randint(1, 3)
    value = 1
    for i in range(k):
        value = value * (n - i) // (i + 1)
    return (f"In how many ways can ${k}$ students be chosen from a class of ${n}$?",
            f"The count is $\\binom{{{n}}}{{{k}}} = {value}$.", str(value), "Combinatorics")


def _rows(rng: random.Random, count: int) -> list[dict[str, Any]]:
    rows = []
    for _ in range(count):
        problem, steps, answer, ptype = _problem(rng)
        generations, complete, verify, reasons = [], [], [], []
        for attempt in range(2):
            right = attempt == 0 or rng.random() < 0.6
            shown = answer if right else str(int(answer) + rng.randint(1, 9))
            think = f"<think>\nLet me work through this carefully. {steps} Let me double-check: yes.\n</think>\n\n"
            generations.append(f"{think}{steps} So the answer is $\\boxed{{{shown}}}$.")
            complete.append(True)
            verify.append(right)
            reasons.append("stop")
        llama = None if rng.random() < 0.3 else [v and rng.random() < 0.9 for v in verify]
        rows.append({
            "problem": problem,
            "solution": f"{steps} Therefore the answer is ${answer}$.",
            "answer": answer,
            "problem_type": ptype if rng.random() < 0.8 else rng.choice(PROBLEM_TYPES),
            "question_type": "math-word-problem" if rng.random() < 0.9 else "MCQ",
            "source": rng.choice(SOURCES),
            "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "is_reasoning_complete": complete,
            "generations": generations,
            "correctness_math_verify": verify,
            "correctness_llama": llama,
            "finish_reasons": reasons,
            "correctness_count": sum(verify),
            "messages": [{"content": problem, "role": "user"}, {"content": generations[0], "role": "assistant"}],
        })
    return rows


def shard_bytes() -> dict[str, bytes]:
    """Every shard's parquet bytes, generated from the fixed seed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(SEED)
    schema = _schema()
    out: dict[str, bytes] = {}
    for name in shard_names():
        table = pa.Table.from_pylist(_rows(rng, ROWS_PER_SHARD), schema=schema)
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="snappy")
        out[name] = sink.getvalue()
    return out


def make_sample_dataset(dest: Path) -> dict[str, str]:
    """Write the shards into ``dest`` (only files whose bytes differ) and ``<dest>.sha256``.

    Returns ``{file name: sha256}`` of the shards.
    """
    return write_tree(Path(dest), shard_bytes())
