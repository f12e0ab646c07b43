"""TEST DOUBLE for the ascend-runner simulator, not MindSpeed-LLM.

Stand-in of MindSpeed-LLM 2.1.0 ``posttrain_gpt.py``: accepts exactly the training flags, applies the
Megatron/MindSpeed-LLM cross-checks, joins the msrun cluster (MindSpore on CPU), all-reduces a
loss every iteration and saves/loads Megatron-layout checkpoints (see mindspeed_llm/standin/train.py).
"""

import sys

from mindspeed_llm.standin.train import main

if __name__ == "__main__":
    sys.exit(main("posttrain_gpt.py"))
