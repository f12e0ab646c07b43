"""Every role documents its inputs twice, in defaults/main.yml and meta/argument_specs.yml;
the two key sets must not drift apart (Ansible validates inputs against the spec)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"
ALL_ROLES = sorted(p.name for p in ROLES.iterdir() if (p / "tasks" / "main.yml").exists())


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def test_the_suggested_roles_exist() -> None:
    assert {"ascend_preflight", "container_engine", "ascend_image", "ascend_container", "cann_env",
            "mindspeed_stack", "model_assets"} <= set(ALL_ROLES)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_defaults_and_argument_spec_have_the_same_keys(role: str) -> None:
    defaults = set(_yaml(ROLES / role / "defaults" / "main.yml"))
    spec = _yaml(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]["main"].get("options", {})
    assert sorted(defaults - set(spec)) == [], f"{role}: in defaults/main.yml but not in the argument spec"
    assert sorted(set(spec) - defaults) == [], f"{role}: in the argument spec but not in defaults/main.yml"


@pytest.mark.parametrize("role", ALL_ROLES)
def test_every_input_is_role_prefixed_and_described(role: str) -> None:
    text = (ROLES / role / "defaults" / "main.yml").read_text().splitlines()
    spec = _yaml(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]["main"].get("options", {})
    for key, option in spec.items():
        assert key.startswith(f"{role}_"), f"{role}: {key} lacks the role prefix"
        assert option.get("description"), f"{role}: {key} has no description in the argument spec"
        assert option.get("type"), f"{role}: {key} has no type in the argument spec"
        line = next(i for i, t in enumerate(text) if t.startswith(f"{key}:"))
        start = line
        while start > 0 and text[start - 1].strip() and not text[start - 1].startswith("#"):
            start -= 1  # a group of related keys may share the comment above it
        assert start > 0 and text[start - 1].startswith("#"), f"{role}: {key} has no comment above it in defaults"


@pytest.mark.parametrize("role", ALL_ROLES)
def test_literal_defaults_agree_with_the_spec(role: str) -> None:
    defaults = _yaml(ROLES / role / "defaults" / "main.yml")
    spec = _yaml(ROLES / role / "meta" / "argument_specs.yml")["argument_specs"]["main"].get("options", {})
    for key, option in spec.items():
        value = defaults[key]
        if "default" in option and not (isinstance(value, str) and "{{" in value):
            assert option["default"] == value, f"{role}: {key} defaults to {value!r}, spec says {option['default']!r}"
        if "choices" in option and not (isinstance(value, str) and "{{" in value):
            assert value in option["choices"], f"{role}: default {value!r} of {key} not in {option['choices']}"
