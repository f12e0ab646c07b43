"""Stand-in of the megatron package (TEST DOUBLE for the ascend-runner simulator, not Megatron-LM)."""
