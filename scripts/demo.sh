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
# Defaults are those of the README; the end-to-end test points them at a private cluster.
state_dir="${RUNNER_SIM_DIR:-$PWD/.sim}"
inventory="${DEMO_INVENTORY:-inventory/sim}"
runs_root="${RUNNER_RUNS_DIR:-runs}"
read -r -a sim_options <<< "${DEMO_SIM_OPTIONS:-}"   # e.g. "--prefix ardemo --subnet 10.240.0.0/24"
job=jobs/sim-openr1-sft.yaml
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

if [ -f "$state_dir/cluster.json" ]; then
  step "a simulated cluster from an earlier run is still up: taking it down first"
  runner sim down --state-dir "$state_dir"
fi
trap 'step "runner sim down"; runner sim down --state-dir "$state_dir"' EXIT
start=$SECONDS

step "runner sim up --nodes 2"
runner sim up --nodes 2 --state-dir "$state_dir" --inventory "$inventory" "${sim_options[@]}"

step "ansible-playbook -i $inventory site.yml"
ansible-playbook -i "$inventory" site.yml

step "runner launch --nodes 2 $job"
runner launch --nodes 2 -i "$inventory" --runs-dir "$runs_root" "$job"

# The run just finished is the newest of this job.
run_dir=$(find "$runs_root" -maxdepth 1 -name 'sim-openr1-sft-*' -printf '%T@ %p\n' | sort -n | tail -n 1 | cut -d' ' -f2-)
run_id=$(basename "$run_dir")
export_dir=$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["checkpoint"]["export_dir"])' "$job")
# Shared storage: every node's /mnt/data is this one directory of the simulator.
cp -r "$state_dir/shared-data/${export_dir#/mnt/data/}/mg2hf" "$run_dir/export"

runs_opt=""
if [ "$runs_root" != runs ]; then runs_opt=" --runs-dir $runs_root"; fi
step "done in $((SECONDS - start)) s"
cat <<MSG
Exported Hugging Face model (on the nodes: $export_dir/mg2hf), copied to:
  $run_dir/export/
    $(cd "$run_dir/export" && echo *)
Look at the run:
  runner status $run_id$runs_opt              # stage x node table
  runner logs $run_id$runs_opt --node 1       # one node's log; --rank 3 for one rank, -f to follow
  ls $run_dir                        # job.yaml, plan.json, the rendered scripts, logs/
MSG
