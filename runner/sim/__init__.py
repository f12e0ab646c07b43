"""A simulated Atlas 800T A2 cluster on one Linux machine (`runner sim`).

Each node is a network namespace on a bridge with a real sshd, in its own mount namespace that
shows per-node Ascend files, NPU device nodes, fake npu-smi/hccn_tool, podman storage and
/mnt/data. Everything that crosses the network (SSH, Ansible, containers, msrun) is real.
"""
