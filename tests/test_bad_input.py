"""Bad input ends in one line "error: ..." and exit code 2, before any data is read or Hessian computed;
malformed data files are named in that line; suggested commands carry the user's own flags."""
import gzip
import os
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import torch

from conftest import ROOT, run_script, write_corpus
from common.cli import experiment_parser, other_flags
from common.data.event_data import DVSGesture, NMNISTFrames
from common.data.events import DataError
from common.data.smnist import read_idx
from common.training import KitError, guard_overwrite
from event_writers import write_nmnist_bin
from idx import NAMES, idx_bytes, write_idx_file

SCRIPTS = {name: os.path.join(ROOT, "experiments", folder, f"{name}.py") for name, folder in (
    ("rnn-ptb", "rnn-ptb-650-0.5-0.6"), ("lstm-ptb", "lstm-ptb-650-0.5-0.6"),
    ("rnn-smnist", "rnn-smnist-800-0.5-0.6"), ("lstm-smnist", "lstm-smnist-800-0.5-0.6"),
    ("rcnn-nmnist", "rcnn-nmnist-128-0.25-0.3-0.3"), ("rcnn-dvs-ges", "rcnn-dvs-ges-128-0.5-0.3-0.5"))}

COMMON = [  # (flags, what the message names)
    (["--seed", -5], "--seed"), (["--seed", 2 ** 32], "--seed"), (["--hessian_probes", 0], "--hessian_probes"),
    (["--stage1_epochs", 0], "--stage1_epochs"), (["--stage2_epochs", -1], "--stage2_epochs"),
    (["--batch_size", 0], "--batch_size"), (["--stage1_lr", 0], "--stage1_lr"), (["--stage2_lr", -1e-3], "--stage2_lr"),
    (["--stage1_lr", "nan"], "--stage1_lr"), (["--clip", 0], "--clip"), (["--dropout", 1], "--dropout"),
    (["--dropout", -0.1], "--dropout"), (["--threads", 0], "--threads"), (["--log-interval", 0], "--log-interval"),
    (["--model", "ffs", "--ratio", 1.2], "--ratio"), (["--mode", "train2", "--ratio", 0], "--ratio"),
    (["--model", "snn", "--mode", "test2"], "--mode test2"),
]
SPECIFIC = {
    "rnn-ptb": [(["--nhid", 0], "--nhid"), (["--emsize", 0], "--emsize"), (["--bptt", 0], "--bptt"),
                (["--stage1_decay", 0], "--stage1_decay"), (["--stage2_decay", 0], "--stage2_decay"),
                (["--model", "ffs", "--ratio", 0.3, "--nhid", 8], "8 x 0.3 = 2.4 is not a whole number")],
    "lstm-ptb": [(["--nhid", -1], "--nhid")],
    "rnn-smnist": [(["--nhid", 0], "--nhid"), (["--val_size", 0], "--val_size"),
                   (["--model", "ffs", "--ratio", 0.3, "--nhid", 8], "8 x 0.3 = 2.4 is not a whole number")],
    "lstm-smnist": [(["--nhid", 0], "--nhid")],
    "rcnn-nmnist": [(["--nwin", 0], "--nwin"), (["--hessian_batch", 0], "--hessian_batch"), (["--dt", 0], "--dt"),
                    (["--model", "ffs", "--ratio", 0.3, "--channels", "4,4,4"], "whole")],
    "rcnn-dvs-ges": [(["--nwin", 0], "--nwin"), (["--ds", 3], "--ds"), (["--test_interval", 0], "--test_interval")],
}
CASES = [(s, flags, named) for s in SCRIPTS for flags, named in COMMON + SPECIFIC[s]]


def one_line_error(capsys, script, cwd, args):
    """Run a script that must stop with exit code 2 and exactly one line 'error: ...' on stderr."""
    capsys.readouterr()
    assert run_script(script, args, cwd) == 2, args
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("script,flags,named", CASES, ids=[f"{s}{' '.join(map(str, f))}" for s, f, _ in CASES])
def test_bad_flag_stops_before_the_data(tmp_path, capsys, script, flags, named):
    """--data points nowhere: the flag is reported, not the data, so it was checked first; nothing is written."""
    err = one_line_error(capsys, SCRIPTS[script], str(tmp_path), ["--data", str(tmp_path / "nowhere"), *flags])
    assert named in err
    assert os.listdir(tmp_path) == []  # no log, checkpoint or traces folder


def fake_checkpoint(folder, name, **content):
    os.makedirs(os.path.join(folder, "checkpoint"), exist_ok=True)
    torch.save(content, os.path.join(folder, "checkpoint", name))


@pytest.mark.parametrize("script,dataset,content,bad,good", [
    ("rnn-ptb", "ptb", dict(rnn_shape=[4, 4], snn_shape=[4, 4]), 0.3, 0.25),          # 8 x 0.3 = 2.4 neurons
    ("rnn-smnist", "mnist", dict(rnn_shape=[4, 4], snn_shape=[4, 4]), 0.3, 0.25),
    ("rcnn-nmnist", "nmnist", dict(layer_config=[dict(rcnn_channels=4, scnn_channels=4)] * 3), 0.3, 0.25),  # 12 filters
    ("rcnn-dvs-ges", "dvsGesture", dict(layer_config=[dict(rcnn_channels=4, scnn_channels=4)] * 3), 0.1, 0.5),
])
def test_train2_ratio_is_checked_against_the_adapted_network_first(tmp_path, capsys, script, dataset, content, bad, good):
    """The counts come from the Adaptation checkpoint, not from the size flags, and are checked before the data."""
    d = str(tmp_path)
    fake_checkpoint(d, f"{dataset}_hybrid_1111.t7", **content)
    nowhere = ["--data", str(tmp_path / "nowhere"), "--mode", "train2"]
    err = one_line_error(capsys, SCRIPTS[script], d, nowhere + ["--ratio", bad])
    assert f"--ratio {bad} does not fit checkpoint/{dataset}_hybrid_1111.t7" in err
    err = one_line_error(capsys, SCRIPTS[script], d, nowhere + ["--ratio", good])
    assert "--ratio" not in err and "nowhere" in err  # a valid ratio passes on to the data


@pytest.mark.parametrize("script,dataset", [("rnn-ptb", "ptb"), ("rnn-smnist", "mnist"), ("rcnn-nmnist", "nmnist"),
                                            ("rcnn-dvs-ges", "dvsGesture")])
def test_missing_or_finished_checkpoints_are_reported_before_the_data(tmp_path, capsys, script, dataset):
    d, nowhere = str(tmp_path), ["--data", str(tmp_path / "nowhere")]
    err = one_line_error(capsys, SCRIPTS[script], d, nowhere + ["--model", "snn", "--mode", "test1"])
    assert f"test1 needs the checkpoint checkpoint/{dataset}_snn_1111.t7, which does not exist" in err
    fake_checkpoint(d, f"{dataset}_snn_1111.t7")
    err = one_line_error(capsys, SCRIPTS[script], d, nowhere + ["--model", "snn"])
    assert f"checkpoint/{dataset}_snn_1111.t7 already holds a checkpoint from an earlier run" in err
    assert os.listdir(tmp_path / "checkpoint") == [f"{dataset}_snn_1111.t7"]


@pytest.fixture(scope="module")
def adapted_ptb(tmp_path_factory):
    """A real (tiny) PTB Adaptation checkpoint and its corpus."""
    d = tmp_path_factory.mktemp("ptb")
    corpus = write_corpus(str(d / "data"), lines=(60, 20, 20))
    size = ["--data", corpus, "--nhid", 4, "--emsize", 4, "--bptt", 5, "--batch_size", 4, "--threads", 1]
    assert run_script(SCRIPTS["rnn-ptb"], size + ["--stage1_epochs", 1], str(d)) == 0
    return str(d), size


def test_invalid_ratio_fails_before_a_huge_hessian(adapted_ptb, capsys):
    d, size = adapted_ptb
    start = time.time()
    err = one_line_error(capsys, SCRIPTS["rnn-ptb"], d, size + ["--mode", "train2", "--ratio", 0.37,
                                                               "--hessian_probes", 100000])
    assert time.time() - start < 5
    assert "RNN neurons kept: 8 x 0.63 = 5.04 is not a whole number" in err
    assert os.listdir(os.path.join(d, "traces")) == []
    assert not os.path.exists(os.path.join(d, "log", "train_ptb_hybrid_1111_0.37.log"))
    assert not os.path.exists(os.path.join(d, "checkpoint", "ptb_hybrid_1111_0.37.resume.t7"))


# -- suggested commands --------------------------------------------------------------------------------------------
def test_hints_carry_the_users_flags(adapted_ptb, capsys):
    d, size = adapted_ptb
    err = one_line_error(capsys, SCRIPTS["rnn-ptb"], d, size + ["--mode", "test2", "--ratio", 0.25])
    corpus = size[1]
    assert f"python rnn-ptb.py --model hybrid --mode train2 --seed 1111 --ratio 0.25 --data {corpus} --nhid 4 " \
           "--emsize 4 --bptt 5 --batch_size 4 --threads 1" in err
    err = one_line_error(capsys, SCRIPTS["rnn-ptb"], d, ["--mode", "train2", "--ratio", 0.25, "--seed", 7, *size])
    assert f"python rnn-ptb.py --model hybrid --mode train1 --seed 7 --data {corpus} --nhid 4" in err
    assert "--ratio" not in err.split("Create it first with:")[1]  # the Adaptation's name has no ratio
    err = one_line_error(capsys, SCRIPTS["rnn-ptb"], d, size + ["--model", "ffs", "--mode", "test1", "--ratio", 0.25])
    assert "--model ffs --mode train1 --seed 1111 --ratio 0.25 --data" in err


def test_conv_hints_carry_the_size_flags(tmp_path, capsys):
    err = one_line_error(capsys, SCRIPTS["rcnn-nmnist"], str(tmp_path),
                         ["--mode", "train2", "--channels", "4,4,4", "--nwin", 3, "--data", "my data"])
    assert "python rcnn-nmnist.py --model hybrid --mode train1 --seed 1111 --channels 4,4,4 --nwin 3 --data 'my data'" in err


def test_other_flags_drops_the_target_runs_flags():
    parser = experiment_parser("x")
    argv = ["--model", "ffs", "--data=a b", "--ratio=0.3", "--seed", "3", "--overwrite", "--mode", "test1", "--nhid", "8"]
    assert other_flags(parser, argv) == ["--data=a b", "--overwrite", "--nhid", "8"]
    parser.allow_abbrev = True
    assert other_flags(parser, ["--rat", "0.3", "--see=3", "--ove"]) == ["--ove"]


def test_overwrite_message_does_not_call_an_unfinished_checkpoint_trained(tmp_path, monkeypatch):
    os.makedirs(tmp_path / "checkpoint")
    (tmp_path / "checkpoint" / "ptb_hybrid_1.t7").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KitError, match=r"holds a checkpoint from an earlier run \(finished or not"):
        guard_overwrite("checkpoint/ptb_hybrid_1.t7", False)
    os.makedirs(tmp_path / "log")
    (tmp_path / "log" / "train_ptb_hybrid_1.json").write_text("{}")
    with pytest.raises(KitError, match="already holds a trained model. Pass --overwrite"):
        guard_overwrite("checkpoint/ptb_hybrid_1.t7", False)


# -- data errors name the file -------------------------------------------------------------------------------------
def test_ptb_text_that_is_not_utf8(tmp_path, capsys):
    corpus = write_corpus(str(tmp_path / "ptb"), lines=(30, 10, 10))
    path = os.path.join(corpus, "ptb.valid.txt")
    with open(path, "ab") as f:
        f.write(b" caf\xe9 \n")
    err = one_line_error(capsys, SCRIPTS["rnn-ptb"], str(tmp_path), ["--data", corpus, "--nhid", 4, "--emsize", 4])
    assert f"{path} is not UTF-8 text (byte 0xe9 at offset" in err and ", line 11)" in err


def test_idx_files_truncated_or_not_idx(tmp_path, capsys):
    images = np.zeros((3, 28, 28), np.uint8)
    good = idx_bytes(images)
    for name, data, message in (("body", good[:-5], "is truncated or corrupt"), ("header", good[:9], "is truncated"),
                                ("magic", b"\x08\x08" + good[2:], "is not an IDX file")):
        path = str(tmp_path / name)
        open(path, "wb").write(data)
        with pytest.raises(KitError, match=f"{path} {message}"):
            read_idx(path)
    with gzip.open(tmp_path / "cut.gz", "wb") as f:
        f.write(good)
    open(tmp_path / "short.gz", "wb").write((tmp_path / "cut.gz").read_bytes()[:30])
    with pytest.raises(KitError, match="cannot read .*short.gz"):
        read_idx(str(tmp_path / "short.gz"))
    raw = tmp_path / "mnist" / "MNIST" / "raw"  # through the script: one line naming the file
    for split, n in (("train", 3), ("test", 2)):
        write_idx_file(str(raw / NAMES[split][0]), np.zeros((n, 28, 28)))
        write_idx_file(str(raw / NAMES[split][1]), np.zeros(n))
    (raw / NAMES["test"][0]).write_bytes((raw / NAMES["test"][0]).read_bytes()[:-1])
    err = one_line_error(capsys, SCRIPTS["rnn-smnist"], str(tmp_path), ["--data", str(tmp_path / "mnist")])
    assert f"{raw / NAMES['test'][0]} is truncated or corrupt" in err


def nmnist_folder(root, images, labels):
    folder = os.path.join(root, "3ms")
    os.makedirs(folder, exist_ok=True)
    for prefix in ("nhtrain", "nrtest"):
        np.save(os.path.join(folder, f"{prefix}_image.npy"), images)
        np.save(os.path.join(folder, f"{prefix}_label.npy"), labels)
    return folder


@pytest.mark.parametrize("images,labels,file,message", [
    (np.zeros((100, 2, 34, 34)), np.eye(10)[np.zeros(100, int)], "nhtrain_image.npy", r"expected frames of shape"),
    (np.zeros((100, 2, 34, 34, 3)), np.zeros((100, 3)), "nhtrain_label.npy", r"expected one-hot labels"),
    (np.full((100, 2, 34, 34, 3), "a"), np.eye(10)[np.zeros(100, int)], "nhtrain_image.npy", r"expected numbers, got dtype"),
    (np.zeros((100, 2, 34, 34, 3)), np.array([None] * 100 * 10).reshape(100, 10), "nhtrain_label.npy", r"unreadable .npy"),
])
def test_nmnist_frames_of_the_wrong_shape_or_dtype(tmp_path, images, labels, file, message):
    folder = nmnist_folder(str(tmp_path), images, labels)
    with pytest.raises(DataError, match=f"{os.path.join(folder, file)}: {message}"):
        NMNISTFrames(str(tmp_path), 3, train=True, nwin=3)


def test_nmnist_truncated_npy_through_the_script(tmp_path, capsys):
    folder = nmnist_folder(str(tmp_path), np.zeros((100, 2, 34, 34, 3), np.uint8), np.eye(10)[np.zeros(100, int)])
    path = os.path.join(folder, "nhtrain_image.npy")
    open(path, "r+b").truncate(5000)
    err = one_line_error(capsys, SCRIPTS["rcnn-nmnist"], str(tmp_path), ["--data", str(tmp_path), "--nwin", 3])
    assert f"error: {path}: unreadable .npy file" in err


def gesture_file(path, groups=("train", "test"), labels=np.array([[1, 0, 100]])):
    with h5py.File(path, "w") as f:
        for group in groups:
            rec = f.create_group(f"{group}/0")
            rec["labels"] = labels
            rec["time"] = np.arange(5)
            rec["data"] = np.zeros((5, 3), np.int64)
    return str(path)


def test_hdf5_missing_a_group_or_with_bad_labels(tmp_path, capsys):
    path = gesture_file(tmp_path / "no-test.hdf5", groups=("train",))
    with pytest.raises(DataError, match=f"{path}: unreadable or not made by data/dvs-hdf5-gen.py .*test"):
        DVSGesture(path, T=3, dt=10, ds=4)
    path = gesture_file(tmp_path / "flat.hdf5", labels=np.array([1, 0, 100]))
    with pytest.raises(DataError, match=f"{path}: train/0/labels holds int64 \\(3,\\)"):
        DVSGesture(path, T=3, dt=10, ds=4)
    err = one_line_error(capsys, SCRIPTS["rcnn-dvs-ges"], str(tmp_path), ["--data", path, "--nwin", 3])
    assert f"error: {path}: train/0/labels" in err


def test_nmnist_preparation_names_a_truncated_recording(tmp_path):
    for split in ("Train", "Test"):
        for digit in range(10):
            os.makedirs(tmp_path / "N-MNIST" / split / str(digit))
            write_nmnist_bin(str(tmp_path / "N-MNIST" / split / str(digit) / "00001.bin"), [1, 2], [3, 4], [0, 1], [10, 20])
    bad = tmp_path / "N-MNIST" / "Train" / "3" / "00001.bin"
    bad.write_bytes(bad.read_bytes()[:-1])
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "data", "nmnist-dataset-gen.py"), "--root", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"error: {bad}: truncated N-MNIST file (9 bytes, not a multiple of 5)")


@pytest.mark.parametrize("flags,named", [(["--seed", -5], "--seed"), (["--batch_size", 0], "--batch_size"),
                                         (["--model", "hybrid", "--ratio", 1.5], "--ratio"), (["--mac_pj", 0], "--mac_pj")])
def test_evaluate_checks_its_flags_and_the_scripts(tmp_path, capsys, flags, named):
    experiment = os.path.join(ROOT, "experiments", "rnn-ptb-650-0.5-0.6")
    err = one_line_error(capsys, os.path.join(ROOT, "evaluate.py"), str(tmp_path),
                         ["cost", "--experiment", experiment, *flags])
    assert named in err
