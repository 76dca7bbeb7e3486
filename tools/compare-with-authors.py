"""Run the authors' script and this kit's side by side, and report where they part.

    python tools/compare-with-authors.py --authors <your clone of the authors' repository> --experiment ptb \\
        --data data/penn-treebank [--definition] [--report FILE] -- --nhid 8 --emsize 8 --bptt 6 ...

A short run (the authors' script has no flag that shortens an epoch): --lines 1000,150,150 copies only the
first lines of ptb.train.txt, ptb.valid.txt and ptb.test.txt, and --stage1_epochs/--stage2_epochs after `--`
set the epochs of both scripts. The tool says what it runs and, every 10 seconds, the newest line of
the running script's log; Ctrl-C stops it with one line (exit code 130).

Everything after `--` is passed to both scripts (the same flags, seed included). The authors' experiment
folder is copied to a temporary folder and ONE change is made there: their hard-coded CUDA device becomes the
CPU (every "cuda" device string and `.cuda()` call in that copy; the count per file is reported); the kit's
script gets `--threads` set to the thread count their script fixes, as float sums can depend on it. If
torchvision cannot be imported, the copy also gets a minimal stand-in for the two names their S-MNIST script
uses (datasets.MNIST reading the IDX files, transforms.ToTensor), which yields the same tensors in the same
order. Both scripts then run train1 (--model hybrid) and train2 (--ratio, default 0.5) in folders of their
own on the same data, and the report gives, per stage: the first log line that differs (run times masked,
and for S-MNIST the batch total of the progress lines, which the original hard-codes;
lines only the kit writes, listed in KIT_ONLY, are set aside and counted) and, per tensor of the two
checkpoints, the largest absolute difference. Nothing of the authors' code is stored in the kit.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = {  # authors' folder and script, the kit's script, the file-name prefix, where --data points
    "ptb": ("code/rnn-ptb-650-0.5-0.6", "rnn-ptb.py", "experiments/rnn-ptb-650-0.5-0.6/rnn-ptb.py", "ptb", "penn-treebank"),
    "smnist": ("code/rnn-smnist-800-0.5-0.6", "rnn-smnist.py", "experiments/rnn-smnist-800-0.5-0.6/rnn-smnist.py",
               "mnist", "MNIST root"),
}
AUTHORS_NEEDS = ("easydict", "progress", "scipy", "tqdm")  # modules their scripts import on the way (torchvision: see above)
KIT_ONLY = ("execution: ", "selection: ", "protocol: ", "using cached Hessian traces", "resuming from ")
TIMES = [(re.compile(r"\s*\d+\.\d+ ms/batch"), " <ms>/batch"), (re.compile(r"time:\s*\d+\.\d+s"), "time: <t>s")]
KNOWN = {"smnist": [(re.compile(r"/\s*\d+ batches"), "/<total> batches")]}  # their S-MNIST batch total: a fixed 600
DEVICE = [(re.compile(r"""(["'])cuda(:\d+)?\1"""), r"\1cpu\1"), (re.compile(r"\.cuda\(\)"), ".cpu()")]
PROGRESS_S = 10  # seconds between the progress lines of a running script
STARTED = time.monotonic()

TORCHVISION_STANDIN = {
    "__init__.py": "from . import datasets, transforms\n",
    "transforms.py": "class ToTensor:\n    def __call__(self, image):\n        return image\n",
    "datasets.py": '''import os
import numpy as np
import torch


def _idx(path):
    with open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class MNIST:
    """What torchvision.datasets.MNIST(root, train, download, transform=ToTensor()) yields: a float image
    [1, 28, 28] in [0, 1] (uint8 / 255) and an int label."""
    def __init__(self, root, train=True, download=False, transform=None):
        raw = os.path.join(root, "MNIST", "raw")
        split = "train" if train else "t10k"
        self.images = torch.from_numpy(_idx(os.path.join(raw, f"{split}-images-idx3-ubyte")).copy())
        self.labels = torch.from_numpy(_idx(os.path.join(raw, f"{split}-labels-idx1-ubyte")).astype(np.int64))
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        image = self.images[i].unsqueeze(0).float().div(255)
        return (self.transform(image) if self.transform else image), int(self.labels[i])
''',
}


def copy_authors(clone, folder, dest):
    """Copy their experiment folder and switch its device to the CPU; returns {file: substitutions}."""
    src = os.path.join(clone, folder)
    if not os.path.isdir(src):
        raise SystemExit(f"error: {src} not found: --authors must be the root of a clone of the authors' repository")
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("log", "checkpoint", "traces", "results", "*.t7"))
    changes = {}
    for d, _, files in os.walk(dest):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(d, name)
                text = open(path, encoding="utf8").read()
                n = 0
                for pattern, repl in DEVICE:
                    text, k = pattern.subn(repl, text)
                    n += k
                if n:
                    with open(path, "w", encoding="utf8") as f:
                        f.write(text)
                    changes[os.path.relpath(path, dest)] = n
    return changes


def finished(log, blocks):
    """Whether a stage's log ends with its last test block (train1: 1; train2: full, selected, restored net)."""
    if not os.path.exists(log):
        return False
    lines = open(log).read().splitlines()
    return len(lines) > 2 and lines[-2].startswith("| Performance on Test Set") and \
        sum(l.startswith("| Performance on Test Set") for l in lines) >= blocks


def authors_threads(path):
    """The CPU thread count their script sets (torch.set_num_threads), which the kit's run is given too."""
    found = re.findall(r"torch\.set_num_threads\((\d+)\)", open(path, encoding="utf8").read())
    return found[0] if found else None


def needs_torchvision_standin():
    return subprocess.run([sys.executable, "-c", "import torchvision.datasets"], capture_output=True).returncode != 0


def say(text):
    """A progress line with the time since the start."""
    elapsed = int(time.monotonic() - STARTED)
    print(f"[{elapsed // 60:d}:{elapsed % 60:02d}] {text}", file=sys.stderr, flush=True)


def newest_line(path):
    """The last line of a log that is not empty nor a rule (None while it has none)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 4096))
            lines = [l for l in f.read().decode("utf8", "replace").splitlines() if l.strip(" -=")]
    except OSError:
        return None
    return lines[-1] if lines else None


def run(cmd, cwd, env, log, who):
    """Run a script, saying every PROGRESS_S seconds the newest line of its log when there is a new one; its
    output is kept back (the end of its stderr is shown if it fails). Ctrl-C stops it too."""
    started, last = time.monotonic(), None
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err, text=True)
        try:
            while True:
                try:
                    proc.wait(timeout=PROGRESS_S)
                    break
                except subprocess.TimeoutExpired:
                    line = newest_line(log)
                    if line is not None and line != last:
                        say(f"  {who}: {line.strip()}")
                        last = line
        except KeyboardInterrupt:
            proc.kill()
            proc.wait()
            raise
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"error: {' '.join(cmd)} (in {cwd}) failed:\n{err.read()[-3000:]}")
    say(f"  {who}: finished in {time.monotonic() - started:.0f} s")


def copy_data(source, dest, lines):
    """The data folder copied for both scripts; PTB with `lines` (train, valid, test): their first lines only."""
    if lines is None:
        shutil.copytree(source, dest)
        return
    os.makedirs(dest)
    for split, n in zip(("train", "valid", "test"), lines):
        path = os.path.join(source, f"ptb.{split}.txt")
        if not os.path.exists(path):
            raise SystemExit(f"error: --lines: {path} not found (--data must hold ptb.train.txt, ptb.valid.txt, "
                             f"ptb.test.txt)")
        with open(path) as fin, open(os.path.join(dest, f"ptb.{split}.txt"), "w") as fout:
            for _, line in zip(range(n), fin):
                fout.write(line)


def line_counts(text):
    try:
        counts = [int(x) for x in text.split(",")]
    except ValueError:
        counts = []
    if len(counts) != 3 or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected three positive line counts TRAIN,VALID,TEST, got {text!r}")
    return counts


def log_lines(path, known=()):
    with open(path) as f:
        lines = f.read().splitlines()
    kept = []
    for line in lines:
        for pattern, repl in TIMES + list(known):
            line = pattern.sub(repl, line)
        kept.append(line)
    return kept


def first_difference(authors, kit):
    """(index, authors' line, kit's line) of the first differing line after the kit-only lines are set
    aside, or None; plus the number of lines set aside."""
    own = [l for l in kit if l.startswith(KIT_ONLY)]
    kit = [l for l in kit if not l.startswith(KIT_ONLY)]
    for i, (a, k) in enumerate(zip(authors, kit)):
        if a != k:
            return (i + 1, a, k), len(own), len(authors)
    if len(authors) != len(kit):
        i = min(len(authors), len(kit))
        return (i + 1, authors[i] if i < len(authors) else "<end>", kit[i] if i < len(kit) else "<end>"), len(own), len(authors)
    return None, len(own), len(authors)


def checkpoint_differences(a_path, k_path):
    a = torch.load(a_path, map_location="cpu", weights_only=True)["net"]
    k = torch.load(k_path, map_location="cpu", weights_only=True)["net"]
    rows = []
    for name in sorted(set(a) | set(k)):
        if name not in a or name not in k:
            rows.append((name, "only in " + ("the authors'" if name in a else "the kit's")))
        elif a[name].shape != k[name].shape:
            rows.append((name, f"shapes {tuple(a[name].shape)} vs {tuple(k[name].shape)}"))
        else:
            rows.append((name, (a[name].double() - k[name].double()).abs().max().item()))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--authors", required=True, help="root of a clone of the authors' repository")
    p.add_argument("--experiment", required=True, choices=sorted(EXPERIMENTS))
    p.add_argument("--data", required=True, help="PTB: the folder of ptb.{train,valid,test}.txt; S-MNIST: the folder "
                                                 "holding MNIST/raw/ (torchvision's layout)")
    p.add_argument("--ratio", default="0.5", help="SNN ratio of train2")
    p.add_argument("--seed", default="1111")
    p.add_argument("--definition", action="store_true", help="run the kit with --definition")
    p.add_argument("--keep", default=None, help="keep the run folders here (default: a temporary folder, removed); "
                                                 "a rerun with the same folder reuses the stages already run")
    p.add_argument("--report", default=None, help="append the report (Markdown) to this file")
    p.add_argument("--lines", type=line_counts, default=None,
                   help="PTB, a short run: TRAIN,VALID,TEST = how many first lines of ptb.train.txt, ptb.valid.txt, "
                        "ptb.test.txt both scripts read (e.g. 1000,150,150)")
    p.add_argument("flags", nargs=argparse.REMAINDER, help="-- then flags for both scripts")
    args = p.parse_args()
    if args.lines and args.experiment != "ptb":
        p.error("--lines applies to --experiment ptb")
    try:
        compare(args)
    except KeyboardInterrupt:
        kept = f"the stages already finished are kept in {args.keep}: the same command continues" if args.keep else \
            "nothing is kept (without --keep the run folders are temporary)"
        print(f"interrupted: {kept}", file=sys.stderr)
        sys.exit(130)


def compare(args):
    flags = [f for f in args.flags if f != "--"]
    folder, script, kit_script, prefix, _ = EXPERIMENTS[args.experiment]
    work = args.keep or tempfile.mkdtemp(prefix="compare-with-authors-")
    os.makedirs(work, exist_ok=True)
    try:
        data = os.path.join(work, "data", "penn-treebank" if args.experiment == "ptb" else "")
        authors_dir, kit_dir = os.path.join(work, "authors"), os.path.join(work, "kit")
        record = os.path.join(work, "device-switches.json")
        if not os.path.exists(record):  # a rerun with the same --keep continues where the last one stopped
            shutil.rmtree(authors_dir, ignore_errors=True)
            shutil.rmtree(os.path.join(work, "data"), ignore_errors=True)
            say(f"copying the authors' {folder} and the data into {work}")
            changes = copy_authors(os.path.abspath(args.authors), folder, authors_dir)
            copy_data(os.path.abspath(args.data), data, args.lines)  # their PTB reader wants 'penn' or 'ptb' in the path
            with open(record, "w") as f:
                json.dump(changes, f)
        with open(record) as f:
            changes = json.load(f)
        os.makedirs(kit_dir, exist_ok=True)
        missing = [m for m in AUTHORS_NEEDS if subprocess.run([sys.executable, "-c", f"import {m}"], capture_output=True).returncode]
        if missing:
            raise SystemExit(f"error: the authors' scripts import {', '.join(missing)}: pip install {' '.join(missing)}")
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONPATH=ROOT)
        authors_env = dict(env, PYTHONPATH=authors_dir)
        standin = args.experiment == "smnist" and needs_torchvision_standin()
        if standin:
            os.makedirs(os.path.join(authors_dir, "torchvision"), exist_ok=True)
            for name, text in TORCHVISION_STANDIN.items():
                with open(os.path.join(authors_dir, "torchvision", name), "w") as f:
                    f.write(text)
        common = ["--data", data, "--seed", args.seed, "--model", "hybrid", *flags]
        threads = authors_threads(os.path.join(authors_dir, script))  # float sums can depend on the thread count
        kit_extra = ["--device", "cpu"] + (["--threads", threads] if threads else []) + \
            (["--definition"] if args.definition else [])
        stages = [("train1", [], f"{prefix}_hybrid_{args.seed}"),
                  ("train2", ["--ratio", args.ratio], f"{prefix}_hybrid_{args.seed}_{args.ratio}")]
        lines = [f"### {args.experiment}, kit {'--definition' if args.definition else 'default execution'}",
                 "", f"Flags of both scripts: `{' '.join(['--seed', args.seed, *flags])}`; train2 `--ratio {args.ratio}`.",
                 f"The kit runs with `--threads {threads}`, the authors' `torch.set_num_threads`." if threads else "",
                 "" if args.lines is None else "Data: the first {} / {} / {} lines of ptb.train.txt / ptb.valid.txt / "
                                               "ptb.test.txt (`--lines`).".format(*args.lines),
                 "Masked in both logs: run times" + (" and the batch total of the progress lines (theirs is a fixed 600; "
                                                     "see Differences)" if args.experiment in KNOWN else "") + ".",
                 "Authors' copy changed: " + ", ".join(f"{f} ({n} device substitutions)" for f, n in sorted(changes.items())) +
                 ("; torchvision stand-in (datasets.MNIST, transforms.ToTensor) added" if standin else "") + ".", ""]
        for mode, extra, name in stages:
            done = [finished(os.path.join(d, "log", f"train_{name}.log"), 3 if mode == "train2" else 1)
                    for d in (authors_dir, kit_dir)]
            for d, complete in zip((authors_dir, kit_dir), done):
                if not complete and os.path.exists(os.path.join(d, "log", f"train_{name}.log")):
                    os.remove(os.path.join(d, "log", f"train_{name}.log"))  # an interrupted attempt's lines
            for who, d, complete in (("the authors' script", authors_dir, done[0]), ("the kit's script", kit_dir, done[1])):
                log = os.path.join(d, "log", f"train_{name}.log")
                if complete:
                    say(f"{mode}: {who} already ran (its log: {log})")
                    continue
                say(f"{mode}: {who} runs (its log: {log})")
                if d == authors_dir:
                    run([sys.executable, script, *common, "--mode", mode, *extra], authors_dir, authors_env, log,
                        f"{mode}, authors'")
                else:
                    run([sys.executable, os.path.join(ROOT, kit_script), *common, "--mode", mode, *extra, *kit_extra],
                        kit_dir, env, log, f"{mode}, kit's")
            a_log, k_log = (log_lines(os.path.join(d, "log", f"train_{name}.log"), KNOWN.get(args.experiment, ()))
                            for d in (authors_dir, kit_dir))
            diff, own, total = first_difference(a_log, k_log)
            lines.append(f"**{mode}** — log: " + ("identical line for line" if diff is None else
                         f"first difference at line {diff[0]}:\n\n    authors: {diff[1]}\n    kit:     {diff[2]}\n") +
                         f" ({total} lines of the authors'; {own} kit-only lines set aside)")
            rows = checkpoint_differences(*(os.path.join(d, "checkpoint", f"{name}.t7") for d in (authors_dir, kit_dir)))
            numbers = [v for _, v in rows if isinstance(v, float)]
            lines += ["", f"checkpoint: largest difference {max(numbers):.3g} over {len(rows)} tensors"
                      if numbers else "checkpoint: no comparable tensor", "",
                      "| tensor | max abs difference |", "|---|---|"]
            lines += [f"| {n} | {v:.3g} |" if isinstance(v, float) else f"| {n} | {v} |" for n, v in rows] + [""]
        text = "\n".join(lines) + "\n"
        print(text)
        if args.report:
            with open(args.report, "a") as f:
                f.write(text + "\n")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
