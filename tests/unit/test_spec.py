"""The job file: every rule a user can break gets a SpecError naming the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import SpecError
from runner.spec import load_job, validate_job

MAIN = Path(__file__).resolve().parents[2] / "jobs" / "qwen25-math-7b-openr1.yaml"


def test_main_job_loads_with_its_preset() -> None:
    job = load_job(MAIN)
    arch = job.model.architecture()
    assert (arch.num_layers, arch.num_attention_heads, arch.num_query_groups) == (28, 28, 4)
    assert arch.rotary_base == 10000  # Qwen2.5-Math-7B's config.json, not the scripts' 1e6
    assert job.stage_names == ["preprocess", "convert", "train", "generate", "export"]


@pytest.mark.parametrize(("override", "message"), [
    ("parallel.tp=two", r"parallel\.tp: Input should be a valid integer"),
    ("data.handler=SharegptStyleInstructionHandlr",
     r"silently fall back to GeneralPretrainHandler\. Did you mean `SharegptStyleInstructionHandler`"),
    ("data.prompt_type=qwen_math", r"unknown prompt type 'qwen_math'"),
    ("data.handler=GeneralPretrainHandler", r"`data\.prompt_type` needs an instruction handler"),
    ("data.neat_pack=true", r"`data\.neat_pack` needs `data\.pack: true`"),
    ("train.min_lr=0.1", r"`train\.min_lr` \(0\.1\) must not exceed `train\.lr`"),
    ("model.preset=qwen2.5-8b", r"unknown preset 'qwen2\.5-8b'"),
    ("model.arch.num_layers=0", r"model\.arch\.num_layers`: Input should be greater than 0 \(got 0\)"),
    ("model.arch.num_layer=2", r"`model\.arch\.num_layer`: unknown key; architecture keys: num_layers, "),
    ("model={hf_dir: /m, arch: {num_layers: 2}}", r"`model\.arch` lacks hidden_size, .*or a `model\.preset`"),
    ("stages=[preprocess, trian]", r"invalid job \(1 problem\)\n  stages\.1: Input should be 'preprocess', .*"
                                   r"\(got 'trian'\)$"),
    ("stages.0={name: hi, command: ''}", r"invalid job \(1 problem\)\n  stages\.0\.command: String should have"),
    ("parallel={tp: 1, pp: 4, sequence_parallel: true}", r"`parallel\.sequence_parallel` needs `parallel\.tp` > 1"),
    ("parallel.num_layer_list=[7,7,14]", r"`parallel\.num_layer_list` has 3 entries; .*pp = 4"),
    ("cluster.visible_devices=[4,8]", r"\[8\] are not NPUs of a 8-NPU node"),
    ("cluster.visible_devices=[4,4]", r"lists an NPU twice"),
    ("checkpoint.export_dir=/mnt/data/Qwen25Math7B", r"overlaps `model\.hf_dir`.*never written to"),
    ("checkpoint.save_dir=/mnt/data/Qwen25Math7B_transfered", r"training would overwrite the converted checkpoint"),
    ("train.extra_args=[--tensor-model-parallel-size, '4']", r"derives from `parallel\.tp`"),
    ("train.extra_args=[--prompt-type, qwen]", r"derives from `data\.prompt_type`"),
    ("train.extra_args=[--use-flash-atn]", r"does not define\. Did you mean `--use-flash-attn`"),
    ("stages=[train, preprocess]", r"out of order"),
    ("stages=[preprocess, preprocess]", r"more than once"),
    ("trian.iters=5", r"unknown key `trian`"),
    ("cluster.storage=nfs", r"cluster\.storage: Input should be 'shared' or 'local'"),
    ("name=my job", r"job name 'my job' must be"),
    ("model.hf_dir=relative/dir", r"model\.hf_dir: String should match pattern"),
])
def test_invalid_field_is_named_with_its_fix(override: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as err:
        load_job(MAIN, [override])
    assert str(MAIN) in str(err.value)
    assert err.value.exit_code == 2


def test_all_problems_are_reported_at_once(main_job_data) -> None:
    main_job_data["parallel"]["tp"] = "x"
    main_job_data["cluster"]["storage"] = "nfs"
    with pytest.raises(SpecError, match=r"2 problems") as err:
        validate_job(main_job_data, "job.yaml")
    assert "parallel.tp" in str(err.value) and "cluster.storage" in str(err.value)


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstages: [train\n")
    with pytest.raises(SpecError, match=r"bad\.yaml: not valid YAML at line \d+"):
        load_job(bad)


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"cannot read the job file"):
        load_job(tmp_path / "nope.yaml")


def test_yaml_float_keeps_its_text_in_string_fields(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("name: 3.10\ncluster: {env: {VERSION: 3.10}}\nstages: [{name: hello, command: echo hi}]\n")
    job = load_job(path)
    assert job.name == "3.10"
    assert job.cluster.env["VERSION"] == "3.10"


def test_command_only_job_needs_only_name_cluster_stages(write_job) -> None:
    job = load_job(write_job({"name": "hello", "cluster": {"npus_per_node": 2},
                              "stages": [{"name": "hello", "command": "echo $NODE_RANK", "placement": "all"}]}))
    assert job.stage_names == ["hello"]


def test_stage_needs_its_sections(write_job) -> None:
    with pytest.raises(SpecError, match=r"stage `train` needs the section\(s\) `model`, `data`, `train`"):
        load_job(write_job({"name": "x", "stages": ["train"]}))


@pytest.mark.parametrize(("override", "expected"), [
    ("parallel.tp=4", ("parallel", "tp", 4)),
    ("train.lr=2e-5", ("train", "lr", 2e-5)),
    ("cluster.visible_devices=[0,1]", ("cluster", "visible_devices", [0, 1])),
])
def test_set_overrides_any_key(override: str, expected) -> None:
    section, key, value = expected
    job = load_job(MAIN, [override])
    assert getattr(getattr(job, section), key) == value


@pytest.mark.parametrize("override", ["parallel", "=3", "name.x=1"])
def test_malformed_override_is_input_error(override: str) -> None:
    with pytest.raises(SpecError):
        load_job(MAIN, [override])
