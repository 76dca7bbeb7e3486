#!/usr/bin/env bash
# One epoch of each PTB stage at the paper's size (nhid 650, bptt 35, 300 Hessian probes) on a random
# corpus of PTB's size and vocabulary, through the experiment script on CUDA: train1 and train2 on the
# fast path, then train1 with --definition. Prints the logs, wall times and peak GPU memory.
#   bash bench/ptb-epoch.sh [OUTDIR]   -> OUTDIR/ptb-epoch.txt
# EPOCH_TIMEOUT (seconds) bounds each run; SCALE (fraction of PTB's size) and PTB_FLAGS (extra script
# flags) shrink it for a dry run, e.g. SCALE=0.01 PTB_FLAGS="--nhid 16 --device cpu".
set -u
out=$(mkdir -p "${1:-bench-cuda}" && cd "${1:-bench-cuda}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
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
    flags="--data $work/ptb --device cuda --nhid 650 --emsize 650 --bptt 35 --stage1_epochs 1 --stage2_epochs 1 ${PTB_FLAGS:-}"
    [ $path = definition ] && flags="$flags --definition"
    for mode in train1 train2; do
      t0=$(date +%s%N)
      HSTNN_PROFILE_FILE=profile-$mode.json timeout "${EPOCH_TIMEOUT:-300}" $py "$script" $flags --mode $mode > /dev/null 2>&1
      echo "== $path $mode: exit $?, $(( ($(date +%s%N) - t0) / 1000000 )) ms, $(cat profile-$mode.json)"
      cat log/train_ptb_hybrid_1111*.log | grep -v "^rnn[12]: \|^snn[12]: " ; rm -f log/*.log
      [ $path = definition ] && break  # the definition's train2: its selection is in the benchmark above
    done
  done
} > "$out/ptb-epoch.txt" 2>&1
cat "$out/ptb-epoch.txt"
