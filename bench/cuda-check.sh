#!/usr/bin/env bash
# The GPU checks in one go: the benchmark at the paper's sizes, the CUDA-only tests, and one epoch of
# each PTB stage at the paper's size on a random PTB-sized corpus (fast path, then the definition).
#   bash bench/cuda-check.sh [OUTDIR]      (default: bench-cuda/)
# Writes OUTDIR/gpu.txt, bench-cuda.txt/.json, bench-dvs-autotuned.txt, pytest-cuda.txt, ptb-epoch.txt.
# BENCH_TIMEOUT, TEST_TIMEOUT, EPOCH_TIMEOUT (seconds) bound the parts; the JSON keeps every finished section.
# SCALE (fraction of PTB's size) and PTB_FLAGS (extra script flags) shrink the PTB part, for a dry run.
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

work=$(mktemp -d)
$py - "$work/ptb" "${SCALE:-1}" <<'PY'
import os, random, sys
root, scale = sys.argv[1], float(sys.argv[2])
os.makedirs(root)
rng, words = random.Random(0), [f"w{i}" for i in range(9999)]  # + <eos>: the 10000 words of PTB
for split, n in (("train", 887521), ("valid", 70390), ("test", 78669)):  # PTB's word counts
    with open(os.path.join(root, f"ptb.{split}.txt"), "w") as f:
        for i in range(0, int(n * scale), 21):
            f.write(" " + " ".join(rng.choices(words, k=21)) + " \n")
PY
script="$root/experiments/rnn-ptb-650-0.5-0.6/rnn-ptb.py"
{
  for path in fast definition; do
    mkdir -p "$work/$path" && cd "$work/$path"
    flags="--data $work/ptb --device cuda --stage1_epochs 1 --stage2_epochs 1 ${PTB_FLAGS:-}"
    [ $path = definition ] && flags="$flags --definition"
    for mode in train1 train2; do
      t0=$(date +%s%N)
      HSTNN_PROFILE_FILE=profile-$mode.json timeout "${EPOCH_TIMEOUT:-300}" $py "$script" $flags --mode $mode > /dev/null 2>&1
      echo "== $path $mode: exit $?, $(( ($(date +%s%N) - t0) / 1000000 )) ms, $(cat profile-$mode.json)"
      cat log/train_ptb_hybrid_1111*.log | grep -v "^| epoch\|^rnn\|^snn" ; rm -f log/*.log
      [ $path = definition ] && break  # the definition's train2: its selection is in the benchmark above
    done
  done
} > "$out/ptb-epoch.txt" 2>&1
cat "$out/ptb-epoch.txt"
