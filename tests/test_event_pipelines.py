"""Every stage of the DVS Gesture and N-MNIST experiments, end to end at reduced width, on tiny synthetic
recordings written in the raw formats and converted by the data-preparation scripts."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT as REPO, run_script
from event_writers import write_gesture_recording, write_nmnist_bin

DVS_SCRIPT = os.path.join(REPO, "experiments", "rcnn-dvs-ges-128-0.5-0.3-0.5", "rcnn-dvs-ges.py")
NMNIST_SCRIPT = os.path.join(REPO, "experiments", "rcnn-nmnist-128-0.25-0.3-0.3", "rcnn-nmnist.py")
SMALL = ["--channels", "4,4,4", "--device", "cpu", "--threads", "1", "--hessian_probes", "2"]
TEST_RULE = "=" * 83


def prepare(script, *args):
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, os.path.join(REPO, "data", script), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr


def run_ok(script, cwd, *args):
    assert run_script(script, list(args), cwd) == 0


def run_error(capsys, script, cwd, *args):
    """Run a script that must stop with a clear message (exit code 2, no traceback); returns the message."""
    capsys.readouterr()
    assert run_script(script, list(args), cwd) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def final_block(cwd, log):
    with open(os.path.join(cwd, "log", log)) as f:
        lines = f.read().splitlines()
    assert lines[-1] == lines[-3] == TEST_RULE, lines[-3:]
    return lines[-2]


# -- synthetic data ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dvs_root(tmp_path_factory):
    """4 train recordings (users 01-23) and 3 test recordings (24-29), 2 gestures each, through dvs-hdf5-gen.py."""
    root = str(tmp_path_factory.mktemp("dvs"))
    folder = os.path.join(root, "DvsGesture")
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    names = ["user01_lab", "user02_led", "user05_natural", "user23_lab", "user24_lab", "user26_led", "user29_natural"]
    for k, name in enumerate(names):
        ts, es, rows = [], [], []
        for g in range(2):
            start = 1_000_000 + g * 500_000
            rows.append(((2 * k + g) % 11 + 1, start, start + 300_000))
            ts.append(np.sort(rng.integers(start, start + 300_000, 300)))
            es.append(np.stack([rng.integers(0, 128, 300), rng.integers(0, 128, 300), rng.integers(0, 2, 300)], 1))
        write_gesture_recording(folder, name, np.concatenate(ts), np.concatenate(es), rows)
    prepare("dvs-hdf5-gen.py", "--root", root)
    return root


@pytest.fixture(scope="module")
def nmnist_root(tmp_path_factory):
    """100 train and 100 test samples (10 per digit) through nmnist-dataset-gen.py (raw release layout)."""
    root = str(tmp_path_factory.mktemp("nmnist"))
    rng = np.random.default_rng(1)
    for split in ("Train", "Test"):
        for d in range(10):
            folder = os.path.join(root, "N-MNIST", split, str(d))
            os.makedirs(folder)
            for j in range(10):
                n = 60
                write_nmnist_bin(os.path.join(folder, f"{j + 1:05d}.bin"), rng.integers(0, 34, n),
                                 rng.integers(0, 34, n), rng.integers(0, 2, n), np.sort(rng.integers(0, 15000, n)))
    prepare("nmnist-dataset-gen.py", "3", "--root", root, "--steps", "5")
    return root


# -- DVS Gesture --------------------------------------------------------------------------------------------
def test_dvs_every_stage(dvs_root, tmp_path):
    data = os.path.join(dvs_root, "DvsGesture")  # a folder: the script finds dvs_gestures_events.hdf5 in it
    flags = SMALL + ["--data", data, "--nwin", 4, "--ds", 16, "--batch_size", 2, "--test_interval", 2,
                     "--stage1_epochs", 4, "--stage2_epochs", 4]
    cwd = str(tmp_path)
    for model in ("rnn", "snn", "hybrid"):
        run_ok(DVS_SCRIPT, cwd, "--model", model, *flags)
    run_ok(DVS_SCRIPT, cwd, "--model", "ffs", "--ratio", 0.75, *flags)
    log = open(os.path.join(cwd, "log", "train_dvsGesture_hybrid_1111.log")).read().splitlines()
    assert log[2] == "-" * 83 and log[3].startswith("| end of epoch   2 | time: ") and " | train loss " in log[3]
    assert log[3].endswith("%") and log[6].startswith("| end of epoch   4 |")
    for name in ("rnn_1111", "snn_1111", "hybrid_1111", "ffs_1111_0.75"):
        line = final_block(cwd, f"train_dvsGesture_{name}.log")
        assert line.startswith("| Performance on Test Set | test acc ")
        model, _, ratio = name.partition("_1111")
        run_ok(DVS_SCRIPT, cwd, "--model", model, "--mode", "test1", *flags, *(["--ratio", ratio[1:]] if ratio else []))
        assert final_block(cwd, f"test_dvsGesture_{name}.log") == line  # the best checkpoint, tested again
    ckpt = torch.load(os.path.join(cwd, "checkpoint", "dvsGesture_ffs_1111_0.75.t7"), weights_only=True)
    assert set(ckpt) == {"net", "seed", "layer_config", "buffer_config", "linear_config", "test_acc_record"}
    assert [(l["rcnn_channels"], l["scnn_channels"]) for l in ckpt["layer_config"]] == [(1, 3), (1, 3), (1, 3)]
    assert 1 <= len(ckpt["test_acc_record"]) <= 2 and not os.listdir(os.path.join(cwd, "traces"))

    run_ok(DVS_SCRIPT, cwd, "--model", "hybrid", "--mode", "train2", "--ratio", 0.5, *flags)
    log = open(os.path.join(cwd, "log", "train_dvsGesture_hybrid_1111_0.5.log")).read()
    assert log.count("| Performance on Test Set |") == 3  # the adapted net, the selected net, the restored net
    assert "hcnn_layers.0.rcnn_fc: [" in log and "hcnn_layers.2.scnn_fc: " in log
    importance = open(os.path.join(cwd, "traces", "dvsGesture_hybrid_1111_0.5_importance.csv")).read().splitlines()
    assert importance[0].startswith("param,neuron,trace,importance,kept,") and len(importance) == 1 + 2 * 12
    assert sum(int(row.split(",")[4]) for row in importance[1:]) == 12  # half of the 12 RCNN and of the 12 SCNN filters
    ckpt = torch.load(os.path.join(cwd, "checkpoint", "dvsGesture_hybrid_1111_0.5.t7"), weights_only=True)
    assert sum(l["rcnn_channels"] for l in ckpt["layer_config"]) == 6 and "old_rcnn_channels" in ckpt["layer_config"][0]
    assert not os.path.exists(os.path.join(cwd, "checkpoint", "dvsGesture_hybrid_1111_0.5.resume.t7"))
    # test2 as a real subprocess, the way the launcher runs it
    proc = subprocess.run([sys.executable, DVS_SCRIPT, "--model", "hybrid", "--mode", "test2", "--ratio", "0.5",
                           *map(str, flags)], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert final_block(cwd, "test_dvsGesture_hybrid_1111_0.5.log") == final_block(cwd, "train_dvsGesture_hybrid_1111_0.5.log")


def test_dvs_train2_resumes_after_selection(dvs_root, tmp_path, monkeypatch):
    """An interruption after Selection leaves the shrunk net as the resume point; the rerun restores it."""
    import common.training
    flags = SMALL + ["--data", os.path.join(dvs_root, "DvsGesture", "dvs_gestures_events.hdf5"), "--nwin", 3,
                     "--ds", 16, "--batch_size", 2, "--test_interval", 1, "--stage1_epochs", 1, "--stage2_epochs", 2,
                     "--hessian_batch", 3]
    cwd = str(tmp_path)
    run_ok(DVS_SCRIPT, cwd, "--model", "hybrid", *flags)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(common.training.Checkpoint, "restore", interrupted)  # Restoration's first act
    with pytest.raises(KeyboardInterrupt):
        run_script(DVS_SCRIPT, ["--model", "hybrid", "--mode", "train2", "--ratio", 0.25, *flags], cwd)
    monkeypatch.undo()
    resume = os.path.join(cwd, "checkpoint", "dvsGesture_hybrid_1111_0.25.resume.t7")
    assert os.path.exists(resume)
    run_ok(DVS_SCRIPT, cwd, "--model", "hybrid", "--mode", "train2", "--ratio", 0.25, *flags)
    log = open(os.path.join(cwd, "log", "train_dvsGesture_hybrid_1111_0.25.log")).read()
    assert "resuming from checkpoint/dvsGesture_hybrid_1111_0.25.resume.t7" in log
    ckpt = torch.load(os.path.join(cwd, "checkpoint", "dvsGesture_hybrid_1111_0.25.t7"), weights_only=True)
    assert [l["scnn_channels"] for l in ckpt["layer_config"]] == [1, 1, 1]  # 12 x 0.25 = 3: the best filter of each layer
    assert not os.path.exists(resume)


def test_dvs_clear_errors(dvs_root, tmp_path, capsys):
    cwd = str(tmp_path)
    data = ["--data", os.path.join(dvs_root, "DvsGesture"), "--nwin", 3, "--ds", 16, "--batch_size", 2]
    err = run_error(capsys, DVS_SCRIPT, cwd, "--model", "ffs", "--ratio", 0.1, *SMALL, *data)
    assert "multiples of 1/4" in err
    err = run_error(capsys, DVS_SCRIPT, cwd, "--model", "hybrid", "--mode", "train2", *SMALL, *data)
    assert "python rcnn-dvs-ges.py --model hybrid --mode train1 --seed 1111" in err and "--nwin 3" in err
    err = run_error(capsys, DVS_SCRIPT, cwd, "--model", "rnn", *SMALL, "--data", str(tmp_path / "none.hdf5"))
    assert "dvs-hdf5-gen.py" in err
    err = run_error(capsys, DVS_SCRIPT, cwd, "--model", "rnn", *SMALL, *data, "--batch_size", 5)
    assert "--batch_size 5 is larger than the 4 training recordings" in err
    err = run_error(capsys, DVS_SCRIPT, cwd, "--model", "rnn", "--ds", 3, *SMALL)
    assert "--ds must divide 128" in err


# -- N-MNIST --------------------------------------------------------------------------------------------
def test_nmnist_every_stage(nmnist_root, tmp_path):
    flags = SMALL + ["--data", os.path.join(nmnist_root, "N-MNIST", "processed"), "--nwin", 4, "--batch_size", 50,
                     "--stage1_epochs", 2, "--stage2_epochs", 1, "--log-interval", 1]
    cwd = str(tmp_path)
    for model in ("rnn", "snn", "hybrid"):
        run_ok(NMNIST_SCRIPT, cwd, "--model", model, *flags)
    run_ok(NMNIST_SCRIPT, cwd, "--model", "ffs", "--ratio", 0.5, *flags)
    log = open(os.path.join(cwd, "log", "train_nmnist_snn_1111.log")).read().splitlines()
    assert log[2].startswith("| epoch   1 |     1/    2 batches | ") and " | loss " in log[2] and log[2].endswith("%")
    assert log[4].startswith("| end of epoch   1 | time: ") and " | test loss " in log[4] and " | test acc " in log[4]
    for name in ("rnn_1111", "snn_1111", "hybrid_1111", "ffs_1111_0.5"):
        line = final_block(cwd, f"train_nmnist_{name}.log")
        assert line.startswith("| Performance on Test Set | test loss ") and " | test acc " in line
    run_ok(NMNIST_SCRIPT, cwd, "--model", "ffs", "--mode", "test1", "--ratio", 0.5, *flags)
    assert final_block(cwd, "test_nmnist_ffs_1111_0.5.log") == final_block(cwd, "train_nmnist_ffs_1111_0.5.log")

    run_ok(NMNIST_SCRIPT, cwd, "--model", "hybrid", "--mode", "train2", "--ratio", 0.35, "--truncate_counts",
           "--hessian_batch", 20, *flags)
    log = open(os.path.join(cwd, "log", "train_nmnist_hybrid_1111_0.35.log")).read()
    assert log.count("| Performance on Test Set |") == 2  # no test of the adapted net, as the original
    ckpt = torch.load(os.path.join(cwd, "checkpoint", "nmnist_hybrid_1111_0.35.t7"), weights_only=True)
    assert sum(l["rcnn_channels"] for l in ckpt["layer_config"]) == 7  # int(12 x 0.65)
    assert sum(l["scnn_channels"] for l in ckpt["layer_config"]) == 4  # int(12 x 0.35)
    proc = subprocess.run([sys.executable, NMNIST_SCRIPT, "--model", "hybrid", "--mode", "test2", "--ratio", "0.35",
                           *map(str, flags)], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert final_block(cwd, "test_nmnist_hybrid_1111_0.35.log") == final_block(cwd, "train_nmnist_hybrid_1111_0.35.log")


def test_nmnist_clear_errors(nmnist_root, tmp_path, capsys):
    cwd = str(tmp_path)
    flags = SMALL + ["--data", os.path.join(nmnist_root, "N-MNIST", "processed"), "--nwin", 4]
    err = run_error(capsys, NMNIST_SCRIPT, cwd, "--model", "hybrid", "--mode", "train2", "--ratio", 0.3, *flags)
    assert "--model hybrid --mode train1" in err
    err = run_error(capsys, NMNIST_SCRIPT, cwd, "--model", "rnn", "--nwin", 9, *SMALL, "--data", flags[-3])
    assert "fewer than nwin=9" in err
    err = run_error(capsys, NMNIST_SCRIPT, cwd, "--model", "rnn", "--batch_size", 200, *flags)
    assert "batch size 200 is larger than the 100 samples" in err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_dvs_adaptation_and_selection_on_cuda(dvs_root, tmp_path):
    flags = ["--channels", "4,4,4", "--device", "cuda", "--hessian_probes", "4", "--data",
             os.path.join(dvs_root, "DvsGesture"), "--nwin", 4, "--ds", 16, "--batch_size", 2, "--test_interval", 1,
             "--stage1_epochs", 1, "--stage2_epochs", 1]
    cwd = str(tmp_path)
    run_ok(DVS_SCRIPT, cwd, "--model", "hybrid", *flags)
    run_ok(DVS_SCRIPT, cwd, "--model", "hybrid", "--mode", "train2", "--ratio", 0.5, *flags)
    ckpt = torch.load(os.path.join(cwd, "checkpoint", "dvsGesture_hybrid_1111_0.5.t7"), weights_only=True, map_location="cpu")
    assert sum(l["rcnn_channels"] + l["scnn_channels"] for l in ckpt["layer_config"]) == 12


def test_nmnist_a_diverging_run_reads_div_never_a_number(nmnist_root, tmp_path, capsys):
    """At a huge learning rate the N-MNIST loss is nan while its accuracy is a number (chance)."""
    cwd = str(tmp_path)
    flags = SMALL + ["--data", os.path.join(nmnist_root, "N-MNIST", "processed"), "--nwin", 4, "--batch_size", 50,
                     "--stage1_epochs", 2]
    capsys.readouterr()
    assert run_script(NMNIST_SCRIPT, ["--model", "rnn", "--stage1_lr", 1e6] + flags, cwd) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("diverged: run nmnist_rnn_1111 stopped at epoch")
    record = json.load(open(os.path.join(cwd, "log", "train_nmnist_rnn_1111.json")))
    assert record["status"] == "diverged" and record["value"] is None
