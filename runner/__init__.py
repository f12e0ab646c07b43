"""ascend-runner: provision Ascend clusters and run MindSpeed-LLM jobs across them."""

__version__ = "0.1.0"
