"""The preflight summary filters and the asset modules' pure parts."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from http_files import FileServer, Request

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


table = _load("ascend_preflight_filters", ROOT / "roles/ascend_preflight/filter_plugins/ascend_preflight.py")
fetch = _load("model_assets_fetch", ROOT / "roles/model_assets/library/model_assets_fetch.py")
verify = _load("model_assets_verify", ROOT / "roles/model_assets/library/model_assets_verify.py")


def _result(*failing: tuple[str, object]) -> dict:
    checks = [{"check": "npu count", "npu": "-", "ok": True, "actual": "8", "expected": "8", "fix": ""}]
    checks += [{"check": name, "npu": n, "ok": False, "actual": "bad", "expected": "good", "fix": f"fix {name}"}
               for name, n in failing]
    return {"__ascend_preflight_probe": {"checks": checks}}


def test_failures_of_every_host_are_collected_and_waived_checks_left_out() -> None:
    hostvars = {
        "node0": _result(("npu health", 3), ("clock skew", "-")),
        "node1": _result(("npu link", 5)),
        "node2": {"__ascend_preflight_probe": {"unreachable": True, "msg": "ssh: connect timed out"}},
        "node3": _result(),
    }
    rows = table.ascend_preflight_failures(hostvars, ["node0", "node1", "node2", "node3"], ["clock skew"])
    assert [(r["host"], r["npu"], r["check"]) for r in rows] == [
        ("node0", 3, "npu health"), ("node1", 5, "npu link"), ("node2", "-", "probe")]
    assert "connect timed out" in rows[2]["actual"]


def test_table_has_a_row_per_failure_with_host_npu_check_actual_and_fix() -> None:
    rows = [{"host": "node0", "npu": 3, "check": "npu health", "actual": "Critical",
             "fix": "NPU 3 reports Critical: read `npu-smi info -t health -i 3 -c 0` for the error code, "
                    "then repair or reset the card"},
            {"host": "node1", "npu": "-", "check": "driver version", "actual": "24.1.rc1", "fix": "upgrade"}]
    text = table.ascend_preflight_table(rows, width=40)
    lines = text.splitlines()
    assert lines[0].split() == ["HOST", "NPU", "CHECK", "ACTUAL", "FIX"]
    assert lines[2].startswith("node0  3    npu health      Critical")
    assert any(line.startswith("node1  -    driver version  24.1.rc1") for line in lines)
    assert all(len(line) <= 80 for line in lines)
    assert "repair or reset the card" in " ".join(text.split())


def test_interrupted_download_resumes_from_the_partial_file(tmp_path: Path) -> None:
    source = tmp_path / "shard.parquet"
    data = bytes(range(256)) * 1000
    source.write_bytes(data)
    part = tmp_path / "dest.parquet.part"
    part.write_bytes(data[:1000])
    # file:// servers ignore Range, so the download restarts and must still give the whole file.
    assert fetch._download(source.as_uri(), str(part), 5) == 0
    assert part.read_bytes() == data
    assert fetch._sha256(str(part)) == hashlib.sha256(data).hexdigest()


def test_interrupted_http_download_asks_for_the_rest_only(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    data = bytes(range(256)) * 1000
    (served / "shard.parquet").write_bytes(data)
    part = tmp_path / "dest.parquet.part"
    part.write_bytes(data[:1000])
    with FileServer({"data": served}) as server:
        assert fetch._download(server.url("data/shard.parquet"), str(part), 5) == 1000
        assert server.requests == [Request("/data/shard.parquet", "bytes=1000-", 206)]
        assert part.read_bytes() == data
        # A partial file that is already whole: the server answers 416 and nothing is fetched again.
        assert fetch._download(server.url("data/shard.parquet"), str(part), 5) == len(data)
        assert server.requests[-1].status == 416
    assert part.read_bytes() == data


def test_re_verifying_unchanged_files_hashes_nothing_but_a_changed_file_is_hashed_again(tmp_path: Path) -> None:
    weights = tmp_path / "model"
    weights.mkdir()
    files = {"a.safetensors": b"a" * 5000, "b.safetensors": b"b" * 7000}
    for name, data in files.items():
        (weights / name).write_bytes(data)
    manifest = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}

    missing, mismatched, cache, hashed = verify.verify(str(weights), manifest, {})
    assert (missing, mismatched, hashed, len(cache)) == ([], [], 2, 2)
    assert verify.verify(str(weights), manifest, cache)[3] == 0  # the re-run reads no file

    (weights / "b.safetensors").write_bytes(b"B" * 7000)  # same size, new content and mtime
    missing, mismatched, cache2, hashed = verify.verify(str(weights), manifest, cache)
    assert hashed == 1 and [m["path"] for m in mismatched] == ["b.safetensors"]
    assert str(weights / "b.safetensors") not in cache2  # a mismatch is never remembered as good
    (weights / "a.safetensors").unlink()
    assert verify.verify(str(weights), manifest, cache2)[0] == ["a.safetensors"]


def test_clock_skew_counts_only_what_the_ssh_delay_cannot_explain() -> None:
    # Sent at 100.0, answered at 106.0: a host clock read anywhere in between is in sync.
    assert table.ascend_preflight_clock({"host_time": 105.2, "controller_time": 100.0}, 106.0, 5)["ok"]
    behind = table.ascend_preflight_clock({"host_time": 40.0, "controller_time": 100.0}, 106.0, 5)
    ahead = table.ascend_preflight_clock({"host_time": 120.0, "controller_time": 100.0}, 106.0, 5)
    assert not behind["ok"] and behind["actual"].startswith("-60.0 s")
    assert not ahead["ok"] and ahead["actual"].startswith("+14.0 s")
    assert "chrony" in ahead["fix"]
