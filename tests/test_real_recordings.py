"""Real N-MNIST recordings (545 files of the official release beside the checkout): the preparation script's
frames against an independent decoding written here, and a short training run on them."""
import glob
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, SHARED_DATA, real_data_missing, run_script

SAMPLE = os.path.join(SHARED_DATA, "N-MNIST-sample")
SCRIPT = os.path.join(ROOT, "experiments", "rcnn-nmnist-128-0.25-0.3-0.3", "rcnn-nmnist.py")
DT_US, STEPS = 3000, 15  # the authors' 3 ms frames, 15 of them

MANIFEST = os.path.join(ROOT, "tests", "nmnist-sample.txt")  # the 545 files, as paths inside the release

pytestmark = pytest.mark.skipif(not os.path.isdir(os.path.join(SAMPLE, "Train")), reason=real_data_missing(
    "545 recordings of the N-MNIST release (the files tests/nmnist-sample.txt lists)",
    "N-MNIST-sample/{Train,Test}/<digit>/<number>.bin"))


def decode(path):
    """Events of one N-MNIST file, read here from the format's description: 5 bytes per event, x (byte 0),
    y (byte 1), polarity (bit 7 of byte 2, 1 = ON), timestamp in us (the other 23 bits, most significant first)."""
    events = []
    data = open(path, "rb").read()
    for k in range(0, len(data), 5):
        b = data[k:k + 5]
        events.append((b[0], b[1], b[2] >> 7, (b[2] & 0x7F) << 16 | b[3] << 8 | b[4]))
    return events


def frames(events):
    """(polarity, x, y, time) binary frames: 1 where the pixel fired in [i dt, (i + 1) dt)."""
    out = np.zeros((2, 34, 34, STEPS), np.uint8)
    for x, y, p, t in events:
        if t < STEPS * DT_US:
            out[p, x, y, t // DT_US] = 1
    return out


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The sample through data/nmnist-dataset-gen.py (its root holds N-MNIST/Train and N-MNIST/Test)."""
    found = sorted(os.path.relpath(f, SAMPLE).replace(os.sep, "/") for f in glob.glob(os.path.join(SAMPLE, "*", "*", "*.bin")))
    assert found == open(MANIFEST).read().split(), f"{SAMPLE} must hold exactly the files tests/nmnist-sample.txt lists"
    tmp = tmp_path_factory.mktemp("nmnist-real")
    os.makedirs(tmp / "root")
    os.symlink(SAMPLE, tmp / "root" / "N-MNIST")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "data", "nmnist-dataset-gen.py"), "3", "--root",
                           str(tmp / "root"), "--out", str(tmp / "processed")], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT), timeout=300)
    assert proc.returncode == 0, proc.stderr
    return tmp / "processed" / "3ms"


def test_prepared_frames_equal_an_independent_decoding(prepared):
    for split, prefix, n in (("Train", "nhtrain", 497), ("Test", "nrtest", 48)):
        images, labels = np.load(prepared / f"{prefix}_image.npy"), np.load(prepared / f"{prefix}_label.npy")
        files = sorted(glob.glob(os.path.join(SAMPLE, split, "*", "*.bin")))  # digit folder, then file name
        assert images.shape == (n, 2, 34, 34, STEPS) and images.dtype == np.uint8 and len(files) == n
        assert labels.shape == (n, 10) and np.array_equal(labels.argmax(1), [int(f.split(os.sep)[-2]) for f in files])
        assert set(labels.argmax(1)) == set(range(10))
        for i, f in enumerate(files):
            events = decode(f)
            assert max(max(x, y) for x, y, _, _ in events) < 34  # every event on the 34 x 34 sensor
            assert np.array_equal(images[i], frames(events)), f
    first = decode(os.path.join(SAMPLE, "Train", "0", "00002.bin"))
    assert len(first) == 5028 and {p for _, _, p, _ in first} == {0, 1}
    assert 250_000 < max(t for _, _, _, t in first) < 400_000  # a saccade recording lasts about 300 ms
    active = images.reshape(len(images), 2, -1, STEPS).max(2).mean()  # not empty: most frames have events
    assert active > 0.5


def test_short_training_run_on_real_recordings(prepared, tmp_path):
    """Hybrid Adaptation for one epoch at reduced width: 400 recordings to train on (the script keeps
    multiples of 100) and 100 held out (the 48 test recordings and 52 unused training ones)."""
    train_x, train_y = np.load(prepared / "nhtrain_image.npy"), np.load(prepared / "nhtrain_label.npy")
    test_x, test_y = np.load(prepared / "nrtest_image.npy"), np.load(prepared / "nrtest_label.npy")
    order = np.random.default_rng(0).permutation(len(train_x))  # every digit in both sets
    data = tmp_path / "frames" / "3ms"
    os.makedirs(data)
    np.save(data / "nhtrain_image.npy", train_x[order[:400]])
    np.save(data / "nhtrain_label.npy", train_y[order[:400]])
    np.save(data / "nrtest_image.npy", np.concatenate([test_x, train_x[order[400:452]]]))
    np.save(data / "nrtest_label.npy", np.concatenate([test_y, train_y[order[400:452]]]))
    cwd = str(tmp_path)
    assert run_script(SCRIPT, ["--model", "hybrid", "--mode", "train1", "--data", str(tmp_path / "frames"),
                               "--channels", "4,4,4", "--nwin", 8, "--stage1_epochs", 1, "--batch_size", 50,
                               "--device", "cpu", "--threads", 1, "--log-interval", 4], cwd) == 0
    log = open(os.path.join(cwd, "log", "train_nmnist_hybrid_1111.log")).read().splitlines()
    assert log[-3] == log[-1] == "=" * 83
    acc = float(log[-2].split("test acc")[1].strip().rstrip("%"))
    assert 0 <= acc <= 100 and any(line.startswith("| end of epoch   1 |") for line in log)
    assert os.path.exists(os.path.join(cwd, "checkpoint", "nmnist_hybrid_1111.t7"))
