#!/usr/bin/env bash
# The GPU paths on a machine with a CUDA GPU, in one go (sized for one short lease):
#   1. what the machine is (GPU, clocks, torch/CUDA, onnxruntime's providers);
#   2. the tests that need a GPU, with the runtime and timing tests around them, and a
#      tiny search of every registered searcher with its supernet on the GPU;
#   3. bench/predictor_accuracy.py on torch-cuda: sampled ops, a space and networks
#      measured through service + agent, predictors trained, networks validated;
#   4. bench/measurement_retest.py on torch-cuda: how far GPU labels repeat.
#
#   bench/gpu_check.sh OUTDIR [SAMPLES] [NETWORKS] [AGENT_TIMEOUT_S] [RETEST_N]
#
# PYTHON picks the interpreter (default .venv/bin/python), RUNTIME the runtime of steps
# 3-4 (default torch-cuda; ort-cuda where onnxruntime has its CUDA provider), KINDS the
# op kinds of step 3 (default mbconv). Every step writes its log under OUTDIR and the
# script goes on after a failed step, so one run shows them all.
set -uo pipefail
out=${1:?usage: bench/gpu_check.sh OUTDIR [SAMPLES] [NETWORKS] [AGENT_TIMEOUT_S] [RETEST_N]}
# defaults fit a 15-minute lease: on an H200 the torch-cuda agent measured 0.5 ops/s
# (every op ran to its 2 s budget), so 300 s of agent measures about 150 blocks
samples=${2:-150}
networks=${3:-6}
agent_timeout=${4:-300}
retest_n=${5:-40}
py=${PYTHON:-.venv/bin/python}
runtime=${RUNTIME:-torch-cuda}
mkdir -p "$out"
. "$(dirname "$0")/_steps.sh"  # step NAME CMD...

step machine sh -c "nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,\
temperature.gpu,utilization.gpu,memory.used --format=csv; $py -c '
import onnxruntime as ort, torch
print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.get_device_name(0))
print(\"onnxruntime\", ort.__version__, ort.get_available_providers())'"
step tests "$py" -m pytest -q -p no:cacheprovider -rs \
    tests/devices/test_runtimes.py tests/profiler/test_timing.py tests/hwlat/test_profile_cmd.py \
    "tests/devices/test_agent_reliability.py::test_torch_cuda_agent_measures_a_space_and_networks" \
    "tests/searchers/test_registry.py::test_contract_on_cuda"
step predictors "$py" bench/predictor_accuracy.py --runtime "$runtime" --kinds "${KINDS:-mbconv}" \
    --samples "$samples" --networks "$networks" --agent-timeout "$agent_timeout"
if [ "$retest_n" -gt 0 ]; then
    step retest "$py" bench/measurement_retest.py --runtime "$runtime" --n "$retest_n"
fi
exit $status
