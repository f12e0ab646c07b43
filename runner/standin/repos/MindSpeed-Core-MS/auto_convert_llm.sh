#!/bin/bash
# TEST DOUBLE for the ascend-runner simulator, not MindSpeed-Core-MS.
# Stand-in of MindSpeed-Core-MS r0.3.0 auto_convert_llm.sh. Like the real script it must be
# sourced (`source auto_convert_llm.sh`), re-clones MindSpeed-LLM, MindSpeed, Megatron-LM and
# MSAdapter from their public URLs at the pinned branches, and exports PYTHONPATH. It does
# not know whether it is offline: a site without network serves these URLs from git bundles
# through `git config url.<local>.insteadOf <public url>`.
# Skipped on purpose: the transformers/accelerate clones and the pip steps (safetensors,
# huggingface_hub, bitsandbytes) of the real script; the stand-in entry points need none of them.

rm -rf MindSpeed-LLM
git clone https://gitee.com/ascend/MindSpeed-LLM.git -b 2.1.0
if [ $? -ne 0 ]; then
    echo "Error: git clone MindSpeed-LLM"
    exit 1
fi
rm -rf MindSpeed-LLM/tests

rm -rf MindSpeed
git clone https://gitee.com/ascend/MindSpeed.git -b 2.1.0_core_r0.8.0
if [ $? -ne 0 ]; then
    echo "Error: git clone MindSpeed"
    exit 1
fi
rm -rf MindSpeed/tests_extend

rm -rf Megatron-LM
git clone https://gitee.com/mirrors/Megatron-LM.git -b core_r0.8.0
if [ $? -ne 0 ]; then
    echo "Error: git clone Megatron-LM"
    exit 1
fi
rm -rf Megatron-LM/tests

rm -rf MSAdapter
git clone https://openi.pcl.ac.cn/OpenI/MSAdapter.git -b msa_r0.2.0
if [ $? -ne 0 ]; then
    echo "Error: git clone MSAdapter"
    exit 1
fi
rm -rf MSAdapter/tests

MindSpeed_Core_MS_PATH=$(pwd)
python3 tools/transfer.py \
--megatron_path ${MindSpeed_Core_MS_PATH}/Megatron-LM/megatron/ \
--mindspeed_path ${MindSpeed_Core_MS_PATH}/MindSpeed/mindspeed/ \
--mindspeed_llm_path ${MindSpeed_Core_MS_PATH}/MindSpeed-LLM/

export PYTHONPATH=${MindSpeed_Core_MS_PATH}/MSAdapter/mindtorch:${MindSpeed_Core_MS_PATH}/Megatron-LM:${MindSpeed_Core_MS_PATH}/MindSpeed:${MindSpeed_Core_MS_PATH}/MindSpeed-LLM:${MindSpeed_Core_MS_PATH}/transformers/src/:${MindSpeed_Core_MS_PATH}/accelerate/src/:$PYTHONPATH
