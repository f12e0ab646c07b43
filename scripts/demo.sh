#!/usr/bin/env bash
# `make demo`: the main job from a fresh clone. For now it shows the plan and renders the
# scripts of the main job; the end-to-end run on the simulated cluster comes with issue 6.
set -euo pipefail
cd "$(dirname "$0")/.."
runner plan jobs/qwen25-math-7b-openr1.yaml --nodes 2
runner render jobs/qwen25-math-7b-openr1.yaml --nodes 2 --out runs/demo-render --force
echo "rendered scripts: runs/demo-render/"
