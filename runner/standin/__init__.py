"""The simulator's stand-in MindSpeed stack, sample data and tiny model.

- ``bundles.build_bundles``: stand-in repositories (TEST DOUBLES of MindSpeed-Core-MS,
  MindSpeed-LLM, MindSpeed, Megatron-LM, MSAdapter) as git repos and bundles;
- ``sample_data.make_sample_dataset``: OpenR1-Math-220K-shaped parquet shards;
- ``tiny_model.make_tiny_model``: a tiny Qwen2.5-family model directory;
- ``simvars.write_sim_inventory_vars``: the inventory variables provisioning reads.

The stand-in sources live in ``repos/<Name>/``; they run on the nodes and never import runner.
"""
