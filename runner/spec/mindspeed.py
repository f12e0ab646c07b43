"""What MindSpeed-LLM 2.1.0 knows: data handlers, prompt templates and the flags of each entry
point. The flag table is extracted from the real code (runner/data/mindspeed_flags.tsv)."""

from __future__ import annotations

import functools
from importlib import resources

# mindspeed_llm/tasks/preprocess/data_handler.py. An unknown name silently falls back to
# GeneralPretrainHandler in MindSpeed-LLM, so the runner refuses it instead.
HANDLERS: frozenset[str] = frozenset({
    "GeneralPretrainHandler", "AlpacaPretrainHandler", "LlamaFactoryInstructionHandler",
    "AlpacaStyleInstructionHandler", "SharegptStyleInstructionHandler", "HunyuanInstructionHandler",
    "AlpacaStylePairwiseHandler", "SharegptStylePairwiseHandler", "AlpacaStyleProcessRewardHandler",
    "PPOAlpacaStyleInstructionHandler", "R1AlpacaStyleInstructionHandler", "R1SharegptStyleInstructionHandler",
    "GeneralInstructionHandler", "BelleMultiTurnInstructionHandler", "MOSSMultiTurnHandler",
    "MOSSInstructionHandler", "LeetcodePythonInstructionHandler", "StackOverflowPythonPretrainHandler",
})

# preprocess_data.py validate_args: with --prompt-type, the handler must be one of these.
PROMPT_HANDLERS: frozenset[str] = frozenset({
    "LlamaFactoryInstructionHandler", "AlpacaStyleInstructionHandler", "SharegptStyleInstructionHandler",
    "AlpacaStylePairwiseHandler", "SharegptStylePairwiseHandler", "AlpacaStyleProcessRewardHandler",
    "PPOAlpacaStyleInstructionHandler", "HunyuanInstructionHandler", "R1AlpacaStyleInstructionHandler",
    "R1SharegptStyleInstructionHandler",
})

# Handlers whose output is `{prefix}_packed_{input_ids,attention_mask,labels}_document`.
INSTRUCTION_HANDLERS: frozenset[str] = PROMPT_HANDLERS | {
    "GeneralInstructionHandler", "BelleMultiTurnInstructionHandler", "MOSSMultiTurnHandler",
    "MOSSInstructionHandler", "LeetcodePythonInstructionHandler",
}

# preprocess_data.py --prompt-type choices (configs/finetune/templates.json of 2.1.0).
PREPROCESS_PROMPT_TYPES: frozenset[str] = frozenset({
    "default", "empty", "trl", "chatglm2", "chatglm3", "chatglm3_system", "glm4", "chatml", "chatml_de",
    "qwen", "qwen_r1", "qwen_math_r1", "llama3", "llama2", "mistral", "mixtral", "gemma", "alpaca",
    "deepseek2", "deepseek2-lite", "cpm", "baichuan2", "deepseek3", "intern2", "hunyuan",
})
# Training accepts two more; a job uses one prompt type everywhere, so it must be in both.
TRAIN_PROMPT_TYPES: frozenset[str] = PREPROCESS_PROMPT_TYPES | {"minicpm3", "qwen3"}

ALPACA_MAP_KEYS = frozenset({"prompt", "query", "response", "history", "system", "chosen", "rejected"})
SHAREGPT_MAP_KEYS = frozenset({"messages", "tags", "system", "tools", "chosen", "rejected", "kto_tag"})
SHAREGPT_TAG_KEYS = frozenset({"role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag",
                               "function_tag", "system_tag"})

ENTRY_POINTS = {
    "preprocess": "preprocess_data.py",
    "convert": "convert_ckpt.py",
    "train": "training+inference",
    "msrun": "msrun",
}


@functools.cache
def known_flags() -> dict[str, frozenset[str]]:
    """Entry point ("preprocess_data.py", "convert_ckpt.py", "training+inference", "msrun") -> flags."""
    table: dict[str, set[str]] = {}
    text = resources.files("runner").joinpath("data/mindspeed_flags.tsv").read_text(encoding="utf-8")
    for line in text.splitlines()[1:]:
        flag, entry, _ = line.split("\t", 2)
        key = entry.split(" ", 1)[0]
        table.setdefault(key, set()).add(flag)
    return {key: frozenset(flags) for key, flags in table.items()}
