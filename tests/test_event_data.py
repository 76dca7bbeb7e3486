"""Event-camera pipelines: raw readers, binning, the two data scripts, and the training datasets."""
import hashlib
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
import scipy.io
import torch

from common.data.event_data import DVSGesture, NMNISTFrames
from common.data.events import (DataError, bin_events, binary_frames, clip_to_gestures, find_gesture_recordings,
                           load_gesture_recording, read_aedat31, read_gesture_labels, read_nmnist_bin)
from event_writers import (polarity_packet, special_packet, write_aedat31, write_gesture_labels,
                           write_gesture_recording, write_nmnist_bin)

torch.set_num_threads(1)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T, DT, DS = 6, 20000, 4  # small windows keep the provider tests fast


def run_script(name, *args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, os.path.join(REPO, "data", name), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


def assert_clean_error(proc, *fragments):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    for frag in fragments:
        assert frag in proc.stderr, (frag, proc.stderr)


def random_events(rng, n, t_lo, t_hi, sensor=128):
    t = np.sort(rng.integers(t_lo, t_hi, n))
    xyp = np.stack([rng.integers(0, sensor, n), rng.integers(0, sensor, n), rng.integers(0, 2, n)], 1)
    return t, xyp


# ----------------------------------------------------------------------------- readers

def test_aedat_round_trip_skips_special_packets_and_adds_overflow(tmp_path):
    rng = np.random.default_rng(0)
    t1, e1 = random_events(rng, 40, 1000, 5000)
    t2, e2 = random_events(rng, 30, 6000, 9000)
    t3, e3 = random_events(rng, 20, 2**31 + 10, 2**31 + 500)  # eventTSOverflow = 1
    path = str(tmp_path / "user01_lab.aedat")
    write_aedat31(path, [polarity_packet(*e1.T, t1), special_packet(), polarity_packet(*e2.T, t2),
                         polarity_packet(*e3.T, t3)])
    t, xyp = read_aedat31(path)
    assert len(t) == 90
    np.testing.assert_array_equal(t, np.concatenate([t1, t2, t3]))
    np.testing.assert_array_equal(xyp, np.concatenate([e1, e2, e3]))
    assert t[-1] >= 2**31


def test_aedat_truncated_and_not_aedat(tmp_path):
    path = tmp_path / "user01_lab.aedat"
    write_aedat31(str(path), [polarity_packet([1, 2], [3, 4], [0, 1], [10, 20])])
    full = path.read_bytes()
    path.write_bytes(full[:-3])
    with pytest.raises(DataError, match="user01_lab.aedat: truncated"):
        read_aedat31(str(path))
    path.write_bytes(full[:-16 - 10])  # cut inside the packet header
    with pytest.raises(DataError, match="user01_lab.aedat: truncated packet header"):
        read_aedat31(str(path))
    path.write_bytes(b"hello")
    with pytest.raises(DataError, match="not an AEDAT"):
        read_aedat31(str(path))


def test_labels_and_clip_to_gestures(tmp_path):
    t = np.arange(100) * 10
    xyp = np.stack([t % 128, (t // 7) % 128, t % 2], 1)
    name = str(tmp_path / "user05_led")
    write_gesture_labels(name + "_labels.csv", [(3, 100, 250), (11, 500, 520)])
    labels = read_gesture_labels(name + "_labels.csv")
    np.testing.assert_array_equal(labels, [[3, 100, 250], [11, 500, 520]])
    assert labels.dtype == np.uint32
    tc, xc = clip_to_gestures(t, xyp, labels)
    np.testing.assert_array_equal(tc, list(range(100, 250, 10)) + [500, 510])
    np.testing.assert_array_equal(xc, xyp[tc // 10])
    write_aedat31(name + ".aedat", [polarity_packet(*xyp.T, t)])
    tr, xr, lr = load_gesture_recording(name + ".aedat")
    np.testing.assert_array_equal(tr, tc)
    np.testing.assert_array_equal(lr, labels)
    os.remove(name + "_labels.csv")
    with pytest.raises(DataError, match="missing label file .*user05_led_labels.csv"):
        load_gesture_recording(name + ".aedat")


def test_split_by_user_number(tmp_path):
    for name in ["user01_lab", "user23_led", "user24_natural", "user29_fluorescent_led", "user02_lab"]:
        (tmp_path / (name + ".aedat")).write_bytes(b"")
    (tmp_path / "trials_to_train.txt").write_text("")
    train, test = find_gesture_recordings(str(tmp_path))
    assert [os.path.basename(p) for p in train] == ["user01_lab.aedat", "user02_lab.aedat", "user23_led.aedat"]
    assert [os.path.basename(p) for p in test] == ["user24_natural.aedat", "user29_fluorescent_led.aedat"]
    with pytest.raises(DataError, match="(?s)DVS Gesture folder not found.*DvsGesture.tar.gz.*research.ibm.com"):
        find_gesture_recordings(str(tmp_path / "nope"))
    for p in test:
        os.remove(p)
    with pytest.raises(DataError, match="users 24-29"):
        find_gesture_recordings(str(tmp_path))


def test_nmnist_round_trip_and_truncation(tmp_path):
    rng = np.random.default_rng(1)
    n = 300
    x, y, p = rng.integers(0, 34, n), rng.integers(0, 34, n), rng.integers(0, 2, n)
    t = np.sort(rng.integers(0, 2**23, n))
    path = tmp_path / "00002.bin"
    write_nmnist_bin(str(path), x, y, p, t)
    tr, xyp = read_nmnist_bin(str(path))
    np.testing.assert_array_equal(tr, t)
    np.testing.assert_array_equal(xyp, np.stack([x, y, p], 1))
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(DataError, match="00002.bin: truncated"):
        read_nmnist_bin(str(path))


# ----------------------------------------------------------------------------- binning

# events (t, x, y, p); window start 5, dt 10, T 4, 4x4 sensor
HAND_EVENTS = [(3, 0, 0, 0), (7, 1, 2, 0), (8, 1, 2, 0), (17, 0, 0, 1), (26, 3, 3, 1),
               (27, 2, 1, 0), (36, 2, 1, 0), (40, 0, 3, 1), (46, 1, 1, 1)]


def frames_from(cells, shape=(2, 4, 4, 4)):
    out = np.zeros(shape, np.int64)
    for (p, x, y, f), c in cells.items():
        out[p, x, y, f] = c
    return out


def hand_events():
    ev = np.array(HAND_EVENTS)
    return ev[:, 0], ev[:, 1:]


def test_binning_original_by_hand():
    t, xyp = hand_events()
    fr = bin_events(t, xyp, 5, T=4, dt=10, ds=1, mode="original", sensor=4)
    assert fr.dtype == np.int8 and fr.shape == (2, 4, 4, 4)  # (pol, x, y, time)
    # t0 = 7: frame 0 empty, frame i = [7+10(i-1), 7+10i); [37, 47) is dropped, 40 and 46 are lost
    expected = {(0, 1, 2, 1): 2, (1, 0, 0, 2): 1, (1, 3, 3, 2): 1, (0, 2, 1, 3): 2}
    np.testing.assert_array_equal(fr, frames_from(expected))
    fr2 = bin_events(t, xyp, 5, T=4, dt=10, ds=2, mode="original", sensor=4)
    expected2 = {(0, 0, 1, 1): 2, (1, 0, 0, 2): 1, (1, 1, 1, 2): 1, (0, 1, 0, 3): 2}
    np.testing.assert_array_equal(fr2, frames_from(expected2, (2, 2, 2, 4)))


def test_binning_corrected_by_hand():
    t, xyp = hand_events()
    fr = bin_events(t, xyp, 5, T=4, dt=10, ds=1, mode="corrected", sensor=4)
    assert fr.dtype == np.int16
    expected = {(0, 1, 2, 0): 2, (1, 0, 0, 1): 1, (1, 3, 3, 1): 1, (0, 2, 1, 2): 2,
                (1, 0, 3, 3): 1, (1, 1, 1, 3): 1}
    np.testing.assert_array_equal(fr, frames_from(expected))


def test_binning_original_window_ends_at_start_plus_T_dt():
    # first event at 15 > start 0: frame 3 is [35, 45), but dcll cuts the events at 0 + 4*10 = 40
    t = np.array([15, 16, 38, 42])
    xyp = np.array([[0, 0, 0], [0, 0, 0], [1, 1, 1], [1, 1, 1]])
    fr = bin_events(t, xyp, 0, T=4, dt=10, mode="original", sensor=4)
    assert fr[0, 0, 0, 1] == 2 and fr[1, 1, 1, 3] == 1 and fr.sum() == 3  # 42 is lost
    fr = bin_events(t, xyp, 0, T=4, dt=10, mode="corrected", sensor=4)
    assert fr[0, 0, 0, 0] == 2 and fr[1, 1, 1, 2] == 2


def test_binning_int8_wrap_in_original_only():
    t = np.full(130, 100) + np.arange(130) % 5
    xyp = np.tile([2, 3, 1], (130, 1))
    assert bin_events(t, xyp, 100, T=3, dt=10, mode="original", sensor=4)[1, 2, 3, 1] == 130 - 256
    assert bin_events(t, xyp, 100, T=3, dt=10, mode="corrected", sensor=4)[1, 2, 3, 0] == 130
    assert not bin_events(t, xyp, 1000, T=3, dt=10, mode="original", sensor=4).any()  # empty window


def dcll_style_reference(t, xyp, start, T, dt, ds, S):
    """The original's steps, written out plainly: bisect the window, then add events frame by frame."""
    beg = np.searchsorted(t, start)
    end = beg + np.searchsorted(t[beg:], start + T * dt)
    t, xyp = t[beg:end], xyp[beg:end]
    out = np.zeros((T, 2, S, S), np.int8)
    lo = 0
    for i in range(T):
        hi = lo + np.searchsorted(t[lo:], t[0] + i * dt)
        e = xyp[lo:hi]
        np.add.at(out, (i, e[:, 2], e[:, 0] // ds, e[:, 1] // ds), np.int8(1))
        lo = hi
    return out.transpose(1, 2, 3, 0)


def test_binning_original_matches_plain_reference_on_dense_data():
    rng = np.random.default_rng(2)
    t, xyp = random_events(rng, 20000, 0, 200000, sensor=8)  # ~150 events per cell: wraps
    for start in (0, 12345, 150000):
        np.testing.assert_array_equal(bin_events(t, xyp, start, T=12, dt=10000, ds=2, sensor=8),
                                      dcll_style_reference(t, xyp, start, 12, 10000, 2, 4))


def test_binary_frames_by_hand():
    t = np.array([0, 100, 3000, 44999, 45000])
    xyp = np.array([[3, 5, 1], [3, 5, 1], [10, 20, 0], [1, 2, 1], [1, 1, 0]])
    fr = binary_frames(t, xyp, T=15, dt=3000)
    assert fr.dtype == np.uint8 and fr.shape == (2, 34, 34, 15)
    assert fr[1, 3, 5, 0] == 1 and fr[0, 10, 20, 1] == 1 and fr[1, 2 - 1, 2, 14] == 1
    assert fr.sum() == 3  # two events in one cell give 1; t = 45000 is past 15 x 3 ms


# ----------------------------------------------------------------------------- DVS Gesture end to end

TRAIN_NAMES = ["user01_fluorescent", "user01_lab", "user02_led", "user23_natural"]
TEST_NAMES = [f"user{u}_{l}" for u in ("24", "25") for l in
              ("fluorescent", "fluorescent_led", "lab", "led", "natural")] + ["user29_lab"]


def make_fake_gesture_folder(root):
    """4 train recordings (file j holds only class j+1) and 11 test ones (file k: classes k%11+1, (k+3)%11+1)."""
    folder = os.path.join(root, "DvsGesture")
    os.makedirs(folder)
    rng = np.random.default_rng(3)
    plan = [(n, [j + 1] * (2 + j % 2)) for j, n in enumerate(TRAIN_NAMES)] + \
           [(n, [k % 11 + 1, (k + 3) % 11 + 1]) for k, n in enumerate(TEST_NAMES)]
    for name, classes in plan:
        ts, es, rows = [], [], []
        for g, c in enumerate(classes):
            start = 1_000_000 + g * 500_000
            rows.append((c, start, start + 300_000))
            t, e = random_events(rng, 150, start - 50_000, start + 350_000)  # some outside the label
            ts.append(t), es.append(e)
        write_gesture_recording(folder, name, np.concatenate(ts), np.concatenate(es), rows)
    open(os.path.join(folder, "gesture_mapping.csv"), "w").close()
    return folder


@pytest.fixture(scope="module")
def gesture_hdf5(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("dvs"))
    make_fake_gesture_folder(root)
    proc = run_script("dvs-hdf5-gen.py", "--root", root)
    assert proc.returncode == 0, proc.stderr
    return root, os.path.join(root, "DvsGesture", "dvs_gestures_events.hdf5")


def test_hdf5_layout_and_split(gesture_hdf5):
    root, path = gesture_hdf5
    with h5py.File(path, "r") as f:
        assert len(f["train"]) == 4 and len(f["test"]) == 11 and "stats" in f
        for split, names in (("train", TRAIN_NAMES), ("test", TEST_NAMES)):
            for k, name in enumerate(names):
                g = f[split][str(k)]
                assert g.attrs["source"] == name + ".aedat"
                assert g["time"].dtype == np.uint32 and g["data"].dtype == np.uint8
                t, xyp, labels = load_gesture_recording(os.path.join(root, "DvsGesture", name + ".aedat"))
                np.testing.assert_array_equal(g["time"][()], t)
                np.testing.assert_array_equal(g["data"][()], xyp)
                np.testing.assert_array_equal(g["labels"][()], labels)
    assert [n for n in os.listdir(os.path.dirname(path)) if ".tmp-" in n] == []


def test_hdf5_gen_refuses_to_overwrite_without_force(gesture_hdf5):
    root, path = gesture_hdf5
    before = os.path.getmtime(path)
    proc = run_script("dvs-hdf5-gen.py", "--root", root)
    assert proc.returncode == 0 and "already exists" in proc.stdout
    assert os.path.getmtime(path) == before
    out = os.path.join(root, "forced.hdf5")
    shutil.copy(path, out)
    proc = run_script("dvs-hdf5-gen.py", "--root", root, "--out", out, "--force")
    assert proc.returncode == 0, proc.stderr
    assert os.path.getmtime(out) > os.path.getmtime(path) - 1e-9


def test_dvs_gesture_train_batches(gesture_hdf5):
    data = DVSGesture(gesture_hdf5[1], T=T, dt=DT, ds=DS)
    assert data.n_train_files == 4
    x, y = data.train_batch(4, np.random.RandomState(0))
    assert x.shape == (4, 2, 32, 32, T) and x.dtype == torch.float32
    assert y.shape == (4, 11) and torch.equal(y.sum(1), torch.ones(4))
    assert sorted(y.argmax(1).tolist()) == [0, 1, 2, 3]  # file j holds class j+1: distinct recordings
    # dcll's draw sequence: shuffle the recordings, then shuffle each picked recording's label rows
    rng = np.random.RandomState(7)
    files = np.arange(4)
    rng.shuffle(files)
    picks = []
    for r in files[:3]:
        rows = np.arange(2 + r % 2)
        rng.shuffle(rows)
        picks.append((r, rows[0]))
    x, y = data.train_batch(3, np.random.RandomState(7))
    assert y.argmax(1).tolist() == [r for r, _ in picks]
    with h5py.File(gesture_hdf5[1], "r") as f:
        for i, (r, g) in enumerate(picks):
            grp = f["train"][str(r)]
            start = int(grp["labels"][g, 1])
            ref = bin_events(grp["time"][()], grp["data"][()], start, T, DT, DS)
            assert torch.equal(x[i], torch.from_numpy(ref.astype(np.float32)))
    x2, _ = data.train_batch(3, np.random.RandomState(7))
    assert torch.equal(x, x2)
    with pytest.raises(DataError, match="batch_size 5 is larger than the 4 train recordings"):
        data.train_batch(5, np.random.RandomState(0))


def test_dvs_gesture_test_set_order_and_cache(gesture_hdf5):
    data = DVSGesture(gesture_hdf5[1], T=T, dt=DT, ds=DS)
    x, y = data.test_set()
    assert x.shape == (22, 2, 32, 32, T) and y.shape == (22, 11)
    order = sorted(str(k) for k in range(11))  # h5py's name order: "0", "1", "10", "2", ...
    expected = [c - 1 for k in map(int, order) for c in (k % 11 + 1, (k + 3) % 11 + 1)]
    assert y.argmax(1).tolist() == expected
    assert sum(len(b[1]) for b in data.test_batches(8)) == 22
    corrected = DVSGesture(gesture_hdf5[1], T=T, dt=DT, ds=DS, binning="corrected")
    assert corrected.frames.dtype == np.int16 and not torch.equal(corrected.test_set()[0], x)
    cached = DVSGesture(gesture_hdf5[1], T=T, dt=DT, ds=DS, cache=True)
    sha = hashlib.sha256(open(gesture_hdf5[1], "rb").read()).hexdigest()
    npy = gesture_hdf5[1][:-5] + f".original-T{T}-dt{DT}-ds{DS}.{sha[:16]}.npy"  # keyed on the file's content
    assert cached.sha256 == sha and os.path.isfile(npy) and torch.equal(cached.test_set()[0], x)
    again = DVSGesture(gesture_hdf5[1], T=T, dt=DT, ds=DS, cache=True)
    assert isinstance(again.frames, np.memmap) and torch.equal(again.test_set()[0], x)


def test_dvs_gesture_errors(gesture_hdf5, tmp_path):
    with pytest.raises(DataError, match="(?s)dvs-hdf5-gen.py.*research.ibm.com"):
        DVSGesture(str(tmp_path / "missing.hdf5"))
    proc = run_script("dvs-hdf5-gen.py", "--root", tmp_path)
    assert_clean_error(proc, os.path.join(str(tmp_path), "DvsGesture"), "DvsGesture.tar.gz",
                       "https://research.ibm.com/interactive/dvsgesture/")
    root = tmp_path / "broken"
    shutil.copytree(os.path.join(gesture_hdf5[0], "DvsGesture"), root / "DvsGesture",
                    ignore=shutil.ignore_patterns("*.hdf5", "*.npy"))
    os.remove(root / "DvsGesture" / "user24_lab_labels.csv")
    assert_clean_error(run_script("dvs-hdf5-gen.py", "--root", root), "user24_lab_labels.csv")
    write_gesture_labels(str(root / "DvsGesture" / "user24_lab_labels.csv"), [(1, 0, 10)])
    aedat = root / "DvsGesture" / "user02_led.aedat"
    aedat.write_bytes(aedat.read_bytes()[:-7])
    assert_clean_error(run_script("dvs-hdf5-gen.py", "--root", root), "user02_led.aedat", "truncated")
    assert not [n for n in os.listdir(root / "DvsGesture") if n.endswith(".hdf5") or ".tmp-" in n]


# ----------------------------------------------------------------------------- N-MNIST end to end

def make_fake_nmnist(root, n_train=2, n_test=1):
    """Sample j of digit d: a pixel (d, j) firing ON at t = 0 and OFF at t = 3000 + d (frame 1)."""
    for split, n in (("Train", n_train), ("Test", n_test)):
        for d in range(10):
            folder = os.path.join(root, "N-MNIST", split, str(d))
            os.makedirs(folder)
            for j in range(n):
                write_nmnist_bin(os.path.join(folder, f"{j + 1:05d}.bin"),
                                 [d, d, 33], [j, j, 33], [1, 0, 1], [0, 3000 + d, 90000])


def test_nmnist_gen_from_raw_and_frames(tmp_path):
    make_fake_nmnist(str(tmp_path))
    proc = run_script("nmnist-dataset-gen.py", "3", "--root", tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "N-MNIST" / "processed" / "3ms"
    images = np.load(out / "nhtrain_image.npy")
    labels = np.load(out / "nhtrain_label.npy")
    assert images.shape == (20, 2, 34, 34, 15) and images.dtype == np.uint8
    assert labels.dtype == np.float32 and labels.argmax(1).tolist() == [d for d in range(10) for _ in range(2)]
    for i in range(20):
        d, j = divmod(i, 2)
        expected = np.zeros((2, 34, 34, 15), np.uint8)
        expected[1, d, j, 0] = expected[0, d, j, 1] = 1
        np.testing.assert_array_equal(images[i], expected)
    assert np.load(out / "nrtest_image.npy").shape == (10, 2, 34, 34, 15)
    assert sorted(os.listdir(out.parent)) == ["3ms"]
    proc = run_script("nmnist-dataset-gen.py", "3", "--root", tmp_path)
    assert proc.returncode == 0 and "nothing to do" in proc.stdout

    train = NMNISTFrames(str(out.parent), dt=3, train=True, nwin=10, multiple=8)
    assert len(train) == 16
    x, y = train[3]
    assert x.shape == (2, 34, 34, 10) and x.dtype == torch.float32 and y.shape == (10,) and y[1] == 1
    xb, yb = next(iter(torch.utils.data.DataLoader(train, batch_size=4)))
    assert xb.shape == (4, 2, 34, 34, 10) and yb.shape == (4, 10)
    assert len(NMNISTFrames(str(out.parent), dt=3, train=False, nwin=15, multiple=5)) == 10
    with pytest.raises(DataError, match="fewer than multiple=100"):
        NMNISTFrames(str(out.parent), dt=3)
    with pytest.raises(DataError, match="nwin=16"):
        NMNISTFrames(str(out.parent), dt=3, nwin=16, multiple=1)
    with pytest.raises(DataError, match=r"(?s)5ms.nhtrain_image.npy.*nmnist-dataset-gen.py 5"):
        NMNISTFrames(str(out.parent), dt=5)


def test_nmnist_gen_from_authors_mat_files(tmp_path):
    rng = np.random.default_rng(4)
    base = tmp_path / "N-MNIST"
    base.mkdir()
    data = {}
    for split, n in (("train", 6), ("test", 4)):
        image = rng.integers(0, 2, (n, 34, 34, 2, 20)).astype(np.float32)
        label = np.eye(10)[rng.integers(0, 10, n)]
        data[split] = image, label
        path = str(base / f"NMNIST_{split}_data_3ms.mat")
        if split == "train":  # MATLAB v7.3 (HDF5): stored with the axes reversed
            with h5py.File(path, "w") as f:
                f["image"], f["label"] = image.T, label.T
        else:
            scipy.io.savemat(path, {"image": image, "label": label})
    proc = run_script("nmnist-dataset-gen.py", "--root", tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = base / "processed" / "3ms"
    for split, prefix in (("train", "nhtrain"), ("test", "nrtest")):
        image, label = data[split]
        np.testing.assert_array_equal(np.load(out / f"{prefix}_image.npy"), image.transpose(0, 3, 1, 2, 4))
        np.testing.assert_array_equal(np.load(out / f"{prefix}_label.npy"), label)


def test_nmnist_gen_errors(tmp_path):
    proc = run_script("nmnist-dataset-gen.py", "--root", tmp_path)
    assert_clean_error(proc, os.path.join(str(tmp_path), "N-MNIST", "Train"), "Train.zip",
                       "https://www.garrickorchard.com/datasets/n-mnist")
    make_fake_nmnist(str(tmp_path))
    bad = tmp_path / "N-MNIST" / "Test" / "7" / "00001.bin"
    bad.write_bytes(bad.read_bytes()[:-1])
    assert_clean_error(run_script("nmnist-dataset-gen.py", "--root", tmp_path), "00001.bin", "truncated")
    assert not (tmp_path / "N-MNIST" / "processed" / "3ms").exists()
    assert os.listdir(tmp_path / "N-MNIST" / "processed") == []
    assert_clean_error(run_script("nmnist-dataset-gen.py", "--root", tmp_path, "--source", "mat"),
                       "NMNIST_train_data_3ms.mat")
