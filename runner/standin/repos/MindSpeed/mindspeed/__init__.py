"""Stand-in of the mindspeed package (TEST DOUBLE for the ascend-runner simulator, not MindSpeed)."""
