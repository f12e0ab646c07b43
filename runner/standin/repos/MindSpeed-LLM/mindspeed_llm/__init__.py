"""Stand-in of the ``mindspeed_llm`` package for the ascend-runner simulator (TEST DOUBLE)."""
