"""Fault injection on the PTB script at a tiny size. A run killed (SIGKILL) at any stage boundary yields no
number, train2 refuses its unfinished Adaptation, and running the same command again gives exactly the
uninterrupted result. A truncated or bit-flipped file of any kind gives a one-line error naming it (exit 2) or
an NA cell; a planted pickle never runs. The kills use the test-only hook HSTNN_FAULT (common/runs.py)."""
import json
import os
import pickle
import shutil
import signal
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, aggregate, run_script, write_corpus
from common.report import logs as R

SCRIPT = os.path.join(ROOT, "experiments", "rnn-ptb-650-0.5-0.6", "rnn-ptb.py")
SMALL = ["--nhid", 8, "--emsize", 8, "--bptt", 6, "--batch_size", 4, "--log-interval", 1000, "--device", "cpu",
         "--stage1_epochs", 2, "--stage2_epochs", 2, "--hessian_probes", 4]
TRAIN1 = ["--model", "hybrid", "--mode", "train1"]
TRAIN2 = ["--model", "hybrid", "--mode", "train2", "--ratio", 0.5]
ADAPTED, RESTORED = "ptb_hybrid_1111", "ptb_hybrid_1111_0.5"


def run(folder, corpus, stage, *extra):
    return run_script(SCRIPT, SMALL + ["--data", corpus] + stage + list(extra), str(folder))


def killed_at(point, folder, corpus, stage):
    """Run the command in a forked child that HSTNN_FAULT=point kills with SIGKILL; fail if it is not killed."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 98
        try:
            signal.alarm(300)  # a hung child ends (SIGALRM) and fails the test instead of hanging it
            torch.set_num_threads(1)  # as DataLoader workers: no OpenMP pool inherited across fork
            os.environ["HSTNN_FAULT"] = point
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1), os.dup2(devnull, 2)
            code = run(folder, corpus, stage)
        finally:
            os._exit(code if isinstance(code, int) else 97)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"not killed at {point} ({status})"


def result(folder, name, legacy=False):
    """The aggregator's (number, problem) for the run's train log."""
    return R.read_result(os.path.join(str(folder), "log", f"train_{name}.log"), legacy=legacy)


def final_line(folder, name):
    return open(os.path.join(str(folder), "log", f"train_{name}.log")).read().splitlines()[-2]


def weights(folder, name):
    return torch.load(os.path.join(str(folder), "checkpoint", f"{name}.t7"), weights_only=True)["net"]


def copy_adaptation(source, target):
    for f in (f"checkpoint/{ADAPTED}.t7", f"log/train_{ADAPTED}.log", f"log/train_{ADAPTED}.json"):
        os.makedirs(os.path.dirname(os.path.join(target, f)), exist_ok=True)
        shutil.copy2(os.path.join(source, f), os.path.join(target, f))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Adaptation and Selection + Restoration at ratio 0.5, uninterrupted."""
    folder = tmp_path_factory.mktemp("reference")
    corpus = write_corpus(str(folder / "ptb"), lines=(120, 30, 30))
    assert run(folder, corpus, TRAIN1) == 0 and run(folder, corpus, TRAIN2) == 0
    return str(folder), corpus


@pytest.fixture
def finished(reference, tmp_path):
    """A copy of the reference folder."""
    shutil.copytree(reference[0], tmp_path / "run")
    return str(tmp_path / "run"), reference[1]


# -- killed runs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("stage, point", [
    ("train1", "epoch"),          # during Adaptation
    ("train1", "trained"),        # during the final test
    ("train2", "selection"),      # during Selection, before the traces are cached
    ("train2", "traces-cached"),  # during Selection, after
    ("train2", "resume-start"),   # right after the shrink
    ("train2", "epoch"),          # during Restoration
    ("train2", "trained"),        # during the final test
])
def test_a_killed_run_has_no_number_and_its_rerun_gives_the_uninterrupted_result(reference, tmp_path, capsys,
                                                                                 stage, point):
    ref, corpus = reference
    folder = str(tmp_path)
    name = ADAPTED if stage == "train1" else RESTORED
    if stage == "train2":
        copy_adaptation(ref, folder)
    command = TRAIN1 if stage == "train1" else TRAIN2
    killed_at(point, folder, corpus, command)
    raw, problem = result(folder, name)
    assert raw is None and problem
    if stage == "train1":  # Selection refuses the unfinished Adaptation, naming the file and the command
        capsys.readouterr()
        assert run(folder, corpus, TRAIN2) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"checkpoint/{ADAPTED}.resume.t7 exists" in err
        assert "--mode train1" in err and "--allow-unfinished" in err
        assert not os.path.exists(os.path.join(folder, "log", f"train_{RESTORED}.log"))
    if point == "selection":  # the log ends with the redundant network's test block: the old rule took it
        assert result(folder, name, legacy=True)[0] is not None
        capsys.readouterr()
        assert aggregate("--experiment", folder, "--out", tmp_path / "out", "--no-plots", "--logs", "train") == 0
        assert "0.50, NA, NA, NA" in (tmp_path / "out" / "ptb-RNN-hybrid.csv").read_text()
        assert f"log/train_{RESTORED}.log: no completion record" in capsys.readouterr().out
    assert run(folder, corpus, command) == 0
    assert final_line(folder, name) == final_line(ref, name)
    ours, theirs = weights(folder, name), weights(ref, name)
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert result(folder, name) == result(ref, name) and result(ref, name)[0] is not None
    assert not os.path.exists(os.path.join(folder, "checkpoint", f"{name}.resume.t7"))


# -- damaged files ----------------------------------------------------------------------------------
def damage(path, how):
    data = bytearray(open(path, "rb").read())
    if how == "truncate":
        data = data[:len(data) // 2]
    else:
        data[len(data) // 2] ^= 0x04
    with open(path, "wb") as f:
        f.write(data)


def one_line_error(capsys, folder, corpus, stage, *extra):
    capsys.readouterr()
    assert run(folder, corpus, stage, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    return err


def trace_file(folder):
    [name] = [f for f in os.listdir(os.path.join(folder, "traces")) if f.endswith(".npz")]
    return os.path.join(folder, "traces", name)


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_damaged_files_give_a_named_error_or_an_na_cell(finished, capsys, how):
    folder, corpus = finished
    # the record and the log of the finished Restoration: NA
    for f in (f"log/train_{RESTORED}.json", f"log/train_{RESTORED}.log"):
        saved = open(os.path.join(folder, f), "rb").read()
        damage(os.path.join(folder, f), how)
        raw, problem = result(folder, RESTORED)
        assert raw is None and problem and ("record" in problem if f.endswith(".json") else "log" in problem)
        with open(os.path.join(folder, f), "wb") as out:
            out.write(saved)
    assert result(folder, RESTORED)[0] is not None
    # the trace cache: Selection at another ratio reads it
    damage(trace_file(folder), how)
    assert "the trace cache traces/trace_ptb_hybrid_1111_" in one_line_error(capsys, folder, corpus, TRAIN2[:-1], 0.25)
    # the Adaptation checkpoint: its run no longer counts, Selection refuses it, a test cannot read a truncated one
    damage(os.path.join(folder, "checkpoint", f"{ADAPTED}.t7"), how)
    raw, problem = result(folder, ADAPTED)
    assert raw is None and "replaced or changed" in problem
    err = one_line_error(capsys, folder, corpus, TRAIN2[:-1], 0.25)
    assert "not a finished run" in err or (how == "truncate" and f"cannot read checkpoint checkpoint/{ADAPTED}.t7" in err)
    if how == "truncate":
        err = one_line_error(capsys, folder, corpus, ["--model", "hybrid", "--mode", "test1"])
        assert f"cannot read checkpoint checkpoint/{ADAPTED}.t7" in err


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_a_damaged_resume_file_is_named(reference, tmp_path, capsys, how):
    folder, corpus = str(tmp_path), reference[1]
    killed_at("epoch", folder, corpus, TRAIN1)
    resume = os.path.join(folder, "checkpoint", f"{ADAPTED}.resume.t7")
    damage(resume, how)
    err = one_line_error(capsys, folder, corpus, TRAIN1)
    assert f"resumable state checkpoint/{ADAPTED}.resume.t7" in err and "delete it" in err


# -- planted pickles --------------------------------------------------------------------------------
class Payload:
    """Unpickling this runs code: it writes the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('executed')",)


def test_planted_pickles_never_run(reference, finished, tmp_path, capsys):
    folder, corpus = finished
    marker = str(tmp_path / "MARKER")
    bait = str(tmp_path / "bait.t7")
    torch.save({"net": Payload(marker), "seed": 1111}, bait)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(bait, weights_only=True)
    torch.load(bait, weights_only=False)  # the payload is real: an unsafe load runs it
    assert os.path.exists(marker)
    os.remove(marker)

    shutil.copy(bait, os.path.join(folder, "checkpoint", f"{ADAPTED}.t7"))                     # checkpoint
    assert "cannot read checkpoint" in one_line_error(capsys, folder, corpus, ["--model", "hybrid", "--mode", "test1"])
    assert "cannot read checkpoint" in one_line_error(capsys, folder, corpus, TRAIN2[:-1], 0.25, "--allow-unfinished")
    shutil.copy(bait, os.path.join(folder, "checkpoint", "ptb_rnn_1111.resume.t7"))              # resume file
    assert "resumable state" in one_line_error(capsys, folder, corpus, ["--model", "rnn", "--mode", "train1"])
    copy_adaptation(reference[0], folder)
    np.savez(trace_file(folder), snn1=np.array([Payload(marker)], dtype=object))                # trace cache
    assert "the trace cache" in one_line_error(capsys, folder, corpus, TRAIN2[:-1], 0.25)
    assert R.read_result(os.path.join(folder, "log", f"train_{RESTORED}.log"))[0] is not None
    assert not os.path.exists(marker)


def test_a_train_only_launcher_file_reaches_the_table(reference):
    """The PTB mprun files only train: without a test_ log, a run is read from its train_ log (and its record)."""
    [exp] = R.make_experiments(reference[0])
    cell = R.collect(exp).cells[("hybrid", 0.5, 1111)]
    assert cell.raw == result(reference[0], RESTORED)[0] is not None
    assert cell.log.endswith(f"train_{RESTORED}.log")
    [only_tests] = R.make_experiments(reference[0], log_kind="test")
    assert R.collect(only_tests).cells[("hybrid", 0.5, 1111)].problem == "missing"


def test_training_again_keeps_the_old_record_aside_with_the_old_checkpoint(finished):
    folder, corpus = finished
    assert run(folder, corpus, TRAIN1, "--overwrite", "--stage1_epochs", 1) == 0
    [record] = [f for f in os.listdir(os.path.join(folder, "log")) if ".replaced-" in f]
    [checkpoint] = [f for f in os.listdir(os.path.join(folder, "checkpoint")) if ".replaced-" in f]
    assert record == f"train_{ADAPTED}.replaced-{checkpoint.split('.replaced-')[1][:-3]}.json"
    old = json.load(open(os.path.join(folder, "log", record)))
    assert old["checkpoint"]["sha256"] == R.runs.file_facts(os.path.join(folder, "checkpoint", checkpoint))["sha256"]
    assert result(folder, ADAPTED)[0] is not None  # the new run's own record
