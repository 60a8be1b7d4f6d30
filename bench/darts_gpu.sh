#!/usr/bin/env bash
# The DARTS family on a CUDA GPU, in one go:
#   1. bench/darts_family.py at DARTS' own search configuration (C=16, 8 cells, batch 64):
#      step time and peak memory of the four methods;
#   2. the searcher contract test with every supernet on the GPU;
#   3. bench/search_vs_random.py for DARTS and GDAS on digits-hard, searches and
#      retraining on the GPU, 8 processes (on an H200 steps 1-2 took 2 minutes; step 3 did
#      not finish in 330 s: the processes share one GPU. VS_RANDOM_S sets its limit).
#
#   bench/darts_gpu.sh OUTDIR LUT TARGET_MS
#
# LUT is a darts@32 (C=8, 5 cells) table, e.g. from `hwlat profile --space darts -r 32
# -o C=8 -o cells=5`; PYTHON picks the interpreter (default .venv/bin/python).
set -uo pipefail
out=${1:?usage: bench/darts_gpu.sh OUTDIR LUT TARGET_MS}
lut=${2:?LUT}
target=${3:?TARGET_MS}
py=${PYTHON:-.venv/bin/python}
mkdir -p "$out"
. "$(dirname "$0")/_steps.sh"  # step NAME CMD...

step machine sh -c "nvidia-smi --query-gpu=name,driver_version,clocks.sm,memory.used \
--format=csv; $py -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0))'"
step steps timeout 120 "$py" bench/darts_family.py --device cuda --C 16 --cells 8 --batch 64 \
    --rounds 3 --threads 4 --json "$out/darts_family.json"
step contract timeout 90 "$py" -m pytest -q -p no:cacheprovider -rs \
    "tests/searchers/test_registry.py::test_contract_on_cuda"
step vs_random timeout "${VS_RANDOM_S:-330}" "$py" bench/search_vs_random.py \
    --searcher darts,gdas --space darts -r 32 -w 1 -o C=8 -o cells=5 --lut "$lut" \
    --target-ms "$target" --seeds 3 --random 8 --dataset digits-hard --set epochs=6 \
    --retrain-epochs 10 \
    --device cuda --jobs 8 --json "$out/vs_random.json"
exit $status
