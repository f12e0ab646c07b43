"""The stand-in stack's repositories and bundles, the sample data, the tiny model and stack.yml."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from runner.standin.bundles import REPOS, build_bundles, flag_table
from runner.standin.sample_data import make_sample_dataset, shard_names
from runner.standin.simvars import write_sim_inventory_vars
from runner.standin.tiny_model import make_tiny_model

# The URLs and branches MindSpeed-Core-MS r0.3.0 auto_convert_llm.sh clones.
PUBLIC_URLS = {
    "MindSpeed-LLM": "https://gitee.com/ascend/MindSpeed-LLM.git",
    "MindSpeed": "https://gitee.com/ascend/MindSpeed.git",
    "Megatron-LM": "https://gitee.com/mirrors/Megatron-LM.git",
    "MSAdapter": "https://openi.pcl.ac.cn/OpenI/MSAdapter.git",
}


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return build_bundles(tmp_path_factory.mktemp("bundles"))


def _offline_git_env(home: Path) -> dict[str, str]:
    """git that can only use local files: a public URL not rewritten to a bundle fails at once."""
    return {**os.environ, "HOME": str(home), "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_ALLOW_PROTOCOL": "file", "GIT_TERMINAL_PROMPT": "0"}


def test_repos_have_the_real_branch_names_and_reproducible_commits(bundles: dict, tmp_path: Path) -> None:
    again = build_bundles(tmp_path / "again")
    for name, info in bundles.items():
        assert info.branch == REPOS[name].branch
        assert again[name].sha == info.sha, f"{name} commit is not reproducible"
        assert again[name].bundle.read_bytes() == info.bundle.read_bytes(), f"{name} bundle bytes differ"
        heads = subprocess.run(["git", "bundle", "list-heads", str(info.bundle)], capture_output=True,
                               text=True, check=True).stdout
        assert f"{info.sha} refs/heads/{info.branch}" in heads
    assert bundles["MindSpeed-Core-MS"].branch == "r0.3.0"
    assert bundles["MindSpeed-LLM"].branch == "2.1.0"
    assert bundles["MindSpeed"].branch == "2.1.0_core_r0.8.0"
    assert bundles["Megatron-LM"].branch == "core_r0.8.0"
    assert bundles["MSAdapter"].branch == "msa_r0.2.0"


def test_second_build_reuses_the_bundles(bundles: dict) -> None:
    info = bundles["MindSpeed-LLM"]
    before = info.bundle.stat().st_mtime_ns
    again = build_bundles(info.bundle.parent)
    assert again == bundles
    assert info.bundle.stat().st_mtime_ns == before


def test_entry_points_say_they_are_test_doubles(bundles: dict) -> None:
    repo = bundles["MindSpeed-LLM"].path
    for script in ("preprocess_data.py", "convert_ckpt.py", "posttrain_gpt.py", "pretrain_gpt.py", "inference.py"):
        text = (repo / script).read_text()
        assert text.startswith('"""TEST DOUBLE for the ascend-runner simulator, not MindSpeed-LLM.'), script
    assert (bundles["Megatron-LM"].path / "megatron").is_dir()


def test_flag_list_shipped_in_the_repo_matches_the_flag_table(bundles: dict) -> None:
    shipped = json.loads((bundles["MindSpeed-LLM"].path / "mindspeed_llm/standin/flags.json").read_text())
    assert shipped == flag_table()
    assert "--seq-length" in shipped["training"] and "--ckpt-format" not in shipped["training"]
    assert "--handler-name" in shipped["preprocess_data.py"]
    assert "--target-tensor-parallel-size" in shipped["convert_ckpt.py"]


def test_auto_convert_llm_clones_the_public_urls_served_from_bundles(bundles: dict, tmp_path: Path) -> None:
    env = _offline_git_env(tmp_path)
    for name, url in PUBLIC_URLS.items():
        subprocess.run(["git", "config", "--global", f"url.{bundles[name].bundle}.insteadOf", url], env=env,
                       check=True)
    core = tmp_path / "MindSpeed-Core-MS"
    subprocess.run(["git", "clone", "-q", "-b", "r0.3.0", str(bundles["MindSpeed-Core-MS"].bundle), str(core)],
                   env=env, check=True)
    done = subprocess.run(["bash", "-c", 'source auto_convert_llm.sh && echo "PYTHONPATH=$PYTHONPATH"'],
                          cwd=core, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for name in PUBLIC_URLS:
        head = subprocess.run(["git", "-C", str(core / name), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        assert head == bundles[name].sha
    assert (core / "MindSpeed-LLM" / "posttrain_gpt.py").is_file()
    assert f"PYTHONPATH={core}/MSAdapter/mindtorch:{core}/Megatron-LM:{core}/MindSpeed:{core}/MindSpeed-LLM:" \
        in done.stdout


def test_auto_convert_llm_stops_when_a_repository_cannot_be_cloned(bundles: dict, tmp_path: Path) -> None:
    env = _offline_git_env(tmp_path)  # no insteadOf: the https clone is refused, never attempted
    core = tmp_path / "MindSpeed-Core-MS"
    subprocess.run(["git", "clone", "-q", "-b", "r0.3.0", str(bundles["MindSpeed-Core-MS"].bundle), str(core)],
                   env=env, check=True)
    done = subprocess.run(["bash", "-c", "source auto_convert_llm.sh; echo not reached"], cwd=core, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Error: git clone MindSpeed-LLM" in done.stdout
    assert "not reached" not in done.stdout


def test_sample_dataset_is_deterministic_and_shaped_like_openr1(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    first = make_sample_dataset(tmp_path / "a")
    second = make_sample_dataset(tmp_path / "b")
    assert first == second
    assert list(first) == shard_names() == [f"train-0000{i}-of-00010.parquet" for i in range(10)]
    table = pq.read_table(tmp_path / "a" / "train-00000-of-00010.parquet")
    for column in ("problem", "solution", "answer", "problem_type", "question_type", "source", "uuid",
                   "is_reasoning_complete", "generations", "correctness_math_verify", "correctness_llama",
                   "finish_reasons", "correctness_count", "messages"):
        assert column in table.column_names
    rows = sum(pq.read_metadata(tmp_path / "a" / name).num_rows for name in first)
    assert 200 <= rows <= 1000
    message = table.column("messages")[0].as_py()
    assert [m["role"] for m in message] == ["user", "assistant"]
    assert "\\boxed{" in message[1]["content"]
    manifest = (tmp_path / "a.sha256").read_text().splitlines()
    assert manifest[0] == f"{first['train-00000-of-00010.parquet']}  train-00000-of-00010.parquet"
    for name, digest in first.items():
        assert hashlib.sha256((tmp_path / "a" / name).read_bytes()).hexdigest() == digest


def test_tiny_model_config_is_the_qwen2_shape_the_sim_job_relies_on(tmp_path: Path) -> None:
    sums = make_tiny_model(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    expected = {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "num_hidden_layers": 4,
                "hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2,
                "vocab_size": 2048, "max_position_embeddings": 4096, "rope_theta": 10000.0, "rms_norm_eps": 1e-6,
                "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
    assert {key: config[key] for key in expected} == expected
    assert set(sums) == {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                         "model.safetensors"}
    assert make_tiny_model(tmp_path / "again") == sums


def test_tiny_model_weights_are_readable_safetensors(bundles: dict, tmp_path: Path) -> None:
    make_tiny_model(tmp_path / "model")
    sys.path.insert(0, str(bundles["MindSpeed-LLM"].path))
    try:
        from mindspeed_llm.standin.safetensors_io import read_file
    finally:
        sys.path.pop(0)
    tensors = read_file(tmp_path / "model" / "model.safetensors")
    assert tensors["model.embed_tokens.weight"].shape == (2048, 128)
    assert tensors["model.layers.3.self_attn.k_proj.weight"].shape == (64, 128)
    assert tensors["model.layers.0.self_attn.q_proj.bias"].shape == (128,)
    assert tensors["lm_head.weight"].shape == (2048, 128)


def test_stack_yml_has_every_provisioning_input_of_the_contract(tmp_path: Path) -> None:
    inventory, state = tmp_path / "inventory", tmp_path / "state"
    write_sim_inventory_vars(inventory, state)
    data = yaml.safe_load((inventory / "group_vars/ascend/stack.yml").read_text())
    assert data["mindspeed_stack_source"] == "bundle"
    bundle_dir = Path(data["mindspeed_stack_bundle_dir"])
    for name in REPOS:
        assert (bundle_dir / f"{name}.bundle").is_file()
    assert set(data["mindspeed_stack_refs"]) == set(REPOS)
    assert data["mindspeed_stack_refs"] == {n: i.sha for n, i in build_bundles(bundle_dir).items()}
    assert data["model_assets_model_source"] == "local"
    assert data["model_assets_model_dest"] == "/mnt/data/Qwen25Math7B"
    model_dir = Path(data["model_assets_model_local_dir"])
    for rel, digest in data["model_assets_model_sha256"].items():
        assert hashlib.sha256((model_dir / rel).read_bytes()).hexdigest() == digest
    assert data["model_assets_dataset_source"] == "local"
    assert data["model_assets_dataset_dest"] == "/mnt/data/OpenR1Math220K"
    assert len(data["model_assets_dataset_sha256"]) == 10
    dataset_dir = Path(data["model_assets_dataset_local_dir"])
    for name, digest in data["model_assets_dataset_sha256"].items():
        assert hashlib.sha256((dataset_dir / name).read_bytes()).hexdigest() == digest
