from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
JOBS = REPO / "jobs"


@pytest.fixture
def main_job_data() -> dict[str, Any]:
    """The raw YAML of the main job, to mutate per test."""
    return copy.deepcopy(yaml.safe_load((JOBS / "qwen25-math-7b-openr1.yaml").read_text()))


@pytest.fixture
def write_job(tmp_path: Path):
    def write(data: dict[str, Any], name: str = "job.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write
