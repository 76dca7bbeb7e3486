"""Every experiment script x model x mode at tiny size, and its logs with times masked (test-only code).

    python tests/golden_logs.py <kit root> <output folder>

runs the scripts of <kit root> on tiny synthetic data, in this one interpreter, and writes every log/*.log
they produced, masked, to <output folder>/<family>/. tests/golden/ holds what a known-good commit wrote;
tests/test_golden_logs.py compares the working tree's logs with it line for line. Run it in a fresh
interpreter: the scripts import `common` from <kit root>.
"""
import os
import re
import runpy
import sys
import tempfile

import numpy as np

TESTS = os.path.dirname(os.path.abspath(__file__))
sys.path.append(TESTS)  # after the kit root, which each script puts first
from event_writers import write_gesture_recording, write_nmnist_bin  # noqa: E402
from idx import write_fake_mnist  # noqa: E402

MASKS = [  # what changes from run to run: wall-clock times and where the run happened
    (re.compile(r"\s*\d+(\.\d+)?\s*ms/batch"), " <ms> ms/batch"),
    (re.compile(r"time:\s*\d+(\.\d+)?"), "time: <time>"),
    (re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?"), "<date>"),
]


def mask(text, tmp):
    text = text.replace(tmp, "<tmp>")
    for pattern, repl in MASKS:
        text = pattern.sub(repl, text)
    return text


def write_ptb(folder, n_words=30, lines=(120, 20, 20), seed=0):
    """A tiny PTB-like corpus with a little structure (as conftest.write_corpus, smaller)."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder)
    for split, n in zip(("train", "valid", "test"), lines):
        with open(os.path.join(folder, f"ptb.{split}.txt"), "w") as f:
            for _ in range(n):
                w = int(rng.integers(n_words))
                sent = []
                for _ in range(int(rng.integers(3, 9))):
                    sent.append(f"w{w}")
                    w = (w + 1) % n_words if rng.random() < 0.7 else int(rng.integers(n_words))
                f.write(" " + " ".join(sent) + " \n")
    return folder


def write_nmnist(root, per_digit=10):
    rng = np.random.default_rng(1)
    for split in ("Train", "Test"):
        for d in range(10):
            folder = os.path.join(root, "N-MNIST", split, str(d))
            os.makedirs(folder)
            for j in range(per_digit):
                n = 60
                write_nmnist_bin(os.path.join(folder, f"{j + 1:05d}.bin"), rng.integers(0, 34, n),
                                 rng.integers(0, 34, n), rng.integers(0, 2, n), np.sort(rng.integers(0, 12000, n)))


def write_dvs(root):
    folder = os.path.join(root, "DvsGesture")
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    for k, name in enumerate(["user01_lab", "user02_led", "user24_lab", "user26_led"]):
        ts, es, rows = [], [], []
        for g in range(2):
            start = 1_000_000 + g * 500_000
            rows.append(((2 * k + g) % 11 + 1, start, start + 300_000))
            ts.append(np.sort(rng.integers(start, start + 300_000, 200)))
            es.append(np.stack([rng.integers(0, 128, 200), rng.integers(0, 128, 200), rng.integers(0, 2, 200)], 1))
        write_gesture_recording(folder, name, np.concatenate(ts), np.concatenate(es), rows)


def run(script, args, cwd):
    """`python script args` from cwd, in this interpreter; a failure stops the generation."""
    old_argv, old_cwd = sys.argv, os.getcwd()
    sys.argv = [script] + [str(a) for a in args]
    os.chdir(cwd)
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        if e.code not in (0, None):
            raise RuntimeError(f"{os.path.basename(script)} {' '.join(sys.argv[1:])} exited with {e.code}")
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)


def stages(cell, ffs_ratio, ratio, extra=()):
    """(model, mode, extra flags) for every model and mode of a script."""
    jobs = []
    for model in (cell, "snn", "ffs", "hybrid"):
        r = ["--ratio", ffs_ratio] if model == "ffs" else []
        jobs += [(model, "train1", r), (model, "test1", r)]
    jobs += [("hybrid", "train2", ["--ratio", ratio, *extra]), ("hybrid", "test2", ["--ratio", ratio])]
    return jobs


def families(root, data):
    """{family: (script, common flags, jobs)}: every script's stages, checkpoints in the authors' format
    tested again, then Adaptation and Restoration on the step-by-step definitions."""
    ex = os.path.join(root, "experiments")
    ptb = ["--data", data["ptb"], "--nhid", 4, "--emsize", 4, "--bptt", 5, "--batch_size", 4, "--log-interval", 5,
           "--device", "cpu", "--threads", 1, "--stage1_epochs", 2, "--stage2_epochs", 1, "--hessian_probes", 2]
    smnist = ["--data", data["mnist"], "--nhid", 4, "--batch_size", 20, "--log-interval", 2, "--device", "cpu",
              "--threads", 1, "--stage1_epochs", 1, "--stage2_epochs", 1, "--hessian_probes", 2]
    events = ["--channels", "4,4,4", "--device", "cpu", "--threads", 1, "--hessian_probes", 2, "--nwin", 3]
    nmnist = events + ["--data", data["nmnist"], "--batch_size", 50, "--stage1_epochs", 1, "--stage2_epochs", 1,
                       "--log-interval", 1]
    dvs = events + ["--data", data["dvs"], "--ds", 16, "--batch_size", 2, "--test_interval", 1,
                    "--stage1_epochs", 2, "--stage2_epochs", 1]
    definition = [("hybrid", "train1", ["--definition"]), ("hybrid", "train2", ["--ratio", 0.5, "--definition"])]
    scripts = {
        "rnn-ptb": (os.path.join(ex, "rnn-ptb-650-0.5-0.6", "rnn-ptb.py"), ptb, stages("rnn", 0.5, 0.25)),
        "lstm-ptb": (os.path.join(ex, "lstm-ptb-650-0.5-0.6", "lstm-ptb.py"), ptb, stages("lstm", 0.5, 0.5)),
        "rnn-smnist": (os.path.join(ex, "rnn-smnist-800-0.5-0.6", "rnn-smnist.py"), smnist, stages("rnn", 0.5, 0.5)),
        "lstm-smnist": (os.path.join(ex, "lstm-smnist-800-0.5-0.6", "lstm-smnist.py"), smnist,
                        stages("lstm", 0.5, 0.25)),
        "rcnn-nmnist": (os.path.join(ex, "rcnn-nmnist-128-0.25-0.3-0.3", "rcnn-nmnist.py"), nmnist,
                        stages("rnn", 0.5, 0.5, ["--hessian_batch", 20])),
        "rcnn-dvs-ges": (os.path.join(ex, "rcnn-dvs-ges-128-0.5-0.3-0.5", "rcnn-dvs-ges.py"), dvs,
                         stages("rnn", 0.75, 0.5)),
    }
    scripts["rnn-ptb-authors"] = scripts["rnn-ptb"][:2] + ([("hybrid", "test1", [])],)
    scripts["rnn-smnist-authors"] = scripts["rnn-smnist"][:2] + ([("rnn", "test1", [])],)
    for family in ("rnn-ptb", "lstm-smnist", "rcnn-nmnist", "rcnn-dvs-ges"):  # last: nothing after them inherits
        script, flags, _ = scripts[family]                                   # a process-wide execution setting
        scripts[family + "-definition"] = (script, flags, definition)
    return scripts


AUTHORS_KEYS = {  # exactly what the original scripts save
    "ptb_hybrid_1111.t7": ["net", "seed", "rnn_shape", "snn_shape", "ntoken", "ninp", "snn_func", "val_loss_record"],
    "mnist_rnn_1111.t7": ["net", "seed", "rnn_shape", "snn_shape", "snn_func", "test_acc_record"],
}


def authors_checkpoint(source_cwd, cwd):
    """The kit's stage-1 checkpoint of the family without '-authors', cut down to the original's keys."""
    import torch
    for name, keys in AUTHORS_KEYS.items():
        path = os.path.join(source_cwd, "checkpoint", name)
        if os.path.exists(path):
            ours = torch.load(path, weights_only=True)
            os.makedirs(os.path.join(cwd, "checkpoint"))
            torch.save({k: ours[k] for k in keys}, os.path.join(cwd, "checkpoint", name))


def generate(root, out):
    root = os.path.abspath(root)
    sys.path.insert(0, root)  # the data scripts, and the experiment scripts, import `common` from here
    with tempfile.TemporaryDirectory() as tmp:
        tmp = os.path.realpath(tmp)
        data = {"ptb": write_ptb(os.path.join(tmp, "ptb")), "mnist": write_fake_mnist(os.path.join(tmp, "mnist"), 100, 40)}
        write_nmnist(tmp)
        run(os.path.join(root, "data", "nmnist-dataset-gen.py"), ["3", "--root", tmp, "--steps", 5], tmp)
        data["nmnist"] = os.path.join(tmp, "N-MNIST", "processed")
        write_dvs(tmp)
        run(os.path.join(root, "data", "dvs-hdf5-gen.py"), ["--root", tmp], tmp)
        data["dvs"] = os.path.join(tmp, "DvsGesture")
        for family, (script, flags, jobs) in families(root, data).items():
            cwd = os.path.join(tmp, family)
            os.makedirs(cwd)
            if family.endswith("-authors"):
                authors_checkpoint(os.path.join(tmp, family[:-len("-authors")]), cwd)
            for model, mode, extra in jobs:
                run(script, [*flags, "--model", model, "--mode", mode, *extra], cwd)
            assert sys.modules["common"].__file__.startswith(root + os.sep), "ran another copy of the kit"
            os.makedirs(os.path.join(out, family), exist_ok=True)
            for name in sorted(os.listdir(os.path.join(cwd, "log"))):
                if name.endswith(".log"):
                    with open(os.path.join(cwd, "log", name)) as f:
                        text = mask(f.read(), tmp)
                    with open(os.path.join(out, family, name), "w") as f:
                        f.write(text)


if __name__ == "__main__":
    import torch
    torch.set_num_threads(1)
    generate(sys.argv[1], sys.argv[2])
