"""TEST DOUBLE for the ascend-runner simulator, not MindSpeed-LLM.

Stand-in of MindSpeed-LLM 2.1.0 ``preprocess_data.py``: accepts exactly its flags, applies its
``validate_args`` checks and writes its output file names (see mindspeed_llm/standin/preprocess.py).
"""

import sys

from mindspeed_llm.standin.preprocess import main

if __name__ == "__main__":
    sys.exit(main())
