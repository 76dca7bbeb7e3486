"""--selection random (the replication study's ablation): the same counts and rule as the Hessian
selection, reproducible for a seed, a different pick; and the study's launcher files parse."""
import csv
import os
import runpy

from conftest import ROOT, run_script
from idx import write_fake_mnist

SCRIPT = os.path.join(ROOT, "experiments", "rnn-smnist-800-0.5-0.6", "rnn-smnist.py")
SMALL = ["--nhid", 8, "--batch_size", 50, "--device", "cpu", "--stage1_epochs", 1, "--stage2_epochs", 1,
         "--hessian_probes", 4, "--stage1_lr", 3e-3, "--stage2_lr", 3e-3]


def kept(folder, name):
    with open(os.path.join(folder, "traces", f"{name}_importance.csv")) as f:
        return {(r["param"], int(r["neuron"])) for r in csv.DictReader(f) if r["kept"] == "1"}


def test_random_selection_same_counts_reproducible_and_not_the_hessian_pick(tmp_path):
    data = write_fake_mnist(str(tmp_path / "data"), n_train=100, n_test=50)
    runs = {}
    for label, selection, seed in [("hessian", "hessian", 1111), ("random", "random", 1111),
                                   ("again", "random", 1111), ("other", "random", 2222)]:
        d = str(tmp_path / label)
        os.makedirs(d)
        for mode in ("train1", "train2"):
            assert run_script(SCRIPT, SMALL + ["--data", data, "--model", "hybrid", "--mode", mode, "--seed", seed,
                                               "--ratio", 0.25, "--selection", selection], d) == 0
        runs[label] = kept(d, f"mnist_hybrid_{seed}_0.25")
        log = open(os.path.join(d, "log", f"train_mnist_hybrid_{seed}_0.25.log")).read()
        assert f"selection: {selection}" in log
    counts = lambda picks: {kind: sum(p.startswith(kind) for p, _ in picks) for kind in ("rnn", "snn")}
    assert all(counts(picks) == {"rnn": 12, "snn": 4} for picks in runs.values())  # 16 x 0.75, 16 x 0.25
    assert runs["random"] == runs["again"]
    assert runs["random"] != runs["hessian"] and runs["random"] != runs["other"]


def test_study_files_compile_and_ablation_shares_stage_one(tmp_path):
    folder = os.path.join(ROOT, "studies", "replication")
    for name in ("run.py", "study.py", "compare.py", "selection_probe.py", "mprun-rnn-smnist.py", "mprun-lstm-smnist.py",
                 "mprun-rnn-ptb.py"):
        with open(os.path.join(folder, name)) as f:
            compile(f.read(), name, "exec")
    share_stage1 = runpy.run_path(os.path.join(folder, "study.py"))["share_stage1"]
    source, target = tmp_path / "rnn-smnist", tmp_path / "rnn-smnist-random-selection"
    for f in ("checkpoint/mnist_hybrid_1111.t7", "log/train_mnist_rnn_1111.log", "log/train_mnist_ffs_1111_0.5.log",
              "log/train_mnist_hybrid_1111.log", "log/train_mnist_hybrid_1111_0.5.log"):
        (source / f).parent.mkdir(parents=True, exist_ok=True)
        (source / f).write_text(f)
    share_stage1(str(source), str(target), "mnist", [1111])
    shared = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert shared == ["checkpoint/mnist_hybrid_1111.t7", "log/train_mnist_ffs_1111_0.5.log",
                      "log/train_mnist_hybrid_1111.log", "log/train_mnist_rnn_1111.log"]  # not the train2 log
    assert (target / "log/train_mnist_rnn_1111.log").read_text() == "log/train_mnist_rnn_1111.log"
