"""What binds a number to what produced it (common/runs.py, record format 2): divergence, resuming with other flags,
re-tests on other data, copied files, stale parents, two processes on one run, garbled records, planted links.
Each case asserts that no wrong number is counted, nothing finished is lost, and the message is one line."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, write_corpus
from test_faults import ADAPTED, RESTORED, TRAIN1, TRAIN2, finished, killed_at, reference, result, run  # noqa: F401 (fixtures)
from common import runs

def record(folder, name, kind="train"):
    return json.load(open(os.path.join(folder, "log", f"{kind}_{name}.json")))


def one_line(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


# -- what a record binds ------------------------------------------------------------------------------
def test_a_record_binds_its_configuration_data_and_parent(reference):
    folder, _ = reference
    adapted, restored = record(folder, ADAPTED), record(folder, RESTORED)
    assert adapted["format"] == restored["format"] == 2 and adapted["status"] == "finished"
    assert adapted["config"]["stage1_lr"] == 0.5 and adapted["config"]["nhid"] == 8  # a default, resolved
    assert adapted["parent"] is None and adapted["data"]["sha256"] == restored["data"]["sha256"] is not None
    assert restored["parent"]["role"] == "adaptation" and restored["parent"]["name"] == ADAPTED
    assert restored["parent"]["checkpoint"]["sha256"] == adapted["checkpoint"]["sha256"]
    assert restored["parent"]["record_sha256"] == runs.file_facts(os.path.join(folder, "log", f"train_{ADAPTED}.json"))["sha256"]
    assert (restored["dataset"], restored["model"], restored["seed"], restored["ratio"]) == ("ptb", "hybrid", 1111, 0.5)


# -- divergence ----------------------------------------------------------------------------------------
def test_a_diverging_run_stops_with_a_diverged_record_and_no_number(tmp_path, capsys):
    corpus = write_corpus(str(tmp_path / "ptb"), lines=(120, 30, 30))
    folder = str(tmp_path / "run")
    os.makedirs(folder)
    assert run(folder, corpus, TRAIN1, "--stage1_lr", 1e6) == 3  # PTB's exp of the loss once overflowed here
    err = one_line(capsys)
    assert err.startswith(f"diverged: run {ADAPTED} stopped at epoch 1")
    log = open(os.path.join(folder, "log", f"train_{ADAPTED}.log")).read()
    assert "diverged at epoch 1" in log
    rec = record(folder, ADAPTED)
    assert rec["status"] == "diverged" and rec["diverged"]["epoch"] == 1 and rec["value"] is None
    raw, problem = result(folder, ADAPTED)
    assert raw is None and problem.startswith("diverged at epoch 1")
    assert not os.path.exists(os.path.join(folder, "checkpoint", f"{ADAPTED}.resume.t7"))
    assert run(folder, corpus, TRAIN2) == 2  # Selection refuses a diverged Adaptation
    assert "diverged at epoch 1" in one_line(capsys)


def test_a_nan_loss_with_a_finite_accuracy_is_divergence(tmp_path):
    """The accuracy of a network with nan outputs is a number (argmax of nan): the loss decides."""
    import torch
    from common.training import Checkpoint
    ckpt = Checkpoint(str(tmp_path / "c.t7"), {}, "acc", keep="highest")
    ckpt.model, ckpt.optimizer = torch.nn.Linear(2, 2), None
    with pytest.raises(runs.Diverged, match="diverged at epoch 4: loss nan"):
        ckpt.end_epoch(4, 10.0, loss=float("nan"))
    with torch.no_grad():
        ckpt.model.weight[0, 0] = float("inf")
    with pytest.raises(runs.Diverged, match="non-finite weights"):
        ckpt.end_epoch(5, 10.0, loss=1.0)
    assert not os.path.exists(str(tmp_path / "c.t7"))  # nothing of a diverged epoch is kept as the best


def test_exp_of_a_huge_loss_is_inf():
    assert runs.safe_exp(1e6) == float("inf") and runs.safe_exp(1.0) == pytest.approx(2.718281828)


# -- resuming ----------------------------------------------------------------------------------------
def test_resume_refuses_other_flags_naming_them_and_overwrite_starts_afresh(reference, tmp_path, capsys):
    folder, corpus = str(tmp_path), reference[1]
    killed_at("epoch", folder, corpus, TRAIN1)
    capsys.readouterr()
    assert run(folder, corpus, TRAIN1, "--stage1_lr", 20, "--batch_size", 3) == 2
    err = one_line(capsys)
    assert "--stage1_lr 0.5 -> 20" in err and "--batch_size 4 -> 3" in err and "--overwrite" in err
    assert os.path.exists(os.path.join(folder, "checkpoint", f"{ADAPTED}.resume.t7"))  # nothing lost
    assert run(folder, corpus, TRAIN1, "--threads", 1) == 0  # a flag that cannot change numbers resumes
    assert result(folder, ADAPTED) == result(reference[0], ADAPTED)
    os.makedirs(str(tmp_path / "b"))
    killed_at("epoch", str(tmp_path / "b"), corpus, TRAIN1)
    assert run(str(tmp_path / "b"), corpus, TRAIN1, "--stage1_lr", 20, "--overwrite") == 0
    assert record(str(tmp_path / "b"), ADAPTED)["config"]["stage1_lr"] == 20
    kept = os.listdir(os.path.join(str(tmp_path / "b"), "checkpoint"))
    assert any(".replaced-" in f and f.endswith(".resume.t7") for f in kept)  # the interrupted state, kept aside


def test_resume_refuses_other_data(reference, tmp_path, capsys):
    folder, corpus = str(tmp_path), reference[1]
    killed_at("epoch", folder, corpus, TRAIN1)
    other = write_corpus(str(tmp_path / "other"), lines=(120, 30, 30), seed=5)
    capsys.readouterr()
    assert run(folder, other, TRAIN1) == 2
    assert "other data" in one_line(capsys)


# -- re-tests, copies, parents -------------------------------------------------------------------------
def test_a_retest_on_other_data_never_replaces_the_training_number(finished, tmp_path):
    folder, _ = finished
    trained = result(folder, ADAPTED)[0]
    other = write_corpus(str(tmp_path / "reordered"), lines=(120, 30, 30), seed=7)
    assert run(folder, other, ["--model", "hybrid", "--mode", "test1"]) == 0
    test = record(folder, ADAPTED, "test")
    assert test["parent"]["role"] == "trained" and test["parent"]["checkpoint"]["sha256"] == record(folder, ADAPTED)["checkpoint"]["sha256"]
    raw, _, problem = runs.verify(os.path.join(folder, "log", f"test_{ADAPTED}.log"))
    assert raw is None and "other data" in problem
    assert result(folder, ADAPTED)[0] == trained


def test_files_copied_under_another_seed_do_not_count(finished):
    folder, _ = finished
    for src, dst in ((f"log/train_{ADAPTED}.log", "log/train_ptb_hybrid_2222.log"),
                     (f"log/train_{ADAPTED}.json", "log/train_ptb_hybrid_2222.json"),
                     (f"checkpoint/{ADAPTED}.t7", "checkpoint/ptb_hybrid_2222.t7")):
        shutil.copy2(os.path.join(folder, src), os.path.join(folder, dst))
    raw, problem = result(folder, "ptb_hybrid_2222")
    assert raw is None and f"names run '{ADAPTED}'" in problem


def test_a_selection_whose_adaptation_was_trained_again_is_stale(finished):
    folder, corpus = finished
    assert result(folder, RESTORED)[0] is not None
    assert run(folder, corpus, TRAIN1, "--overwrite", "--stage1_lr", 2) == 0
    raw, problem = result(folder, RESTORED)
    assert raw is None and problem.startswith("stale: its Adaptation")
    assert result(folder, ADAPTED)[0] is not None


# -- one process per run ---------------------------------------------------------------------------------
def test_a_second_process_on_the_same_run_exits_naming_the_holder(reference, tmp_path, capsys):
    folder, corpus = str(tmp_path), reference[1]
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time, argparse; sys.path.insert(0, sys.argv[1]); from common import runs; "
        "runs.begin(argparse.Namespace(mode='train1'), 'ptb', sys.argv[2]); print('held', flush=True); time.sleep(60)"),
        ROOT, ADAPTED], cwd=folder, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        assert run(folder, corpus, TRAIN1) == 75
        err = one_line(capsys)
        assert f"run {ADAPTED} is in use by process {holder.pid}" in err
        assert not os.path.exists(os.path.join(folder, "log", f"train_{ADAPTED}.log"))  # nothing of it was touched
    finally:
        holder.kill()
        holder.wait()
    assert run(folder, corpus, TRAIN1) == 0  # the lock dies with its holder, however it ends


# -- damaged and planted files ---------------------------------------------------------------------------
@pytest.mark.parametrize("content", ["[" * 100000 + "]" * 100000, '{"a": ' + "[" * 100000 + "]" * 100000 + "}",
                                     "null", '{"digest": 5, "status": []}'])
def test_a_garbled_record_is_a_problem_never_a_crash(finished, content):
    folder, _ = finished
    with open(os.path.join(folder, "log", f"train_{RESTORED}.json"), "w") as f:
        f.write(content)
    raw, problem = result(folder, RESTORED)
    assert raw is None and "record" in problem


def test_a_well_formed_record_with_wrong_types_is_a_problem(finished):
    folder, _ = finished
    path = os.path.join(folder, "log", f"train_{RESTORED}.json")
    rec = json.load(open(path))
    rec.update(checkpoint=5, parent=["x"], config="y")
    rec["digest"] = runs.record_digest(rec)
    json.dump(rec, open(path, "w"))
    raw, problem = result(folder, RESTORED)
    assert raw is None and problem


def test_a_planted_link_in_log_is_never_written_through(reference, tmp_path, capsys):
    folder, corpus = str(tmp_path / "run"), reference[1]
    os.makedirs(os.path.join(folder, "log"))
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious\n")
    os.symlink(str(target), os.path.join(folder, "log", f"train_{ADAPTED}.log"))
    capsys.readouterr()
    assert run(folder, corpus, TRAIN1) == 2
    assert "symbolic link" in one_line(capsys)
    assert target.read_text() == "precious\n"


# -- the launcher walks the same chain --------------------------------------------------------------------
def test_the_launcher_neither_skips_nor_counts_a_stale_or_old_run(finished):
    from common.launch.jobs import Job
    from common.launch.launcher import job_state
    folder, corpus = finished
    argv = list(record(folder, RESTORED)["argv"])
    job = Job(folder, argv, "ptb", "hybrid", "1111", "0.5", "train2")
    assert job_state(job) == ("done", "")
    assert job_state(Job(folder, argv + ["--stage2_lr", "1"], "ptb", "hybrid", "1111", "0.5", "train2"))[0] == "flags"
    assert run(folder, corpus, TRAIN1, "--overwrite", "--stage1_lr", 2) == 0
    state, why = job_state(job)
    assert state == "stale" and "its Adaptation" in why
    path = os.path.join(folder, "log", f"train_{ADAPTED}.json")
    old = {k: v for k, v in json.load(open(path)).items() if k not in ("format", "config", "data", "parent")}
    old["digest"] = runs.record_digest(old)
    json.dump(old, open(path, "w"))
    state, why = job_state(Job(folder, list(record(folder, ADAPTED)["argv"]), "ptb", "hybrid", "1111", "0", "train1"))
    assert state == "old" and "tools/upgrade-records.py" in why
