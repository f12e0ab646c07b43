"""TEST DOUBLE for the ascend-runner simulator, not MindSpeed-Core-MS.

The real tools/transfer.py patches MindSpeed-LLM, MindSpeed and Megatron-LM in place for the
MindSpore backend. The stand-in repositories need no patching: this only checks the paths.
"""

import argparse
import os
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megatron_path", required=True)
    parser.add_argument("--mindspeed_path", required=True)
    parser.add_argument("--mindspeed_llm_path", required=True)
    args = parser.parse_args()
    for path in (args.megatron_path, args.mindspeed_path, args.mindspeed_llm_path):
        if not os.path.isdir(path):
            print(f"Error: {path} is not a directory", file=sys.stderr)
            return 1
    print("stand-in transfer.py: code conversion skipped (the stand-in repositories need no patching)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
