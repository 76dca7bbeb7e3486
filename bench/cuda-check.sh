#!/usr/bin/env bash
# The GPU checks in one go: the benchmark at the paper's sizes, the CUDA-only tests, and one epoch of
# each PTB stage at the paper's size (bench/ptb-epoch.sh).
#   bash bench/cuda-check.sh [OUTDIR]      (default: bench-cuda/)
# Writes OUTDIR/gpu.txt, bench-cuda.txt/.json, bench-dvs-autotuned.txt, pytest-cuda.txt, ptb-epoch.txt.
# BENCH_TIMEOUT, TEST_TIMEOUT (seconds) bound the parts; the JSON keeps every finished section.
set -u
out=$(mkdir -p "${1:-bench-cuda}" && cd "${1:-bench-cuda}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $py -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
} > "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"

timeout "${BENCH_TIMEOUT:-600}" $py bench/run.py --device cuda --probes "${PROBES:-20}" --probe-batches 1,10,20 --profile \
    --json "$out/bench-cuda.json" > "$out/bench-cuda.txt" 2>&1
echo "bench exit $?"; grep '^|' "$out/bench-cuda.txt"
timeout "${BENCH_TIMEOUT:-600}" $py bench/run.py --device cuda --only dvs --cudnn benchmark > "$out/bench-dvs-autotuned.txt" 2>&1
echo "bench (dvs, cudnn autotuned) exit $?"; grep '^| DVS' "$out/bench-dvs-autotuned.txt"

timeout "${TEST_TIMEOUT:-600}" $py -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_fast_lif.py \
    tests/test_fast_paths.py "tests/test_event_pipelines.py::test_dvs_adaptation_and_selection_on_cuda" \
    > "$out/pytest-cuda.txt" 2>&1
echo "pytest exit $?"; tail -5 "$out/pytest-cuda.txt"

bash bench/ptb-epoch.sh "$out"
