"""What every launcher file of the replication study shares: folders, seeds, the data check, the launcher."""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
from common.launch.launcher import Launcher  # noqa: E402

RUNS = os.path.join(HERE, "runs")    # one experiment folder per experiment (log/, checkpoint/, traces/); git-ignored
DATA = os.path.join(HERE, "data")    # filled by run.py from $HSTNN_STUDY_DATA; git-ignored
MNIST_DATA = DATA                    # DATA/MNIST/raw/*-idx?-ubyte: 4,000 train / 1,000 test real digits
PTB_DATA = os.path.join(DATA, "penn-treebank")  # ptb.train.txt, ptb.valid.txt, ptb.test.txt: the real splits
SEEDS = [1111, 2222, 3333]
SCRIPTS = {"rnn-smnist": "experiments/rnn-smnist-800-0.5-0.6/rnn-smnist.py",
           "lstm-smnist": "experiments/lstm-smnist-800-0.5-0.6/lstm-smnist.py",
           "rnn-ptb": "experiments/rnn-ptb-650-0.5-0.6/rnn-ptb.py"}
DATASETS = {"rnn-smnist": "mnist", "lstm-smnist": "mnist", "rnn-ptb": "ptb"}


def need(path):
    if not os.path.exists(path):
        sys.exit(f"error: {path} is missing. Prepare the study's data first: "
                 f"HSTNN_STUDY_DATA=<folder with MNIST/raw and penn-treebank> python studies/replication/run.py")


def launcher(experiment):
    """The kit's launcher for one of SCRIPTS, writing under runs/<folder>/ (CPU: 2 jobs at a time)."""
    script = os.path.join(ROOT, SCRIPTS[experiment])
    return Launcher(script=script, dataset=DATASETS[experiment], base_dir=RUNS, gpus="auto", slots_per_gpu=1, cpu_jobs=2,
                    profile_csv=os.path.join(RUNS, "profile.csv"), progress_every_s=120.0)


def folder(name):
    path = os.path.join(RUNS, name)
    os.makedirs(path, exist_ok=True)
    return path


def share_stage1(source, target, dataset, seeds):
    """Give the ablation folder `target` the stage-1 runs of `source` (links, or copies where links fail):
    the Adaptation checkpoints that its train2 jobs start from, and the train logs of every stage-1 run,
    so that its tables show the same rnn/snn/ffs rows. Its own train2 runs never touch `source`."""
    for sub in ("checkpoint", "log"):
        os.makedirs(os.path.join(target, sub), exist_ok=True)
    if not os.path.isdir(os.path.join(source, "log")):
        return  # stage 1 has not run (e.g. --dry-run)
    files = [os.path.join("checkpoint", f"{dataset}_hybrid_{s}.t7") for s in seeds]
    files += [os.path.join("log", f) for f in sorted(os.listdir(os.path.join(source, "log")))
              if f.startswith("train_") and f.count("_") == 3]                          # rnn, snn, hybrid
    files += [os.path.join("log", f) for f in sorted(os.listdir(os.path.join(source, "log")))
              if f.startswith(f"train_{dataset}_ffs_")]
    for f in files:
        src, dst = os.path.join(source, f), os.path.join(target, f)
        if os.path.lexists(dst) or not os.path.exists(src):
            continue
        try:
            os.symlink(os.path.relpath(src, os.path.dirname(dst)), dst)
        except OSError:
            shutil.copy2(src, dst)
