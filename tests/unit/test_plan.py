"""The plan: checks MindSpeed-LLM/Megatron would make at run time, placement, ranks, environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import PlanError
from runner.plan import build_plan
from runner.spec import load_job, validate_job

MAIN = Path(__file__).resolve().parents[2] / "jobs" / "qwen25-math-7b-openr1.yaml"


def plan_of(*overrides: str, nodes: int = 2, **kwargs):
    return build_plan(load_job(MAIN, list(overrides)), nodes, **kwargs)


def test_main_job_on_two_nodes() -> None:
    plan = plan_of()
    assert (plan.world_size, plan.tp, plan.pp, plan.dp) == (16, 2, 4, 2)
    assert plan.layers_per_stage == (7, 7, 7, 7)
    assert plan.tokens_per_step == 8 * 4096
    assert [n.global_ranks for n in plan.nodes] == [tuple(range(8)), tuple(range(8, 16))]
    assert [plan.env(k)["NODE_RANK"] for k in (0, 1)] == ["0", "1"]
    assert plan.env(1)["WORLD_SIZE"] == "16" and plan.env(1)["NPUS_PER_NODE"] == "8"
    placements = {s.name: (s.placement, s.node_indices) for s in plan.stages}
    assert placements == {"preprocess": ("one", (0,)), "convert": ("one", (0,)), "train": ("all", (0, 1)),
                          "generate": ("all", (0, 1)), "export": ("one", (0,))}
    assert plan.memory is not None and not plan.memory.over


def test_conversion_and_training_share_tp_pp() -> None:
    plan = plan_of("parallel.tp=4", "parallel.pp=2")
    convert, train = plan.stage("convert").args, plan.stage("train").args
    assert convert[convert.index("--target-tensor-parallel-size") + 1] == "4"
    assert convert[convert.index("--target-pipeline-parallel-size") + 1] == "2"
    assert train[train.index("--tensor-model-parallel-size") + 1] == "4"
    assert train[train.index("--pipeline-model-parallel-size") + 1] == "2"
    assert any("mp_rank_03_001" in out for out in plan.stage("convert").outputs)


def test_export_is_always_tp1_pp1() -> None:
    args = plan_of("parallel.tp=4", "parallel.pp=2").stage("export").args
    assert args[args.index("--target-tensor-parallel-size") + 1] == "1"
    assert args[args.index("--target-pipeline-parallel-size") + 1] == "1"
    assert args[args.index("--save-dir") + 1] == "/mnt/data/Qwen25Math7B_hf_export"


def test_one_prompt_type_everywhere() -> None:
    plan = plan_of()
    for stage in ("preprocess", "train", "generate"):
        args = plan.stage(stage).args
        assert args[args.index("--prompt-type") + 1] == "qwen_math_r1", stage


@pytest.mark.parametrize(("overrides", "nodes", "message"), [
    (["parallel.tp=8", "parallel.pp=1"], 2, r"`parallel\.tp` = 8 does not divide the 28 attention heads; valid tp: \[1, 2, 4\]"),
    (["parallel.tp=7", "parallel.pp=1"], 7, r"does not divide the 4 query groups"),
    ([], 3, r"global_batch` 8 is not divisible by `train\.micro_batch` x data parallel = 1 x 3"),
    (["parallel.pp=8", "parallel.tp=1"], 1, r"`parallel\.pp` = 8 does not divide the 28 layers.*num_layer_list"),
    (["parallel.num_layer_list=[7,7,7,8]"], 2, r"sums to 29, but the model has 28 layers"),
    (["train.seq_length=8192"], 2, r"`train\.seq_length` 8192 exceeds the model's max position embeddings \(4096\)"),
    (["cluster.visible_devices=[0,1,2]"], 1, r"world size 3 .* not divisible by .* = 2 x 4 = 8"),
    (["train.global_batch=7"], 2, r"global_batch` 7 is not divisible .* = 1 x 2 = 2"),
])
def test_plan_rejects_what_mindspeed_would_reject(overrides, nodes, message) -> None:
    with pytest.raises(PlanError, match=message) as err:
        plan_of(*overrides, nodes=nodes)
    assert err.value.exit_code == 2


def test_num_layer_list_allows_uneven_pipeline() -> None:
    plan = plan_of("parallel.pp=8", "parallel.tp=1", "parallel.num_layer_list=[4,4,4,4,3,3,3,3]", nodes=1)
    assert plan.layers_per_stage == (4, 4, 4, 4, 3, 3, 3, 3)
    assert "4,4,4,4,3,3,3,3" in plan.stage("train").args
    assert "4,4,4,4,3,3,3,3" in plan.stage("convert").args


def test_packing_needs_a_sequence_length(main_job_data) -> None:
    main_job_data["data"]["pack"] = True
    del main_job_data["train"]
    main_job_data["stages"] = ["preprocess"]
    with pytest.raises(PlanError, match=r"`data\.pack` needs a sequence length"):
        build_plan(validate_job(main_job_data), 1)


def test_packing_uses_train_seq_length(main_job_data) -> None:
    main_job_data["data"]["pack"] = True
    main_job_data["data"]["neat_pack"] = True
    plan = build_plan(validate_job(main_job_data), 2)
    pre, train = plan.stage("preprocess").args, plan.stage("train").args
    assert pre[pre.index("--seq-length") + 1] == "4096" and "--neat-pack" in pre
    assert "--reset-position-ids" in train and "--neat-pack" in train and "--variable-seq-lengths" not in train


def test_visible_devices_subset() -> None:
    plan = plan_of("cluster.visible_devices=[4,5,6,7]", "parallel.tp=2", "parallel.pp=2", nodes=1)
    assert plan.world_size == 4 and plan.nodes[0].devices == (4, 5, 6, 7)
    assert plan.env(0)["ASCEND_RT_VISIBLE_DEVICES"] == "4,5,6,7"
    assert plan.env(0)["NPUS_PER_NODE"] == "4"


def test_local_storage_preprocesses_everywhere_and_copies_the_conversion() -> None:
    plan = plan_of("cluster.storage=local")
    assert plan.stage("preprocess").node_indices == (0, 1)
    assert plan.stage("convert").distribute
    assert plan.stage("train").collect
    # Only rank 0 writes the tracker; the other nodes need it to load their own shards.
    assert plan.stage("train").share == (f"{plan.stage('train').outputs[0].rsplit('/', 1)[0]}/latest_checkpointed_iteration.txt",)
    assert plan_of().stage("train").share == ()
    assert "--no-shared-storage" in plan.stage("train").args
    assert "--no-shared-storage" not in plan_of().stage("train").args


def test_resume_loads_the_run_own_checkpoint_without_finetune() -> None:
    train = plan_of(resume_iteration=500).stage("train").args
    assert train[train.index("--load") + 1] == "/mnt/data/Qwen25Math7B_tune"
    assert "--finetune" not in train
    assert "--finetune" in plan_of().stage("train").args


def test_memory_warning_when_over_device() -> None:
    plan = plan_of("parallel.tp=1", "parallel.pp=1", "train.global_batch=64", "train.micro_batch=4", nodes=2)
    assert plan.memory is not None and plan.memory.over
    assert any("exceeds the 64 GB" in w for w in plan.warnings)


def test_hf_config_mismatch_is_reported() -> None:
    config = {"num_hidden_layers": 28, "hidden_size": 3584, "num_attention_heads": 28, "num_key_value_heads": 4,
              "rope_theta": 1000000.0, "max_position_embeddings": 32768, "tie_word_embeddings": False}
    with pytest.raises(PlanError, match=r"rotary_base: preset 10000.0 vs config.json rope_theta=1000000.0") as err:
        plan_of(hf_config=config)
    assert "max_position_embeddings: preset 4096 vs config.json" in str(err.value)


def test_hf_config_that_matches_passes() -> None:
    config = {"num_hidden_layers": 28, "hidden_size": 3584, "intermediate_size": 18944, "num_attention_heads": 28,
              "num_key_value_heads": 4, "vocab_size": 152064, "rope_theta": 10000.0, "max_position_embeddings": 4096,
              "rms_norm_eps": 1e-06, "tie_word_embeddings": False}
    assert plan_of(hf_config=config).tp == 2


def test_master_address_and_port_land_in_env() -> None:
    plan = plan_of(master_addr="10.0.0.5", master_port=29500, hosts=["a", "b"])
    assert plan.env(1)["MASTER_ADDR"] == "10.0.0.5" and plan.env(1)["MASTER_PORT"] == "29500"
    assert [n.host for n in plan.nodes] == ["a", "b"]
    with pytest.raises(PlanError, match=r"--nodes 2 but 1 host"):
        plan_of(hosts=["a"])


def test_plan_is_frozen() -> None:
    plan = plan_of()
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises its own ValidationError subtype
        plan.tp = 4  # type: ignore[misc]
