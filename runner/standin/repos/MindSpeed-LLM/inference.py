"""TEST DOUBLE for the ascend-runner simulator, not MindSpeed-LLM.

Stand-in of MindSpeed-LLM 2.1.0 ``inference.py``: accepts exactly its flags, loads ``--load`` on
every rank under msrun and prints a short generated text on rank 0 (see mindspeed_llm/standin/train.py).
"""

import sys

from mindspeed_llm.standin.train import generate

if __name__ == "__main__":
    sys.exit(generate("inference.py"))
