"""What the default path's rounding does to results: seed-paired final metrics, default vs --definition.

For every experiment and seed, the real script runs Adaptation (train1 --model hybrid) and Selection +
Restoration (train2 --ratio 0.5) twice, in two folders: once on the default execution and once with
--definition. Everything else (data, seed, flags) is the same, so the pair differs only by the float
rounding of the layer-major path. Reported per experiment and stage: the per-seed differences
(default - definition), their mean with a 95% confidence interval (Student t, n - 1 degrees of freedom),
and the seed spread (standard deviation of the metric across seeds) to compare them with.

    python bench/definition-vs-default.py --data <folder with penn-treebank/, MNIST/raw/, N-MNIST-sample/>
        [--seeds 5] [--out bench/DEFINITION-VS-DEFAULT]      # writes <out>.md and <out>.json

Small sizes on purpose (a few minutes per experiment on one CPU thread): PTB on the first 1,000 lines
of the real training split (the vocabulary of the truncated files), S-MNIST on the 5,000-digit sample,
N-MNIST on the real sample (6 training recordings per digit moved to the test split, which needs 100), DVS Gesture on synthetic recordings in the real AEDAT 3.1 layout.
"""
import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))  # the AEDAT writers of the tests
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
       11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 19: 2.093, 29: 2.045}
COMMON = ["--device", "cpu", "--threads", "1"]
DATA = ("PTB, the first 1,000 / 200 / 200 lines of the real training / validation / test splits (their vocabulary); "
        "S-MNIST, the real 5,000-digit sample (4,000 training, 1,000 test images); N-MNIST, the real 545-recording "
        "sample with 6 training recordings per digit moved to the test split (437 / 108; the script keeps 400 / 100); "
        "DVS Gesture, synthetic AEDAT 3.1 recordings (12 training and 6 test users, 3 gestures each, each class's "
        "events in a band of rows of its own).")


def script(folder, name):
    return os.path.join(ROOT, "experiments", folder, name)


EXPERIMENTS = {
    "PTB (test perplexity)": dict(
        script=script("rnn-ptb-650-0.5-0.6", "rnn-ptb.py"), dataset="ptb", higher=False,
        flags=["--nhid", 16, "--emsize", 16, "--bptt", 20, "--batch_size", 20, "--stage1_epochs", 2,
               "--stage2_epochs", 1, "--hessian_probes", 20, "--log-interval", 50]),
    "S-MNIST (test accuracy %)": dict(
        script=script("rnn-smnist-800-0.5-0.6", "rnn-smnist.py"), dataset="mnist", higher=True,
        flags=["--nhid", 16, "--batch_size", 100, "--stage1_epochs", 3, "--stage2_epochs", 1, "--stage1_lr", 3e-3,
               "--stage2_lr", 1e-3, "--hessian_probes", 20, "--log-interval", 20]),
    "N-MNIST (test accuracy %)": dict(
        script=script("rcnn-nmnist-128-0.25-0.3-0.3", "rcnn-nmnist.py"), dataset="nmnist", higher=True,
        flags=["--channels", "4,4,4", "--nwin", 8, "--batch_size", 50, "--stage1_epochs", 4, "--stage2_epochs", 2,
               "--stage1_lr", 5e-3, "--stage2_lr", 2e-3, "--hessian_probes", 10, "--hessian_batch", 50,
               "--log-interval", 4]),
    "DVS Gesture, synthetic (test accuracy %)": dict(
        script=script("rcnn-dvs-ges-128-0.5-0.3-0.5", "rcnn-dvs-ges.py"), dataset="dvsGesture", higher=True,
        flags=["--channels", "4,4,4", "--nwin", 8, "--ds", 16, "--batch_size", 4, "--test_interval", 10,
               "--stage1_epochs", 60, "--stage2_epochs", 20, "--stage1_lr", 5e-3, "--stage2_lr", 2e-3,
               "--hessian_probes", 10, "--hessian_batch", 4]),
}


# -- data ----------------------------------------------------------------------------------------------------
def prepare(data, work):
    """Per experiment: the --data flag of its runs (files written under `work`)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    ptb = os.path.join(work, "ptb")
    os.makedirs(ptb)
    for split, lines in (("train", 1000), ("valid", 200), ("test", 200)):
        with open(os.path.join(data, "penn-treebank", f"ptb.{split}.txt")) as f, \
                open(os.path.join(ptb, f"ptb.{split}.txt"), "w") as out:
            out.writelines(line for _, line in zip(range(lines), f))
    nmnist = os.path.join(work, "nmnist")
    shutil.copytree(os.path.join(data, "N-MNIST-sample"), os.path.join(nmnist, "N-MNIST"))
    for digit in range(10):  # the sample's 48 test recordings and 6 training ones per digit: 100+ to test on
        train = os.path.join(nmnist, "N-MNIST", "Train", str(digit))
        for name in sorted(os.listdir(train))[-6:]:
            os.replace(os.path.join(train, name), os.path.join(nmnist, "N-MNIST", "Test", str(digit), "train-" + name))
    subprocess.run([sys.executable, os.path.join(ROOT, "data", "nmnist-dataset-gen.py"), "3", "--root", nmnist],
                   check=True, capture_output=True, env=env)
    dvs = os.path.join(work, "dvs")
    write_synthetic_gestures(os.path.join(dvs, "DvsGesture"))
    subprocess.run([sys.executable, os.path.join(ROOT, "data", "dvs-hdf5-gen.py"), "--root", dvs],
                   check=True, capture_output=True, env=env)
    return {"ptb": ptb, "mnist": os.path.join(data, "MNIST", "raw"),
            "nmnist": os.path.join(nmnist, "N-MNIST", "processed"), "dvsGesture": os.path.join(dvs, "DvsGesture")}


def write_synthetic_gestures(folder):
    """12 training and 6 test users' recordings, 3 gestures each; each class fires in its own image band."""
    from event_writers import write_gesture_recording
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    users = [f"user{u:02d}_lab" for u in list(range(1, 13)) + list(range(24, 30))]
    for k, name in enumerate(users):
        ts, es, rows = [], [], []
        for g in range(3):
            label, start = (3 * k + g) % 11 + 1, 1_000_000 + g * 600_000
            rows.append((label, start, start + 400_000))
            n = 600
            ts.append(np.sort(rng.integers(start, start + 400_000, n)))
            x = rng.integers(0, 128, n)
            y = np.clip(rng.normal(label * 10, 6, n), 0, 127).astype(int)  # the class is where the events are
            es.append(np.stack([x, y, rng.integers(0, 2, n)], 1))
        write_gesture_recording(folder, name, np.concatenate(ts), np.concatenate(es), rows)


# -- runs ----------------------------------------------------------------------------------------------------
def final_metric(log):
    with open(log) as f:
        line = [l for l in f.read().splitlines() if l.startswith("| Performance on Test Set |")][-1]
    return float(re.findall(r"[-+]?\d+\.\d+", line)[-1])


def run(exp, folder, data, seed, mode, definition):
    args = [sys.executable, exp["script"], "--data", data, "--seed", str(seed), "--model", "hybrid", "--mode", mode,
            *map(str, exp["flags"]), *COMMON] + (["--ratio", "0.5"] if mode == "train2" else []) + \
           (["--definition"] if definition else [])
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run(args, cwd=folder, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    name = f"{exp['dataset']}_hybrid_{seed}" + ("_0.5" if mode == "train2" else "")
    return final_metric(os.path.join(folder, "log", f"train_{name}.log"))


def summary(default, definition):
    diffs = [a - b for a, b in zip(default, definition)]
    n = len(diffs)
    mean = statistics.fmean(diffs)
    half = T95[n - 1] * statistics.stdev(diffs) / math.sqrt(n) if n > 1 else float("nan")
    spread = statistics.stdev(definition) if n > 1 else float("nan")
    return dict(diffs=diffs, mean=mean, ci95=[mean - half, mean + half], seed_std_definition=spread,
                seed_std_default=statistics.stdev(default) if n > 1 else float("nan"),
                identical=sum(d == 0 for d in diffs))


def table(results, seeds):
    lines = ["| experiment | stage | default − definition, per seed | mean [95% CI] | seed std (definition) | identical |",
             "|---|---|---|---|---|---|"]
    for name, stages in results.items():
        for stage, r in stages.items():
            s = r["summary"]
            per_seed = ", ".join(f"{d:+.2f}" for d in s["diffs"])
            lines.append(f"| {name} | {stage} | {per_seed} | {s['mean']:+.2f} [{s['ci95'][0]:+.2f}, {s['ci95'][1]:+.2f}] "
                         f"| {s['seed_std_definition']:.2f} | {s['identical']}/{len(seeds)} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder holding penn-treebank/, MNIST/raw/ and N-MNIST-sample/")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first_seed", type=int, default=1)
    p.add_argument("--only", nargs="*", default=None,
                   help="experiment names starting with these words (the others' results in --out are kept)")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "DEFINITION-VS-DEFAULT"))
    args = p.parse_args()
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    results, started = {}, time.time()
    if args.only and os.path.exists(args.out + ".json"):  # rerun some experiments, keep the others' results
        with open(args.out + ".json") as f:
            previous = json.load(f)
        if previous["meta"]["seeds"] == seeds:
            for name, r in previous["results"].items():
                if not any(name.startswith(w) for w in args.only) and name in EXPERIMENTS:
                    results[name] = dict(r, flags=previous["meta"]["flags"][name], seconds=previous["meta"]["seconds"][name])
    with tempfile.TemporaryDirectory() as work:
        data = prepare(os.path.abspath(args.data), work)
        for name, exp in EXPERIMENTS.items():
            if args.only and not any(name.startswith(w) for w in args.only):
                continue
            folders = {path: os.path.join(work, "runs", exp["dataset"], path) for path in ("default", "definition")}
            metrics = {(path, stage): [] for path in folders for stage in ("train1", "train2")}
            t0 = time.time()
            for seed in seeds:
                for path, folder in folders.items():
                    os.makedirs(folder, exist_ok=True)
                    for stage in ("train1", "train2"):
                        metrics[path, stage].append(run(exp, folder, data[exp["dataset"]], seed, stage, path == "definition"))
                print(f"{name} seed {seed}: " + ", ".join(f"{k[0]} {k[1]} {v[-1]}" for k, v in metrics.items()), flush=True)
            results[name] = {
                {"train1": "Adaptation (train1)", "train2": "Restoration (train2, ratio 0.5)"}[stage]: dict(
                    default=metrics["default", stage], definition=metrics["definition", stage],
                    summary=summary(metrics["default", stage], metrics["definition", stage]))
                for stage in ("train1", "train2")}
            results[name]["flags"] = " ".join(map(str, exp["flags"]))
            results[name]["seconds"] = round(time.time() - t0)
            write(results, seeds, args.out, started)  # after every experiment: a later failure keeps these


def write(results, seeds, out, started):
    import torch
    results = {name: dict(r) for name, r in results.items()}
    flags = {name: r.pop("flags") for name, r in results.items()}
    seconds = {name: r.pop("seconds") for name, r in results.items()}
    meta = dict(seeds=seeds, torch=torch.__version__, device="cpu, 1 thread", total_seconds=round(time.time() - started),
                flags=flags, seconds=seconds)
    with open(out + ".json", "w") as f:
        json.dump(dict(meta=meta, results=results), f, indent=1)
    with open(out + ".md", "w") as f:
        f.write(f"# Default path vs --definition: seed-paired final metrics\n\n"
                f"Written by `bench/definition-vs-default.py` (seeds {seeds[0]}–{seeds[-1]}, torch {torch.__version__}, "
                f"CPU, one thread; raw numbers in `{os.path.basename(out)}.json`). Each pair ran the same script, data, "
                f"seed and flags; only the execution differed. `identical`: seeds whose two final metrics are equal.\n\n"
                f"Data: {DATA}\n\n{table(results, seeds)}\n\nFlags per experiment "
                "(besides `--seed`, `--device cpu --threads 1`, `--model hybrid`, `--ratio 0.5` for train2):\n\n" +
                "\n".join(f"- {name}: `{fl}`" for name, fl in flags.items()) + "\n")
    print(table(results, seeds), flush=True)


if __name__ == "__main__":
    main()
