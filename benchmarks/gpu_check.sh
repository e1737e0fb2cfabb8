#!/usr/bin/env bash
# The GPU figures of the README's performance section, in one run on a CUDA machine (at most 10 minutes):
#   1. benchmarks/throughput.py --device cuda: platform step vs bare loop (DCGAN-64, ring8 MLP; fp32, bf16),
#      seed-steps/s sequential vs seed-batched (S = 1, 4, 10, 40), deterministic mode's cost and repeatability;
#   2. benchmarks/tune_slots.py --device cuda: a ring8 study of 12 trials through Ray Tune at resources.gpu 1,
#      0.25 and 0.1 (trials per GPU, concurrency from the MLflow run times);
#   3. a few epochs of the 64 px DCGAN study (label-flip grid, 2 seeds, resources.gpu 0.25) on scikit-learn's
#      digits resized to 64 px (bundled: such a machine may have no network for MNIST);
#   4. the README demo study (ring8_label_noise --quick, 10 epochs) with the 4 seeds of a configuration in one
#      seed-batched trial (seeds_per_trial 4, resources.gpu 0.05 a seed).
# Usage: bash benchmarks/gpu_check.sh [OUT_DIR]   (default benchmarks/out/gpu: 8 files). Where the machine has no
# package index, carry the wheels the study needs in .whl/ (docs/stack.md, "A GPU machine without a network");
# they are installed into /tmp/site first. Each step has its own time limit and log; a failing step does not stop
# the others.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/out/gpu}
mkdir -p "$out" /tmp/gan-study
export PYTHONUNBUFFERED=1 GAN_STUDY_HOME=/tmp/gan-study GAN_STUDY_DATA=/tmp/gan-study/data GAN_STUDY_BENCH_THREADS=1
export GAN_STUDY_TRUST_DIR=/tmp/gan-study/trusted CUBLAS_WORKSPACE_CONFIG=:4096:8  # before CUDA starts
py=${PYTHON:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then
    $py -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || echo "wheel install failed" >&2
    export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi

step() {  # step NAME SECONDS CMD...: run CMD under a time limit, its output to $out/NAME.log
    local t0=$SECONDS rc=0
    echo "==> $1"
    timeout "$2" "${@:3}" >"$out/$1.log" 2>&1 || rc=$?
    tail -n 30 "$out/$1.log"
    echo "==> $1: exit $rc in $((SECONDS - t0)) s"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  echo "commit ${GAN_STUDY_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}; $(date -u +%FT%TZ)"; } >"$out/card.txt" 2>&1
cat "$out/card.txt"

step throughput 200 $py benchmarks/throughput.py --device cuda --skip-tune --determinism
cp benchmarks/out/throughput_cuda.md docs/gpu_costs.md "$out/" 2>/dev/null  # the table --dry-run prices with
step tune_slots 180 $py benchmarks/tune_slots.py --device cuda --trials 12 --epochs 2 --steps 100
cp benchmarks/out/tune_slots.md "$out/" 2>/dev/null
cat >/tmp/gan-study/dcgan64.yaml <<'SPEC'
name: gpu_dcgan64
description: the seed DCGAN at 64 px, label flip 0 / 10 %, on digits resized to 64 px (GPU check)
fixed:
  data: {name: digits, image_size: 64}
  model: {name: dcgan}
  remedies: {label_flip: {rate: 0.0}}
  train: {epochs: 4, batch_size: 64, lr: 2.0e-4}
  eval: {n_samples: 1000, grid_every: 2}
search:
  remedies.label_flip.rate: {grid: [0.0, 0.1]}
seeds: 2
resources: {cpu: 1, gpu: 0.25}
SPEC
step dcgan64 110 $py -m study.run /tmp/gan-study/dcgan64.yaml
step demo_batched 70 $py -m study.run search_spaces/ring8_label_noise.yaml --quick --set resources.cpu=1 \
    --set resources.gpu=0.05 --set seeds_per_trial=4 --set train.epochs=10
echo "done: $out"
