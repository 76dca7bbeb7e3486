"""The replication study, every run and every table: one command.

    HSTNN_STUDY_DATA=/path/to/data python studies/replication/run.py

/path/to/data holds MNIST/raw/ (the four IDX files of the 5,000-digit sample: 4,000 train, 1,000 test)
and penn-treebank/ptb.train.txt, ptb.valid.txt, ptb.test.txt (the real PTB splits). The first run
copies them as they are into studies/replication/data/ (git-ignored); PTB models train on the training
text, select checkpoints on the validation text and are tested once on the test text.

Then it runs the launcher files of this folder through the kit's launcher (CPU: 2 jobs at a time;
finished runs are skipped, interrupted ones resume), in this order: mprun-rnn-smnist.py (with the
random-selection ablation), mprun-lstm-smnist.py, mprun-rnn-ptb.py stages 1-3 (with ffs at the matched
budget), then its stage 4 (the PTB ablation), mprun-ptb-ffs-macs.py (ffs at budgets matched in epochs or
multiply-accumulates, on its own or HSTNN's learning-rate schedule), mprun-ptb-tradeoff.py and evaluate.py's
cost and robustness of its runs (for studies/tradeoff.py). Last, the aggregator (latex-code-gen.py) writes every experiment's CSV, LaTeX, summary
and plot under results/studies/replication/<experiment>/ (with a copy of its train logs and completion
records in logs/), selection_probe.py the no-retraining check of the Hessian selection, and compare.py
the paired comparisons and the Hessian-vs-random table from the copied logs (so the experiments whose runs are
not on this machine keep their committed numbers), and the write-up's generated tables
(results/REPLICATION.md). Runs go to studies/replication/runs/<experiment>/
(git-ignored). --dry-run prints the commands; --aggregate-only skips the runs and needs no data.
"""
import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)
from common.data.smnist import FILES, copy_raw  # noqa: E402
from common.report.profile import read_profile_csv  # noqa: E402
from common.runs import copy_record  # noqa: E402
from studies.steps import run_steps  # noqa: E402
from compare import NO_TABLES  # noqa: E402
from study import DATA, PTB_DATA, RUNS  # noqa: E402

RESULTS = os.path.join(ROOT, "results", "studies", "replication")
ORDER = [("mprun-rnn-smnist.py", []), ("mprun-lstm-smnist.py", []), ("mprun-rnn-ptb.py", ["--stages", "1,2,3"]),
         ("mprun-rnn-ptb.py", ["--stages", "4"]),
         ("mprun-ptb-ffs-macs.py", []),                # ffs at budgets matched in epochs or MACs, and in schedule
         ("mprun-ptb-tradeoff.py", []),                # the trade-off: PTB's runs again with checkpoints, then their cost
         (os.path.join(ROOT, "evaluate.py"), ["both", "--experiment", "studies/replication/runs/rnn-ptb-real-tradeoff",
                                              "--all", "--memory", "sram", "--threads", "1", "--script",
                                              "experiments/rnn-ptb-650-0.5-0.6/rnn-ptb.py", "--data",
                                              "studies/replication/data/penn-treebank",  # relative: no local path
                                              "--bptt", "35", "--batch_size", "40"])]   # the flags the runs tested with
MNIST_FILES = FILES["train"] + FILES["test"]


def prepare_data(source):
    mnist, ptb = os.path.join(DATA, "MNIST", "raw"), PTB_DATA
    real_ptb = os.path.exists(os.path.join(ptb, "ptb.train.txt")) and os.path.getsize(os.path.join(ptb, "ptb.train.txt")) > 10 ** 6
    if all(os.path.exists(os.path.join(mnist, f)) for f in MNIST_FILES) and real_ptb:
        return  # (a train text under 1 MB is the old layout, the validation text: prepared again)
    if not source or not os.path.isdir(source):
        sys.exit("error: the study's data is not prepared and no data folder was given. Set HSTNN_STUDY_DATA (or pass "
                 "--data-root) to a folder holding MNIST/raw/ (4,000 + 1,000 real digits as the four IDX files) "
                 f"and penn-treebank/ptb.train.txt, ptb.valid.txt, ptb.test.txt; got {source!r}")
    missing = copy_raw(os.path.join(source, "MNIST", "raw"), mnist)
    if missing:
        sys.exit(f"error: {missing} is missing")
    os.makedirs(ptb, exist_ok=True)
    for f in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"):
        if not os.path.exists(os.path.join(source, "penn-treebank", f)):
            sys.exit(f"error: {os.path.join(source, 'penn-treebank', f)} is missing")
        shutil.copy2(os.path.join(source, "penn-treebank", f), os.path.join(ptb, f))
    print(f"prepared {DATA}: MNIST sample; PTB train/valid/test texts")


def aggregate(name):
    """One experiment's CSV, LaTeX, summary and plot, with a copy of its train logs and completion records."""
    out = os.path.join(RESULTS, name)
    os.makedirs(os.path.join(out, "logs"), exist_ok=True)
    for log in sorted(os.listdir(os.path.join(RUNS, name, "log"))):  # the raw numbers, beside the tables
        src = os.path.join(RUNS, name, "log", log)
        if log.startswith("train_") and log.endswith(".log"):  # a linked stage-1 log is copied as a real file
            if os.path.exists(src[:-len(".log")] + ".json") or os.path.islink(src):  # not running or interrupted
                shutil.copy2(src, os.path.join(out, "logs", log))
        elif log.startswith("train_") and log.endswith(".json"):
            copy_record(src, os.path.join(out, "logs", log))
        elif log.startswith(("cost_", "robust_")) and log.endswith(".json"):  # evaluate.py's, for studies/tradeoff.py
            shutil.copy2(src, os.path.join(out, "logs", log))
    if name.endswith(NO_TABLES):
        return  # ffs runs only (compare.py pairs them with their experiment's HSTNN), or the trade-off's runs
    subprocess.call([sys.executable, os.path.join(ROOT, "latex-code-gen.py"), "--experiment", os.path.join(RUNS, name),
                     "--out", out, "--logs", "train", "--profile-csv", os.path.join(RUNS, "profile.csv"),
                     "--bold", "better"], cwd=ROOT)


def aggregate_copies(name, results=RESULTS):
    """Without the runs on this machine: the tables and plots again from the committed copies of the logs and
    records (<results>/<name>/logs); the launcher's profile table stays as it was written."""
    out = os.path.join(results, name)
    legacy = not any(f.endswith(".json") for f in os.listdir(os.path.join(out, "logs")))  # logs made before records
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.call([sys.executable, os.path.join(ROOT, "latex-code-gen.py"), "--experiment", out, "--out", tmp,
                         "--logs", "train", "--profile-csv", os.path.join(tmp, "none.csv"), "--bold", "better"]
                        + (["--legacy-logs"] if legacy else []), cwd=ROOT, stdout=subprocess.DEVNULL)
        for f in os.listdir(tmp):
            if f != "profile.md":
                shutil.copy2(os.path.join(tmp, f), os.path.join(out, f))


def has_runs(name):
    """Whether runs/<name>/log holds a train log (a folder a dry run made, or one not yet run, holds none)."""
    log = os.path.join(RUNS, name, "log")
    return os.path.isdir(log) and any(f.startswith("train_") and f.endswith(".log") for f in os.listdir(log))


def keep_profile():
    """Add the launcher's new rows (runs/profile.csv) to the committed RESULTS/profile.csv, keeping the rows of
    jobs whose runs are no longer on this machine."""
    kept = os.path.join(RESULTS, "profile.csv")
    rows = read_profile_csv(kept)
    rows += [r for r in read_profile_csv(os.path.join(RUNS, "profile.csv")) if r not in rows]
    if rows:
        with open(kept, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=os.environ.get("HSTNN_STUDY_DATA"),
                   help="folder with MNIST/raw and penn-treebank (default: $HSTNN_STUDY_DATA)")
    p.add_argument("--dry-run", action="store_true", help="print the launcher commands, run nothing")
    p.add_argument("--aggregate-only", action="store_true", help="only rebuild the tables and plots from the logs")
    p.add_argument("--tables-from-copies", metavar="RESULTS",
                   help="only rebuild each experiment's tables and plots from the copied logs under RESULTS")
    args = p.parse_args()
    if args.tables_from_copies:
        for name in sorted(os.listdir(args.tables_from_copies)):
            if os.path.isdir(os.path.join(args.tables_from_copies, name, "logs")) and \
                    not name.endswith(NO_TABLES):
                aggregate_copies(name, args.tables_from_copies)
        return 0
    bad = []
    if not args.aggregate_only:
        prepare_data(args.data_root)
        bad = run_steps(ORDER, HERE, args.dry_run)
    if args.dry_run:
        return 0
    for name in sorted(os.listdir(RUNS)) if os.path.isdir(RUNS) else []:
        if has_runs(name):
            aggregate(name)
    for name in sorted(os.listdir(RESULTS)):
        if os.path.isdir(os.path.join(RESULTS, name, "logs")) and not has_runs(name) \
                and not name.endswith(NO_TABLES):
            aggregate_copies(name)
    keep_profile()
    subprocess.call([sys.executable, os.path.join(HERE, "compare.py"), "--runs", RESULTS, "--out", RESULTS,  # the copied logs
                     "--writeup", os.path.join(ROOT, "results", "REPLICATION.md")], cwd=ROOT)
    subprocess.call([sys.executable, os.path.join(HERE, "selection_probe.py"), "--out", RESULTS], cwd=ROOT)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
