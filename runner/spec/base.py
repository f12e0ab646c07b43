"""The policy every job-spec model shares: unknown keys are errors, instances are frozen,
and YAML's habit of reading `3.10` as the float 3.1 is undone once, here."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, model_validator


class YamlFloat(float):
    """A float read from YAML that remembers how it was written (`3.10`, not 3.1)."""

    source: str

    def __new__(cls, value: float, source: str) -> YamlFloat:
        obj = super().__new__(cls, value)
        obj.source = source
        return obj


class SpecLoader(yaml.SafeLoader):
    """SafeLoader whose floats keep their source text, so string fields get it back."""


def _construct_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> float:
    value = yaml.SafeLoader.construct_yaml_float(loader, node)
    return YamlFloat(value, node.value)


SpecLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)


class SpecModel(BaseModel):
    """Base of every job-spec model."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _restore_float_text(cls, data: Any) -> Any:
        # A string field given `3.10` in YAML gets "3.10", not "3.1".
        if not isinstance(data, dict):
            return data
        fixed = dict(data)
        for name, field in cls.model_fields.items():
            key = field.alias or name
            value = fixed.get(key)
            if isinstance(value, YamlFloat) and field.annotation in (str, str | None):
                fixed[key] = value.source
            elif isinstance(value, dict) and field.annotation == dict[str, str]:
                fixed[key] = {k: v.source if isinstance(v, YamlFloat) else v for k, v in value.items()}
        return fixed
