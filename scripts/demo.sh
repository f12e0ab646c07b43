#!/usr/bin/env bash
# `make demo`: the guides' pipeline on a simulated 2-node Atlas 800T A2 cluster, from a fresh clone.
#   1. runner sim up --nodes 2                      (network namespaces + sshd + fake NPUs + podman)
#   2. ansible-playbook -i inventory/sim site.yml   (preflight, image, NPU container, CANN env, MindSpeed, assets)
#   3. runner launch --nodes 2 jobs/sim-openr1-sft.yaml   (preprocess -> convert -> train -> generate -> export)
#   4. copy the exported Hugging Face model out of the cluster, then runner sim down
# The simulator is taken down even when a step fails; its image and asset cache (.sim/cache) stay,
# so a second run skips building them.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "error: the simulated cluster needs root (network namespaces, mounts, podman); run: sudo make demo" >&2
  exit 2
fi
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
state_dir="${RUNNER_SIM_DIR:-$PWD/.sim}"
job=jobs/sim-openr1-sft.yaml
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

if [ -f "$state_dir/cluster.json" ]; then
  step "a simulated cluster from an earlier run is still up: taking it down first"
  runner sim down --state-dir "$state_dir"
fi
trap 'step "runner sim down"; runner sim down --state-dir "$state_dir"' EXIT
start=$SECONDS

step "runner sim up --nodes 2"
runner sim up --nodes 2 --state-dir "$state_dir"

step "ansible-playbook -i inventory/sim site.yml"
ansible-playbook -i inventory/sim site.yml

step "runner launch --nodes 2 $job"
runner launch --nodes 2 -i inventory/sim "$job"

run_dir=$(ls -td runs/sim-openr1-sft-*/ | head -n 1)
run_dir=${run_dir%/}
run_id=$(basename "$run_dir")
export_dir=$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["checkpoint"]["export_dir"])' "$job")
# Shared storage: every node's /mnt/data is this one directory of the simulator.
cp -r "$state_dir/shared-data/${export_dir#/mnt/data/}/mg2hf" "$run_dir/export"

step "done in $((SECONDS - start)) s"
cat <<MSG
Exported Hugging Face model (on the nodes: $export_dir/mg2hf), copied to:
  $run_dir/export/
    $(ls "$run_dir/export" | tr '\n' ' ')
Look at the run:
  runner status $run_id              # stage x node table
  runner logs $run_id --node 1       # one node's log; --rank 3 for one rank, -f to follow
  ls $run_dir                        # job.yaml, plan.json, the rendered scripts, logs/
MSG
