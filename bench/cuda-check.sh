#!/usr/bin/env bash
# The GPU checks in one go: the CUDA-only tests, then the benchmark at the paper's sizes.
#   bash bench/cuda-check.sh [OUTDIR]      (default: bench-cuda/)
# Writes OUTDIR/gpu.txt, OUTDIR/pytest-cuda.txt, OUTDIR/bench-cuda.txt and OUTDIR/bench-cuda.json.
# BENCH_TIMEOUT / TEST_TIMEOUT (seconds) bound the two parts; the JSON keeps every finished section.
set -u
out=${1:-bench-cuda}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $py -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
} > "$out/gpu.txt" 2>&1
cat "$out/gpu.txt"
timeout "${BENCH_TIMEOUT:-600}" $py bench/run.py --device cuda --probes "${PROBES:-20}" --profile \
    --json "$out/bench-cuda.json" > "$out/bench-cuda.txt" 2>&1
echo "bench exit $?"; grep '^|' "$out/bench-cuda.txt"
timeout "${TEST_TIMEOUT:-600}" $py -m pytest -q -x -p no:cacheprovider tests/test_cuda.py tests/test_fast_lif.py \
    tests/test_fast_paths.py "tests/test_event_pipelines.py::test_dvs_adaptation_and_selection_on_cuda" \
    > "$out/pytest-cuda.txt" 2>&1
echo "pytest exit $?"; tail -25 "$out/pytest-cuda.txt"
