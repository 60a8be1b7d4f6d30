#!/usr/bin/env bash
# SPOS and FairNAS on a CUDA GPU, in one go:
#   1. bench/spos_steps.py: weight step time and peak memory against the number of
#      candidates (and of channel choices), time per generation of the evolution;
#   2. the searcher contract test with every supernet on the GPU;
#   3. bench/spos_ranking.py: both supernets trained inside one latency window, Kendall τ
#      of their scores (with and without BN recalibration) against ARCHS architectures
#      retrained from scratch, and each evolution's pick against them (RANKING_S limit).
#
#   bench/spos_gpu.sh OUTDIR LUT MIN_MS MAX_MS [EPOCHS]
#
# LUT is a spos-shufflenet@32 table with 10 classes (`hwlat profile --space spos-shufflenet
# -r 32 --classes 10`); PYTHON picks the interpreter (default .venv/bin/python).
set -uo pipefail
out=${1:?usage: bench/spos_gpu.sh OUTDIR LUT MIN_MS MAX_MS [EPOCHS]}
lut=${2:?LUT}
lo=${3:?MIN_MS}
hi=${4:?MAX_MS}
epochs=${5:-120}
py=${PYTHON:-.venv/bin/python}
mkdir -p "$out"
. "$(dirname "$0")/_steps.sh"  # step NAME CMD...

step machine sh -c "nvidia-smi --query-gpu=name,driver_version,clocks.sm,memory.used \
--format=csv; $py -c 'import torch; print(torch.__version__, torch.cuda.get_device_name(0))'"
step steps timeout 150 "$py" bench/spos_steps.py --device cuda -r 32 --batch 64 --rounds 5 \
    --channels 1,2,5,10 --json "$out/spos_steps.json"
step contract timeout 90 "$py" -m pytest -q -p no:cacheprovider -rs \
    "tests/searchers/test_registry.py::test_contract_on_cuda" -k "spos or fairnas"
step ranking timeout "${RANKING_S:-420}" "$py" bench/spos_ranking.py --lut "$lut" -r 32 \
    --min-ms "$lo" --max-ms "$hi" --epochs "$epochs" --archs "${ARCHS:-12}" \
    --retrain-epochs 10 --retrain-seeds 2 --device cuda --jobs 8 --json "$out/spos_ranking.json"
exit $status
