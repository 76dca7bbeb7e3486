"""Training data for the conv experiments: DVS Gesture (from the HDF5 file of data/dvs-hdf5-gen.py)
and N-MNIST (from the .npy frames of data/nmnist-dataset-gen.py).

Both hand out float tensors in the networks' layout, time last:
DVS Gesture (B, 2, 128/ds, 128/ds, T) with one-hot targets (B, 11); N-MNIST (B, 2, 34, 34, T)
with one-hot targets (B, 10).
"""
import glob
import json
import os
import re

import h5py
import numpy as np
import torch

from common import datadigest
from common.data.events import (DVS_GESTURE_URL, DVS_SENSOR, N_GESTURES, NMNIST_URL, SOURCE_FILE, DataError,
                                bin_events)
from common.fileio import write_atomic

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_DVS_HDF5 = os.path.join(REPO, "data", "DvsGesture", "dvs_gestures_events.hdf5")
DEFAULT_NMNIST_ROOT = os.path.join(REPO, "data", "N-MNIST", "processed")


def one_hot(classes, n):
    out = torch.zeros(len(classes), n)
    out[torch.arange(len(classes)), torch.as_tensor(classes, dtype=torch.long)] = 1
    return out


class DVSGesture:
    """DVS128 Gesture as the HSTNN code saw it through dcll, binned once per process.

    Every labelled gesture of every recording is binned once, at its start (window of T*dt us),
    and kept in memory; with cache=True the frames are also saved beside the HDF5 file, keyed by
    (binning, T, dt, ds) and by the SHA-256 of the HDF5 file's bytes, and memory-mapped by later processes.
      train_batch(batch_size, rng): dcll's training draw. rng.shuffle the recording indices, take the
          first batch_size (distinct recordings), then for each one rng.shuffle its label rows and take
          the first gesture. rng is a numpy RandomState/Generator (or np.random for dcll's global one).
      test_set(): every labelled gesture of every test recording, recordings in h5py's name order
          ("0", "1", "10", ...), gestures in file order: 288 samples on the IBM release.

    The content key: the whole file is hashed on every construction, cache or not, and is also this
    dataset's part of the run's data digest (common.datadigest). Keying on size, modification time and
    a digest of the header and every label dataset would cost milliseconds, but a file with the same
    labels and size and other events (another build, a re-recorded or corrected recording, a `cp -p` of
    such a file) would be trusted and trained on the old frames. Measured on a 2-core CPU with SHA
    extensions, 200 MB read from the page cache: the whole file hashed at 650 MB/s idle, 370 MB/s under
    load (a synthetic file of 122 recordings; that key 80-100 ms). A DVS Gesture file of about 4 GB thus
    costs 6-11 s a run (extrapolated), small beside the binning it saves (minutes) and the training.
    """

    def __init__(self, path=DEFAULT_DVS_HDF5, T=60, dt=20000, ds=4, binning="original", cache=False):
        if not os.path.isfile(path):
            raise DataError(f"DVS Gesture HDF5 file not found: {path}. "
                            "Create it once with `python data/dvs-hdf5-gen.py` after extracting IBM's "
                            f"DvsGesture.tar.gz ({DVS_GESTURE_URL}) into data/ (see docs/data.md).")
        if DVS_SENSOR % ds:
            raise ValueError(f"ds must divide {DVS_SENSOR}, got {ds}")
        self.path, self.T, self.dt, self.ds, self.binning = path, T, dt, ds, binning
        self.size = DVS_SENSOR // ds
        rebuild = "rebuild it with `python data/dvs-hdf5-gen.py --force`."
        try:
            self.sha256 = datadigest.note_file(f"DVS Gesture {os.path.basename(path)} (the file's bytes)", path)
            with h5py.File(path, "r") as f:
                train_keys = [str(k) for k in range(len(f["train"]))]  # dcll indexes train by number
                test_keys = list(f["test"])                             # and iterates test by name
                for split, keys in (("train", train_keys), ("test", test_keys)):
                    if not keys:
                        raise DataError(f"{path}: the {split} group holds no recording; {rebuild}")
                labels = [f["train"][k]["labels"][()] for k in train_keys] + \
                         [f["test"][k]["labels"][()] for k in test_keys]
                groups = [f"train/{k}" for k in train_keys] + [f"test/{k}" for k in test_keys]
                for group, rows in zip(groups, labels):
                    if rows.ndim != 2 or rows.shape[1] != 3 or rows.dtype.kind not in "iu":
                        raise DataError(f"{path}: {group}/labels holds {rows.dtype} {rows.shape}, not integer rows "
                                        f"(class, start, end); {rebuild}")
                    if len(rows) == 0 or len(f[group]["time"]) == 0:
                        raise DataError(f"{path}: recording {group} holds no "
                                        f"{'gesture' if len(rows) == 0 else 'event'}; {rebuild}")
                    if rows[:, 0].min() < 1 or rows[:, 0].max() > N_GESTURES:
                        raise DataError(f"{path}: {group}/labels holds class ids outside 1..{N_GESTURES}; {rebuild}")
                frames = self._load_cache(sum(map(len, labels))) if cache else None
                if frames is None:
                    frames = self._bin_all(f, train_keys, test_keys, labels)
                    if cache:
                        self._save_cache(frames)
        except (OSError, KeyError, IndexError, TypeError) as e:
            raise DataError(f"{path}: unreadable or not made by data/dvs-hdf5-gen.py ({e}); "
                            "rebuild it with `python data/dvs-hdf5-gen.py --force`.") from None
        self.frames = frames  # (all gestures, 2, S, S, T): train recordings first, then test
        counts = [len(l) for l in labels]
        self.starts = np.cumsum([0] + counts)  # recording r owns frames[starts[r]:starts[r+1]]
        self.classes = np.concatenate([l[:, 0] for l in labels]).astype(np.int64) - 1
        self.n_train_files = len(train_keys)
        self.n_test = sum(counts[self.n_train_files:])
        self._test = None

    def _bin_all(self, f, train_keys, test_keys, labels):
        groups = [f["train"][k] for k in train_keys] + [f["test"][k] for k in test_keys]
        out = []
        for grp, rows in zip(groups, labels):
            t = grp["time"][()]
            for _, start, _ in rows:
                out.append(bin_events(t, grp["data"], int(start), self.T, self.dt, self.ds, self.binning))
        return np.stack(out)

    def _cache_path(self, key=None):
        """<stem>.<binning>-T<T>-dt<dt>-ds<ds>.<first 16 hex digits of the HDF5 file's SHA-256>.npy"""
        stem = os.path.splitext(self.path)[0]
        return f"{stem}.{self.binning}-T{self.T}-dt{self.dt}-ds{self.ds}.{key or self.sha256[:16]}.npy"

    def _load_cache(self, n):
        p = self._cache_path()
        if not os.path.isfile(p):
            return None
        try:
            frames = np.load(p, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError):  # a damaged cache of frames is rebuilt
            return None
        return frames if frames.shape == (n, 2, self.size, self.size, self.T) else None

    def _save_cache(self, frames):
        """Write the frames of this content; the caches of earlier contents of the same file go, and the kit's
        first, unkeyed cache of these settings (<stem>.<binning>-T<T>-dt<dt>-ds<ds>.npy)."""
        p = self._cache_path()
        write_atomic(p, lambda fh: np.save(fh, frames))
        prefix = p[:-len("0123456789abcdef.npy")]
        stale = [q for q in glob.glob(glob.escape(prefix) + "*.npy") if re.fullmatch(r"[0-9a-f]{16}\.npy", q[len(prefix):])]
        for q in stale + [prefix[:-1] + ".npy"]:
            if q != p and os.path.isfile(q):
                os.remove(q)

    def _tensors(self, idx):
        x = torch.from_numpy(np.asarray(self.frames[idx], dtype=np.float32))
        return x, one_hot(self.classes[idx], N_GESTURES)

    def train_batch(self, batch_size, rng):
        """(inputs (B, 2, S, S, T), one-hot targets (B, 11)) from B distinct train recordings."""
        if batch_size > self.n_train_files:
            raise DataError(f"batch_size {batch_size} is larger than the {self.n_train_files} train recordings: "
                            "a DVS Gesture batch draws distinct recordings, as dcll does.")
        files = np.arange(self.n_train_files)
        rng.shuffle(files)
        idx = []
        for r in files[:batch_size]:
            rows = np.arange(self.starts[r + 1] - self.starts[r])
            rng.shuffle(rows)
            idx.append(self.starts[r] + rows[0])
        return self._tensors(np.array(idx))

    def test_set(self):
        """(inputs (N, 2, S, S, T), one-hot targets (N, 11)) of every test gesture, built once."""
        if self._test is None:
            self._test = self._tensors(np.arange(self.starts[self.n_train_files], len(self.classes)))
        return self._test

    def test_batches(self, batch_size):
        """The test set in order, in slices of batch_size (the last one may be shorter)."""
        x, y = self.test_set()
        for i in range(0, len(y), batch_size):
            yield x[i:i + batch_size], y[i:i + batch_size]


class NMNISTFrames(torch.utils.data.Dataset):
    """N-MNIST frames written by data/nmnist-dataset-gen.py: <root>/<dt>ms/nhtrain_*.npy (train)
    or nrtest_*.npy (test). Keeps the first nwin time steps and the first floor(N/multiple)*multiple
    samples (the original drops the rest). Items are (float image (2, 34, 34, nwin), float one-hot (10,)).
    The images stay memory-mapped in their stored dtype; `images`/`labels` hold all of them."""

    def __init__(self, root=DEFAULT_NMNIST_ROOT, dt=3, train=True, nwin=15, multiple=100):
        folder = os.path.join(root, f"{dt}ms")
        prefix = "nhtrain" if train else "nrtest"
        paths = [os.path.join(folder, f"{prefix}_{k}.npy") for k in ("image", "label")]
        for p in paths:
            if not os.path.isfile(p):
                raise DataError(f"N-MNIST frames not found: {p}. "
                                f"Create them with `python data/nmnist-dataset-gen.py {dt}` from the N-MNIST "
                                f"release ({NMNIST_URL}, Train.zip and Test.zip; see docs/data.md).")
        images = load_npy(paths[0], dt, mmap_mode="r")
        labels = load_npy(paths[1], dt)
        bind_to_source(folder, paths, dt)
        if images.ndim != 5 or images.shape[1:4] != (2, 34, 34):
            raise DataError(f"{paths[0]}: expected frames of shape (N, 2, 34, 34, T), got {images.shape}.")
        if labels.shape != (len(images), 10):
            raise DataError(f"{paths[1]}: expected one-hot labels of shape ({len(images)}, 10) for the "
                            f"{len(images)} samples of {prefix}_image.npy, got {labels.shape}.")
        for path, array in zip(paths, (images, labels)):
            if array.dtype.kind not in "biuf":
                raise DataError(f"{path}: expected numbers, got dtype {array.dtype}.")
        labels = labels.astype(np.float32)
        if images.shape[4] < nwin:
            raise DataError(f"{paths[0]} has {images.shape[4]} time steps, fewer than nwin={nwin}.")
        n = len(images) // multiple * multiple
        if n == 0:
            raise DataError(f"{paths[0]} has {len(images)} samples, fewer than multiple={multiple}.")
        self.images, self.labels = images[:n, ..., :nwin], torch.from_numpy(labels[:n])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return torch.tensor(self.images[i], dtype=torch.float32), self.labels[i]


def bind_to_source(folder, paths, dt):
    """Note the bytes of the frame files in the data digest and, where data/nmnist-dataset-gen.py left its
    source.json beside them, check that they are the files it wrote and note the recordings it read
    (a frame file replaced or edited since is refused: its frames are not those of the recordings)."""
    sums = {os.path.basename(p): datadigest.note_file(f"N-MNIST {dt}ms/{os.path.basename(p)} (the file's bytes)", p)
            for p in paths}
    manifest = os.path.join(folder, SOURCE_FILE)
    if not os.path.isfile(manifest):
        return
    try:
        with open(manifest) as f:
            source = json.load(f)
        wrote, recordings = source["files"], source["recordings_sha256"]
        if not isinstance(wrote, dict):
            raise TypeError("files is not a table")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{manifest}: unreadable ({type(e).__name__}); rebuild the frames with "
                        f"`python data/nmnist-dataset-gen.py {dt} --force`.") from None
    for name, sha in sums.items():
        if wrote.get(name) != sha:
            raise DataError(f"{os.path.join(folder, name)} is not the file data/nmnist-dataset-gen.py wrote (its "
                            f"SHA-256 differs from {SOURCE_FILE}); rebuild the frames with "
                            f"`python data/nmnist-dataset-gen.py {dt} --force`.")
    datadigest.note(f"N-MNIST {dt}ms recordings the frames were made from ({SOURCE_FILE})", recordings)


def load_npy(path, dt, mmap_mode=None):
    """np.load without pickles; an unreadable file is a DataError naming it."""
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: unreadable .npy file ({e}); rebuild it with "
                        f"`python data/nmnist-dataset-gen.py {dt} --force`.") from None
