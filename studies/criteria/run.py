"""The selection-criteria study, every run and every table: one command.

    HSTNN_STUDY_DATA=/path/to/data python studies/criteria/run.py

/path/to/data holds MNIST/raw/ with the four IDX files of the 5,000-digit sample (4,000 train, 1,000 test);
the first run copies them to studies/criteria/data/ (git-ignored). Then, through the kit's launcher (one CPU
job at a time, each on one thread; finished runs are skipped, interrupted ones resume):
  mprun-adaptation.py   Adaptation at widths 60 (first), 30, 120, 240 and 480
  mprun-criteria.py     question 2: Selection + Restoration under every criterion (width 60)
  mprun-ffs.py          question 3: ffs at the original and at a matched budget (width 60)
  no_retraining.py      question 1: every criterion right after Selection, and the oracle
  mprun-w800.py         the paper's width: Adaptation and question 2 at ratio 0.5, seed by seed
  mprun-ffs-macs.py     question 3 at the matched-MAC budget (width 60)
  mprun-tradeoff.py     the width-60 runs again with their checkpoints kept, then evaluate.py's cost and
                        robustness of each (studies/tradeoff.py reads them)
in the order of ORDER below: every question for the first FIRST seeds (widths 240 and 480 aside), then the
other seeds, then widths 240 and 480, then width 800, then the MAC-matched ffs and the trade-off, so that a
study stopped early has complete seeds.
Last, the logs and completion records of the finished runs are copied to results/studies/criteria/logs/ and
analysis.py writes every table and plot there from those copies. --dry-run prints the launcher commands;
--aggregate-only skips the runs. Run it under `nice` to leave the machine to interactive work.
"""
import argparse
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)
from common.data.smnist import FILES, copy_raw  # noqa: E402
from common.runs import copy_record  # noqa: E402
from studies.steps import run_steps  # noqa: E402
from analysis import final_accuracy  # noqa: E402
from study import CRITERIA, DATA, FIRST, RUNS, SCRIPT, SEEDS  # noqa: E402

RESULTS = os.path.join(ROOT, "results", "studies", "criteria")
STAGES = lambda n: ",".join(map(str, range(1, n + 1)))
FIRST_SEEDS = ",".join(map(str, SEEDS[:FIRST]))
ORDER = [("mprun-adaptation.py", ["--stages", "1"]),                          # Adaptation, width 60
         ("mprun-criteria.py", ["--stages", STAGES(FIRST * len(CRITERIA))]),  # Q2, the first seeds
         ("mprun-ffs.py", ["--stages", STAGES(FIRST * 2)]),                   # Q3, the first seeds
         ("mprun-adaptation.py", ["--stages", "2,3"]),                        # Adaptation, widths 30 and 120
         ("no_retraining.py", ["--widths", "30,60,120", "--seeds", FIRST_SEEDS]),  # Q1, the first seeds
         ("mprun-criteria.py", []), ("mprun-ffs.py", []),                     # Q2, Q3: the other seeds
         ("no_retraining.py", ["--widths", "30,60,120"]),                     # Q1, the other seeds at width 60
         ("mprun-adaptation.py", []), ("no_retraining.py", []),               # widths 240, 480, and Q1 there
         ("mprun-w800.py", []), ("no_retraining.py", ["--widths", "800"]),    # the paper's width: Q2, then Q1
         ("mprun-ffs-macs.py", []),                                           # Q3 at the matched-MAC budget
         ("mprun-tradeoff.py", [])] + [                                       # the trade-off: its runs, then their cost
    (os.path.join(ROOT, "evaluate.py"), ["both", "--experiment", f"studies/criteria/runs/{folder}", "--all", "--memory",
                                         "sram", "--threads", "1", "--script", os.path.relpath(SCRIPT, ROOT),
                                         "--data", "studies/criteria/data"])  # relative: the records name no local path
    for folder in ("tradeoff-w60", "tradeoff-w60-hessian", "tradeoff-w60-random-0")]
MNIST_FILES = FILES["train"] + FILES["test"]


def prepare_data(source):
    raw = os.path.join(DATA, "MNIST", "raw")
    if all(os.path.exists(os.path.join(raw, f)) for f in MNIST_FILES):
        return
    if not source or not os.path.isdir(os.path.join(source, "MNIST", "raw")):
        sys.exit("error: the study's data is not prepared. Set HSTNN_STUDY_DATA (or pass --data-root) to a folder "
                 f"holding MNIST/raw/ with the four IDX files of the 5,000-digit sample; got {source!r}")
    missing = copy_raw(os.path.join(source, "MNIST", "raw"), raw)
    if missing:
        sys.exit(f"error: {missing} is missing")


def collect_logs():
    """Copy the train log and completion record of every finished run (real files, not the links) to
    RESULTS/logs/<folder>/."""
    for name in sorted(os.listdir(RUNS)) if os.path.isdir(RUNS) else []:
        log_dir = os.path.join(RUNS, name, "log")
        if not os.path.isdir(log_dir):
            continue
        out = os.path.join(RESULTS, "logs", name)
        os.makedirs(out, exist_ok=True)
        for f in sorted(os.listdir(log_dir)):
            src = os.path.join(log_dir, f)
            if f.startswith(("cost_", "robust_")) and f.endswith(".json") and not os.path.islink(src):
                trained = os.path.join(log_dir, f"train_{f.split('_', 1)[1][:-5]}.log")
                if os.path.isfile(trained) and not os.path.islink(trained):  # not a linked Adaptation's
                    shutil.copy2(src, os.path.join(out, f))  # evaluate.py's records, for studies/tradeoff.py
                continue
            if not f.startswith("train_") or not f.endswith(".log") or os.path.islink(src):
                continue
            if final_accuracy(src) is None or os.path.exists(os.path.join(RUNS, name, "checkpoint", f[6:-4] + ".resume.t7")):
                continue  # unfinished: not copied
            shutil.copy2(src, os.path.join(out, f))
            record = os.path.join(log_dir, f[:-4] + ".json")
            if os.path.exists(record):
                copy_record(record, os.path.join(out, f[:-4] + ".json"))
    # the launcher's wall and CPU time of every job; question 1's numbers; the oracle's per-neuron losses
    for f in ("profile.csv", "no-retraining.csv", "oracle-neurons.csv"):
        if os.path.exists(os.path.join(RUNS, f)):
            merge_rows(os.path.join(RUNS, f), os.path.join(RESULTS, f))


def merge_rows(src, dst):
    """Add to the committed CSV `dst` the rows of `src` it does not hold yet: the rows of runs no longer on this
    machine are kept, never replaced by a shorter file."""
    if not os.path.exists(dst):
        shutil.copy2(src, dst)
        return
    with open(dst) as f:
        kept = set(f.read().splitlines())
    with open(src) as f:
        new = [line for line in f.read().splitlines()[1:] if line not in kept]
    if new:
        with open(dst, "a") as f:
            f.write("\n".join(new) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=os.environ.get("HSTNN_STUDY_DATA"),
                   help="folder with MNIST/raw (default: $HSTNN_STUDY_DATA)")
    p.add_argument("--dry-run", action="store_true", help="print the launcher commands, run nothing")
    p.add_argument("--aggregate-only", action="store_true", help="only rebuild the tables and plots from the logs")
    args = p.parse_args()
    bad = []
    if not args.aggregate_only:
        prepare_data(args.data_root)
        bad = run_steps(ORDER, HERE, args.dry_run)
    if args.dry_run:
        return 0
    collect_logs()
    subprocess.call([sys.executable, os.path.join(HERE, "analysis.py"), "--out", RESULTS], cwd=ROOT)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
