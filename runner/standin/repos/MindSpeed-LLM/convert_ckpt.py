"""TEST DOUBLE for the ascend-runner simulator, not MindSpeed-LLM.

Stand-in of MindSpeed-LLM 2.1.0 ``convert_ckpt.py`` (hf -> mcore and mcore -> hf): accepts exactly
its flags and writes the Megatron / ``mg2hf`` layouts (see mindspeed_llm/standin/convert.py).
"""

import sys

from mindspeed_llm.standin.convert import main

if __name__ == "__main__":
    sys.exit(main())
