"""The sequential-MNIST experiment: IDX data, loaders, the model's reading of an image, both protocols
and every model and mode end to end, on tiny IDX folders written here and on the shared MNIST sample."""
import gzip
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from common.data.smnist import load_split, loader, read_idx, split_train_val, write_mnist_raw
from common.training import KitError
from conftest import ROOT, SHARED_DATA, real_data_missing, run_script
from idx import NAMES, fake_digits, write_fake_mnist

SCRIPT = os.path.join(ROOT, "experiments", "rnn-smnist-800-0.5-0.6", "rnn-smnist.py")
GEN = os.path.join(ROOT, "data", "smnist-dataset-gen.py")
SMALL = ["--nhid", 8, "--batch_size", 50, "--log-interval", 2, "--device", "cpu", "--stage1_epochs", 2,
         "--stage2_epochs", 1, "--hessian_probes", 6, "--stage1_lr", 3e-3, "--stage2_lr", 3e-3]
SHARED_MNIST = os.path.join(SHARED_DATA, "MNIST", "raw")


def module():
    """rnn-smnist.py's names (model class, helpers), without running it."""
    import runpy
    return runpy.run_path(SCRIPT, run_name="rnn_smnist")


def run(cwd, *args):
    return run_script(SCRIPT, SMALL + [str(a) for a in args], cwd)


def final_block(log):
    """(test acc, the protocol line) of a log whose last three lines are the S-MNIST test block."""
    lines = open(log).read().splitlines()
    assert lines[-3] == "=" * 83 and lines[-1] == "=" * 83, lines[-3:]
    assert lines[-2].startswith("| Performance on Test Set | test loss ")
    assert lines[-4].startswith("protocol: ")
    return float(lines[-2].split()[-1]), lines[-4]


@pytest.fixture
def mnist(tmp_path):
    return write_fake_mnist(str(tmp_path / "data"), n_train=200, n_test=100)


# -- data -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_idx_files_read_as_written(tmp_path, gz):
    root = write_fake_mnist(str(tmp_path), n_train=30, n_test=20, gz=gz)
    images, labels = load_split(root, "train")
    expected_images, expected_labels = fake_digits(30, 0)
    assert images.dtype == torch.uint8 and images.shape == (30, 28, 28)
    assert np.array_equal(images.numpy(), expected_images) and np.array_equal(labels.numpy(), expected_labels)
    assert labels.dtype == torch.int64 and len(load_split(root, "test")[1]) == 20
    # the layout may also be given as the MNIST folder or the raw folder itself
    for other in (os.path.join(root, "MNIST"), os.path.join(root, "MNIST", "raw")):
        assert torch.equal(load_split(other, "train")[0], images)


def test_kit_writes_what_torchvision_reads(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    train, test = fake_digits(40, 3), fake_digits(10, 4)
    write_mnist_raw(str(tmp_path), train, test)
    tv = torchvision.datasets.MNIST(str(tmp_path), train=True, download=False)
    assert np.array_equal(tv.data.numpy(), train[0]) and np.array_equal(tv.targets.numpy(), train[1])
    assert np.array_equal(read_idx(os.path.join(tmp_path, "MNIST", "raw", NAMES["test"][1])), test[1])


def test_loader_matches_torch_dataloader_over_torchvision_mnist(tmp_path):
    """Same seed, same batches and pixel values as the authors' DataLoader(MNIST(ToTensor()), shuffle=True),
    and the same use of the global RNG (so everything drawn afterwards is the same too)."""
    torchvision = pytest.importorskip("torchvision")
    root = write_fake_mnist(str(tmp_path), n_train=130, n_test=20)
    theirs = torch.utils.data.DataLoader(torchvision.datasets.MNIST(
        root, train=True, download=False, transform=torchvision.transforms.ToTensor()), batch_size=50, shuffle=True)
    ours = loader(*load_split(root, "train"), 50, shuffle=True)
    batches = []
    for batches_of in (theirs, ours):
        torch.manual_seed(7)
        got = [b for epoch in range(2) for b in batches_of]
        batches.append((got, torch.rand(3)))
    (theirs_b, theirs_next), (ours_b, ours_next) = batches
    assert len(theirs_b) == len(ours_b) == 6 and [len(b[1]) for b in ours_b[:3]] == [50, 50, 30]
    for (xt, yt), (xo, yo) in zip(theirs_b, ours_b):
        assert torch.equal(xt, xo) and torch.equal(yt, yo)
    assert torch.equal(theirs_next, ours_next)


def test_validation_split_is_fixed_and_disjoint():
    images = torch.arange(100, dtype=torch.uint8).view(100, 1, 1).expand(100, 28, 28).contiguous()
    labels = torch.arange(100) % 10
    torch.manual_seed(1)
    (train_a, _), (val_a, _) = split_train_val(images, labels, 20)
    torch.manual_seed(2)
    (train_b, _), (val_b, vl) = split_train_val(images, labels, 20)
    assert torch.equal(val_a, val_b) and len(val_a) == 20 and len(train_a) == 80
    ids = set(train_a[:, 0, 0].tolist()) | set(val_a[:, 0, 0].tolist())
    assert ids == set(range(100)) and not set(train_a[:, 0, 0].tolist()) & set(val_a[:, 0, 0].tolist())
    assert torch.equal(vl, val_a[:, 0, 0].long() % 10)
    with pytest.raises(KitError, match="--val_size 100 must lie between 1 and 99"):
        split_train_val(images, labels, 100)


def test_bad_files_are_reported(tmp_path):
    with pytest.raises(KitError, match="smnist-dataset-gen.py"):
        load_split(str(tmp_path / "nowhere"), "train")
    with pytest.raises(KitError, match="no MNIST IDX files"):
        load_split(str(tmp_path), "train")
    root = write_fake_mnist(str(tmp_path / "a"), n_train=10, n_test=5)
    raw = os.path.join(root, "MNIST", "raw")
    os.remove(os.path.join(raw, NAMES["test"][1]))
    with pytest.raises(KitError, match="missing t10k-labels-idx1-ubyte"):
        load_split(root, "test")
    path = os.path.join(raw, NAMES["train"][0])
    data = open(path, "rb").read()
    open(path, "wb").write(data[:-5])
    with pytest.raises(KitError, match="truncated or corrupt"):
        load_split(root, "train")
    open(path, "wb").write(b"\x12\x34" + data[2:])
    with pytest.raises(KitError, match="not an IDX file"):
        load_split(root, "train")
    with gzip.open(path + ".gz", "wb") as f:  # a .gz beside a broken file: the unpacked one wins
        f.write(data)
    with pytest.raises(KitError, match="not an IDX file"):
        load_split(root, "train")


def test_dataset_gen_checks_files_and_explains_offline(tmp_path, monkeypatch, capsys):
    """One real run of the preparation CLI on placed files; one where the download cannot happen."""
    root = write_fake_mnist(str(tmp_path / "ok"), n_train=30, n_test=10, gz=True)
    proc = subprocess.run([sys.executable, GEN, "--root", root], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "train: 30 images" in proc.stdout and "not the benchmark" in proc.stdout
    # no files and no reachable mirror (as offline): the script ends with instructions, not a traceback
    torchvision = pytest.importorskip("torchvision")
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    assert run_script(GEN, ["--root", str(tmp_path / "empty")], str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "could not download MNIST" in err and "put the files by hand" in err
    assert os.path.join("empty", "MNIST", "raw") in err


# -- the model --------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_model_reads_columns_and_reads_out_rate_and_final_state(cell):
    m = module()
    torch.manual_seed(0)
    model = m["SMNISTModel"]([5, 4], [6, 3], cell).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("all_fc"):
                p.mul_(4)  # spikes happen
    images = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    seen = {}
    original_run = model.run

    def spy(x, hidden, masks=None):
        seen["x"] = x
        return original_run(x, hidden, masks)

    model.run = spy
    logits, hidden = model(images)
    assert torch.equal(seen["x"][5, 1], images[1, 0, :, 5])  # step 5 of image 1 is its column 5, top to bottom
    spikes, states, _ = model.forward_definition(seen["x"], model.init_hidden(3))
    assert 0 < spikes.mean() < 1
    expected = model.all_fc(torch.cat([spikes.sum(0) / 28, states[-1]], 1))
    assert torch.allclose(logits, expected, atol=1e-12)
    assert torch.allclose(hidden[1], states[-1], atol=1e-12)
    model.run = original_run
    model.fast = False
    assert torch.allclose(model(images)[0], logits, atol=1e-12)  # the layer-major path equals the definition


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_shrunk_model_equals_masked_model(cell):
    m = module()
    torch.manual_seed(1)
    model = m["SMNISTModel"]([6, 5], [4, 7], cell).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("all_fc"):
                p.mul_(4)
    keep = {"rnn1": [0, 2, 5], "rnn2": [1, 4], "snn1": [1, 3], "snn2": [0, 2, 3, 6]}
    small = model.shrunk(keep)
    images = torch.rand(4, 1, 28, 28, dtype=torch.float64)
    x = images.reshape(-1, 28, 28).transpose(1, 2).transpose(0, 1)
    spikes, states, _ = model.forward_definition(x, model.init_hidden(4), masks=model.masks_for(keep))
    masked = model.all_fc(torch.cat([spikes.sum(0) / 28, states[-1]], 1))
    assert spikes.sum() > 0
    for fast in (True, False):
        small.fast = fast
        assert torch.allclose(small(images)[0], masked, atol=1e-12)
    assert not torch.allclose(model(images)[0], masked)


# -- the experiment end to end ----------------------------------------------------------------------
def test_every_model_and_mode_with_the_original_protocol(tmp_path, mnist):
    d = str(tmp_path / "run")
    os.makedirs(d)
    for model, extra in [("rnn", []), ("snn", []), ("ffs", ["--ratio", 0.25]), ("hybrid", [])]:
        assert run(d, "--data", mnist, "--model", model, "--mode", "train1", *extra) == 0
    assert run(d, "--data", mnist, "--model", "hybrid", "--mode", "train2", "--ratio", 0.25) == 0
    for model, mode, extra in [("rnn", "test1", []), ("snn", "test1", []), ("ffs", "test1", ["--ratio", 0.25]),
                               ("hybrid", "test1", [])]:
        assert run(d, "--data", mnist, "--model", model, "--mode", mode, *extra) == 0
    # the command line for real, once
    proc = subprocess.run([sys.executable, SCRIPT, "--data", mnist, "--model", "hybrid", "--mode", "test2",
                           "--ratio", "0.25", "--device", "cpu"], cwd=d, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "| Performance on Test Set | test loss" in proc.stdout
    for name in ["mnist_rnn_1111", "mnist_snn_1111", "mnist_ffs_1111_0.25", "mnist_hybrid_1111", "mnist_hybrid_1111_0.25"]:
        (trained, protocol), (tested, protocol2) = (final_block(f"{d}/log/{k}_{name}.log") for k in ("train", "test"))
        assert trained == tested and 0 <= trained <= 100
        assert protocol.startswith("protocol: test") and protocol2.startswith("protocol: test")
        assert not os.path.exists(f"{d}/checkpoint/{name}.resume.t7")
    ckpt = torch.load(f"{d}/checkpoint/mnist_ffs_1111_0.25.t7", weights_only=True)
    assert {"net", "seed", "rnn_shape", "snn_shape", "snn_func", "test_acc_record"} <= set(ckpt)
    assert ckpt["rnn_shape"] == [6, 6] and ckpt["snn_shape"] == [2, 2] and ckpt["protocol"] == "test"
    assert max(ckpt["test_acc_record"]) == final_block(f"{d}/log/train_mnist_ffs_1111_0.25.log")[0]
    assert set(ckpt["net"]) == {"snn_fc1", "snn_fc2", "rnn_fc1", "rnn_fc2", "rnn_fv1", "rnn_fv2",
                                "all_fc.weight", "all_fc.bias"}
    log = open(f"{d}/log/train_mnist_ffs_1111_0.25.log").read().splitlines()
    assert "model with rnn_shape: [  6,   6]" in log and "-" * 83 in log
    progress = [l for l in log if l.startswith("| epoch   1 |")]
    assert progress and progress[0].startswith("| epoch   1 |     2/    4 batches |")  # 200 images / 50
    assert any(l.startswith("| end of epoch   2 | time: ") and "| test loss " in l and "| test acc " in l for l in log)
    # train2: full model tested, selection listed, selected model tested, restoration, final test
    lines = open(f"{d}/log/train_mnist_hybrid_1111_0.25.log").read().splitlines()
    counts = {l.split(":")[0]: int(l.split(":")[1]) for l in lines if "_layer[" in l}
    assert counts["rnn_layer[0]"] + counts["rnn_layer[1]"] == 12 and counts["snn_layer[0]"] + counts["snn_layer[1]"] == 4
    assert sum(l.startswith("| Performance on Test Set") for l in lines) == 3
    blocks = [i for i, l in enumerate(lines) if l.startswith("| Performance on Test Set")]
    selection = next(i for i, l in enumerate(lines) if l.startswith("rnn1: ["))
    assert blocks[0] < selection < blocks[1] < blocks[2] == len(lines) - 2
    table = open(f"{d}/traces/mnist_hybrid_1111_0.25_importance.csv").read().splitlines()
    assert table[0].startswith("param,neuron,trace,importance,kept,") and len(table) == 1 + 32


def test_validation_protocol(tmp_path, mnist):
    d = str(tmp_path / "val")
    os.makedirs(d)
    val = ["--protocol", "val", "--val_size", 50]
    assert run(d, "--data", mnist, "--model", "hybrid", "--mode", "train1", *val) == 0
    assert run(d, "--data", mnist, "--model", "hybrid", "--mode", "train2", "--ratio", 0.5, *val) == 0
    assert run(d, "--data", mnist, "--model", "hybrid", "--mode", "test2", "--ratio", 0.5) == 0
    for log in ("train_mnist_hybrid_1111", "train_mnist_hybrid_1111_0.5", "test_mnist_hybrid_1111_0.5"):
        acc, protocol = final_block(f"{d}/log/{log}.log")
        assert protocol.startswith("protocol: val") and "50 held-out training images" in protocol
    lines = open(f"{d}/log/train_mnist_hybrid_1111_0.5.log").read().splitlines()
    assert sum(l.startswith("| Performance on Test Set") for l in lines) == 1  # the test set is used once
    assert sum(l.startswith("| Performance on Validation Set") for l in lines) == 2
    assert all("| valid loss " in l for l in lines if l.startswith("| end of epoch"))
    ckpt = torch.load(f"{d}/checkpoint/mnist_hybrid_1111_0.5.t7", weights_only=True)
    assert ckpt["protocol"] == "val" and ckpt["val_size"] == 50 and "val_acc_record" in ckpt
    # progress lines count the 150 training images left: 3 batches of 50
    assert any(l.startswith("| epoch   1 |     2/    3 batches") for l in lines)


def test_errors_are_clear_messages(tmp_path, mnist, capsys):
    d = str(tmp_path)
    assert run(d, "--data", mnist, "--model", "hybrid", "--mode", "train1", "--stage1_epochs", 1) == 0
    cases = [
        (["--data", str(tmp_path / "nowhere"), "--model", "rnn"], "smnist-dataset-gen.py"),
        (["--data", mnist, "--model", "hybrid", "--mode", "train2", "--protocol", "val", "--val_size", 20],
         "was selected under --protocol test"),
        (["--data", mnist, "--model", "hybrid", "--mode", "train2", "--seed", 2], "python rnn-smnist.py --model hybrid --mode train1 --seed 2"),
        (["--data", mnist, "--model", "rnn", "--mode", "train1", "--protocol", "val", "--val_size", 200], "--val_size 200 must lie between"),
        (["--data", mnist, "--model", "rnn", "--cell", "lstm"], "--model rnn contradicts --cell lstm"),
        (["--data", mnist, "--model", "ffs", "--ratio", 0.3], "not a whole number of neurons"),
        (["--data", mnist, "--model", "hybrid", "--mode", "train1"], "already holds a trained model"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert run(d, *args) == 2, args
        assert message in capsys.readouterr().err, args


def test_authors_checkpoint_loads_and_tests(tmp_path, mnist):
    """A checkpoint with the authors' keys only (no cell, no protocol) is re-tested under test1."""
    m = module()
    torch.manual_seed(0)
    model = m["SMNISTModel"]([8, 8], [0, 0])
    d = str(tmp_path / "authors")
    os.makedirs(f"{d}/checkpoint")
    torch.save({"net": model.state_dict(), "seed": 1111, "rnn_shape": [8, 8], "snn_shape": [0, 0],
                "snn_func": "window", "test_acc_record": [11.0]}, f"{d}/checkpoint/mnist_rnn_1111.t7")
    assert run(d, "--data", mnist, "--model", "rnn", "--mode", "test1") == 0
    acc, protocol = final_block(f"{d}/log/test_mnist_rnn_1111.log")
    assert "checkpoint of the original code" in protocol


@pytest.mark.skipif(not all(os.path.exists(os.path.join(SHARED_MNIST, f)) or os.path.exists(os.path.join(SHARED_MNIST, f + ".gz"))
                            for pair in NAMES.values() for f in pair),
                    reason=real_data_missing("4,000 training and 1,000 test MNIST digits as IDX files (the 5,000-digit "
                                             "sample of docs/testing.md)", "MNIST/raw/{train,t10k}-*-ubyte"))
def test_real_digits_whole_pipeline(tmp_path):
    """On 4,000 + 1,000 real digits (the 5,000-digit sample): two epochs of a small SNN learn, and the three
    HSTNN stages run end to end."""
    images, labels = load_split(SHARED_DATA, "train")
    assert images.shape == (4000, 28, 28), f"{SHARED_MNIST} holds {len(images)} training images, not the sample's 4,000"
    assert set(labels.tolist()) == set(range(10))
    d = str(tmp_path)
    real = ["--data", SHARED_DATA, "--batch_size", 100, "--log-interval", 20]
    assert run(d, *real, "--model", "snn", "--mode", "train1", "--nhid", 32, "--stage1_epochs", 2) == 0
    acc, _ = final_block(f"{d}/log/train_mnist_snn_1111.log")
    assert acc > 40  # chance is 10 %
    assert run(d, *real, "--model", "hybrid", "--mode", "train1", "--nhid", 16, "--stage1_epochs", 1) == 0
    assert run(d, *real, "--model", "hybrid", "--mode", "train2", "--ratio", 0.5, "--stage2_epochs", 1) == 0
    assert run(d, *real, "--model", "hybrid", "--mode", "test2", "--ratio", 0.5) == 0
    restored, _ = final_block(f"{d}/log/train_mnist_hybrid_1111_0.5.log")
    assert restored == final_block(f"{d}/log/test_mnist_hybrid_1111_0.5.log")[0] and restored > 20
    ckpt = torch.load(f"{d}/checkpoint/mnist_hybrid_1111_0.5.t7", weights_only=True)
    assert sum(ckpt["rnn_shape"]) == 16 and sum(ckpt["snn_shape"]) == 16
