"""`runner sim fault` words: what they mean, and the messages for bad ones."""

from __future__ import annotations

import pytest

from runner.errors import InputError
from runner.sim import fake_tools as ft
from runner.sim.faults import Fault, apply_fault, describe_state, parse_fault


@pytest.mark.parametrize(
    ("words", "fault"),
    [
        ("npu 3 health Critical", Fault("health", npu=3, value="Critical")),
        ("npu 3 health critical", Fault("health", npu=3, value="Critical")),
        ("npu 0 health UNKNOWN", Fault("health", npu=0, value="UNKNOWN")),
        ("npu 2 busy", Fault("busy", npu=2, value="python3", pid=266778)),
        ("npu 2 busy 1234 train.py", Fault("busy", npu=2, value="train.py", pid=1234)),
        ("npu 2 idle", Fault("idle", npu=2)),
        ("link 7 down", Fault("link", npu=7, value="down")),
        ("link 7 up", Fault("link", npu=7, value="up")),
        ("ip 1 missing", Fault("ip", npu=1, value="missing")),
        ("driver 23.0.3", Fault("driver", value="23.0.3")),
        ("down", Fault("down")),
        ("restore", Fault("restore")),
    ],
)
def test_valid_faults(words, fault):
    assert parse_fault(words.split(), 8) == fault


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ("", "no fault given"),
        ("npu 8 busy", r"NPU index '8' is not one of 0\.\.7"),
        ("npu x busy", r"NPU index 'x'"),
        ("npu 1 health Broken", r"health 'Broken' is not one of OK, Warning, Alarm, Critical, UNKNOWN"),
        ("npu 1 health", r"expected `npu K health"),
        ("npu 1 busy abc", r"numeric PID"),
        ("npu 1 explode", r"unknown NPU fault 'explode'"),
        ("link 1 sideways", r"expected `link K down\|up`"),
        ("driver", r"expected `driver VERSION`"),
        ("down now", r"`down` takes no arguments"),
        ("reboot", r"unknown fault 'reboot'"),
    ],
)
def test_bad_faults_say_what_is_valid(words, message):
    with pytest.raises(InputError, match=message) as err:
        parse_fault(words.split(), 8)
    assert err.value.exit_code == 2
    assert "npu K health" in str(err.value)  # the hint lists the grammar


def test_apply_does_not_change_the_input_and_describe_lists_differences():
    healthy = ft.default_state(0, 8)
    state = apply_fault(healthy, parse_fault(["npu", "3", "health", "Critical"], 8))
    state = apply_fault(state, parse_fault(["npu", "1", "busy", "77"], 8))
    state = apply_fault(state, parse_fault(["link", "5", "down"], 8))
    state = apply_fault(state, parse_fault(["ip", "6", "missing"], 8))
    assert healthy == ft.default_state(0, 8)
    assert describe_state(state, healthy) == [
        "npu1 busy (pid 77)", "npu3 Critical", "npu5 link down", "npu6 ip missing",
    ]  # fmt: skip
    back = apply_fault(state, parse_fault(["npu", "1", "idle"], 8))
    assert back["npus"][1]["busy"] is None
