"""Job specs: pydantic models, model presets and the loader."""

from runner.spec.job import Job
from runner.spec.loader import hf_config_of, load_job, validate_job
from runner.spec.presets import PRESETS, ModelArch

__all__ = ["PRESETS", "Job", "ModelArch", "hf_config_of", "load_job", "validate_job"]
