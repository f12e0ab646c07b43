"""Job specs: pydantic models, model presets and the loader."""

from runner.spec.job import Job
from runner.spec.loader import load_job, validate_job
from runner.spec.presets import PRESETS, ModelArch

__all__ = ["PRESETS", "Job", "ModelArch", "load_job", "validate_job"]
