"""Build the stand-in MindSpeed stack as real git repositories and ``git bundle`` files.

Each repository is made from ``runner/standin/repos/<Name>/`` with fixed author, committer,
dates and file modes, so its commit SHA depends only on the sources: the same checkout always
yields the same ``mindspeed_stack_refs``. The stand-in MindSpeed-LLM also gets
``mindspeed_llm/standin/flags.json``, generated from ``runner/data/mindspeed_flags.tsv``
(the nodes cannot import ``runner``).

Results are cached: ``build_bundles`` skips the work when a stamp in ``dest`` records the same
fingerprint of the sources and every bundle is still there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from runner.errors import SimError

SOURCES = Path(__file__).with_name("repos")
FLAGS_TSV = Path(__file__).parents[1] / "data" / "mindspeed_flags.tsv"
STAMP = "standin-bundles.json"
BUILDER_VERSION = "1"
COMMIT_DATE = "2025-08-14T00:00:00+00:00"


@dataclass(frozen=True)
class RepoSpec:
    """A stand-in repository: its branch and any other branch names at the same commit."""

    branch: str
    also: tuple[str, ...] = ()


# Branch names are those MindSpeed-Core-MS r0.3.0 clones (auto_convert_llm.sh, test_convert_llm.sh).
REPOS: dict[str, RepoSpec] = {
    "MindSpeed-Core-MS": RepoSpec("r0.3.0"),
    "MindSpeed-LLM": RepoSpec("2.1.0"),
    "MindSpeed": RepoSpec("2.1.0_core_r0.8.0"),
    "Megatron-LM": RepoSpec("core_r0.8.0"),
    "MSAdapter": RepoSpec("msa_r0.2.0", also=("r0.2.0",)),
}


@dataclass(frozen=True)
class RepoInfo:
    """A built stand-in repository: work tree, bundle file, branch and commit."""

    path: Path
    bundle: Path
    branch: str
    sha: str


def flag_table(tsv: Path = FLAGS_TSV) -> dict[str, list[str]]:
    """Flags by entry point: preprocess_data.py, convert_ckpt.py, training, msrun."""
    table: dict[str, set[str]] = {}
    lines = tsv.read_text(encoding="utf-8").splitlines()
    for line in lines[1:]:
        if not line.strip():
            continue
        flag, entry = line.split("\t")[:2]
        key = "training" if entry.startswith("training") else entry
        table.setdefault(key, set()).add(flag)
    return {key: sorted(flags) for key, flags in sorted(table.items())}


def _source_files(name: str) -> list[Path]:
    root = SOURCES / name
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix != ".pyc")


def _generated(name: str) -> dict[str, bytes]:
    if name != "MindSpeed-LLM":
        return {}
    text = json.dumps(flag_table(), indent=1, sort_keys=True) + "\n"
    return {"mindspeed_llm/standin/flags.json": text.encode("utf-8")}


def _mode(relpath: str) -> int:
    return 0o755 if relpath.endswith(".sh") else 0o644


def fingerprint() -> str:
    """Hash of everything a build depends on."""
    digest = hashlib.sha256(f"builder {BUILDER_VERSION} {COMMIT_DATE}\n".encode())
    for name, spec in REPOS.items():
        digest.update(f"repo {name} {spec.branch} {spec.also}\n".encode())
        for path in _source_files(name):
            rel = path.relative_to(SOURCES / name).as_posix()
            digest.update(f"file {rel} {_mode(rel):o}\n".encode())
            digest.update(path.read_bytes())
        for rel, data in _generated(name).items():
            digest.update(f"generated {rel}\n".encode())
            digest.update(data)
    return digest.hexdigest()


def _git_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LC_ALL": "C",
        "TZ": "UTC",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "ascend-runner simulator",
        "GIT_AUTHOR_EMAIL": "simulator@ascend-runner.invalid",
        "GIT_AUTHOR_DATE": COMMIT_DATE,
        "GIT_COMMITTER_NAME": "ascend-runner simulator",
        "GIT_COMMITTER_EMAIL": "simulator@ascend-runner.invalid",
        "GIT_COMMITTER_DATE": COMMIT_DATE,
    }


def _git(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    cmd = ["git", "-c", "core.fileMode=true", "-c", "pack.threads=1", "-c", "core.autocrlf=false", *args]
    try:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=120)
    except FileNotFoundError as exc:
        raise SimError("git is not installed; the stand-in MindSpeed stack is built with git",
                       hint="install it: apt-get install git (or run `make setup`)") from exc
    if done.returncode != 0:
        raise SimError(f"building the stand-in repositories failed: `{' '.join(cmd)}` in {cwd} exited "
                       f"{done.returncode}: {done.stderr.strip()[-500:]}")
    return done.stdout.strip()


def _build_one(name: str, spec: RepoSpec, dest: Path, env: dict[str, str]) -> RepoInfo:
    work = dest / "src" / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    files: dict[str, bytes] = {p.relative_to(SOURCES / name).as_posix(): p.read_bytes() for p in _source_files(name)}
    files.update(_generated(name))
    for rel, data in sorted(files.items()):
        target = work / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(_mode(rel))
    _git(["init", "-q", "-b", spec.branch], work, env)
    _git(["add", "--all"], work, env)
    message = f"Stand-in of {name} {spec.branch} for the ascend-runner simulator (TEST DOUBLE)"
    _git(["commit", "-q", "--no-verify", "-m", message], work, env)
    for other in spec.also:
        _git(["branch", other], work, env)
    sha = _git(["rev-parse", "HEAD"], work, env)
    bundle = dest / f"{name}.bundle"
    _git(["bundle", "create", "-q", str(bundle), spec.branch, *spec.also], work, env)
    return RepoInfo(path=work, bundle=bundle, branch=spec.branch, sha=sha)


def _from_stamp(dest: Path, expected: str) -> dict[str, RepoInfo] | None:
    stamp = dest / STAMP
    try:
        data = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("fingerprint") != expected or set(data.get("repos", {})) != set(REPOS):
        return None
    repos = {name: RepoInfo(Path(r["path"]), Path(r["bundle"]), r["branch"], r["sha"])
             for name, r in data["repos"].items()}
    if all(info.bundle.is_file() and info.path.is_dir() for info in repos.values()):
        return repos
    return None


def build_bundles(dest: Path) -> dict[str, RepoInfo]:
    """Build (or reuse) every stand-in repository and ``dest/<Name>.bundle``; keyed by repo name."""
    dest = Path(dest).resolve()
    expected = fingerprint()
    cached = _from_stamp(dest, expected)
    if cached is not None:
        return cached
    dest.mkdir(parents=True, exist_ok=True)
    env = _git_env(dest)
    repos = {name: _build_one(name, spec, dest, env) for name, spec in REPOS.items()}
    record = {"fingerprint": expected,
              "repos": {name: {k: str(v) for k, v in asdict(info).items()} for name, info in repos.items()}}
    (dest / STAMP).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return repos
