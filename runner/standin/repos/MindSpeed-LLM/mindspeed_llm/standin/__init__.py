"""Shared code of the stand-in entry points (TEST DOUBLE for the simulator, not MindSpeed-LLM)."""
