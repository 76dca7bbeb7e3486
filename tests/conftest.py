import os
import random
import runpy
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Real data for the few tests that need it (they skip without it; docs/testing.md): the folder HSTNN_TEST_DATA
# names, else shared/data beside the checkout.
SHARED_DATA = os.path.abspath(os.environ.get("HSTNN_TEST_DATA") or os.path.join(ROOT, "..", "shared", "data"))
sys.path.insert(0, ROOT)
torch.set_num_threads(1)

from common import execution  # noqa: E402


def run_script(script, args, cwd):
    """Run an experiment script in this process (as `python script args` from cwd).
    Returns the exit code: 0 on success, 2 for a reported user error."""
    old_argv, old_cwd = sys.argv, os.getcwd()
    sys.argv = [script] + [str(a) for a in args]
    os.chdir(cwd)
    try:
        with execution.using(None):  # the script sets its own; the tests' setting is restored afterwards
            runpy.run_path(script, run_name="__main__")
        return 0
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)



def aggregate(*argv):
    """latex-code-gen.py in this process; its exit code (or the message it exits with)."""
    old = sys.argv
    sys.argv = ["latex-code-gen.py"] + [str(a) for a in argv]
    try:
        runpy.run_path(os.path.join(ROOT, "latex-code-gen.py"), run_name="__main__")
    except SystemExit as e:
        return e.code
    finally:
        sys.argv = old

def real_data_missing(what, files):
    """The skip reason of a test that needs real data: what it needs, where it looked, and how to point it
    at another copy."""
    where = os.path.join(SHARED_DATA, files)
    return (f"needs {what} at {where}; set HSTNN_TEST_DATA to a folder holding {files} "
            f"(see docs/testing.md)")


def write_corpus(folder, n_words=40, lines=(240, 40, 40), seed=0):
    """A tiny PTB-like corpus: ptb.train.txt, ptb.valid.txt, ptb.test.txt."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(n_words)]
    os.makedirs(folder, exist_ok=True)
    for split, n in zip(("train", "valid", "test"), lines):
        with open(os.path.join(folder, f"ptb.{split}.txt"), "w") as f:
            for _ in range(n):
                # a little structure to learn: each word tends to be followed by its successor
                w = rng.randrange(n_words)
                sent = []
                for _ in range(rng.randint(3, 10)):
                    sent.append(words[w])
                    w = (w + 1) % n_words if rng.random() < 0.7 else rng.randrange(n_words)
                f.write(" " + " ".join(sent) + " \n")
    return folder


def ptb_text(folder, lines=(240, 40, 40)):
    """The first `lines` lines of the real PTB train, valid and test text when it is beside the checkout
    (None: a whole split), else write_corpus's synthetic text with that many lines. Returns the folder."""
    real = os.path.join(SHARED_DATA, "penn-treebank")
    if not all(os.path.exists(os.path.join(real, f"ptb.{s}.txt")) for s in ("train", "valid", "test")):
        return write_corpus(folder, lines=tuple(n or 40 for n in lines))
    os.makedirs(folder, exist_ok=True)
    for split, n in zip(("train", "valid", "test"), lines):
        with open(os.path.join(real, f"ptb.{split}.txt")) as f:
            text = f.readlines()
        with open(os.path.join(folder, f"ptb.{split}.txt"), "w") as f:
            f.writelines(text if n is None else text[:n])
    return folder


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(str(tmp_path / "ptb"))
