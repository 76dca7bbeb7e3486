"""Writers for MNIST's IDX files, to build tiny fake MNIST folders in tests (test-only code).

Written from the format's description (big-endian magic 0x0000 <type> <ndim>, then ndim uint32 sizes,
then the data), independently of common/data/smnist.py, so that the reader is tested against the format.
"""
import gzip
import os
import struct

import numpy as np

NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def idx_bytes(array):
    array = np.asarray(array, dtype=np.uint8)
    return struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape) + array.tobytes()


def write_idx_file(path, array, gz=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = idx_bytes(array)
    if gz:
        with gzip.open(path + ".gz", "wb") as f:
            f.write(data)
    else:
        with open(path, "wb") as f:
            f.write(data)


def fake_digits(n, seed):
    """n 28x28 uint8 images whose class is easy to see: digit d lights up row band d, plus noise."""
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, 10, n).astype(np.uint8)
    images = rng.randint(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, d in enumerate(labels):
        images[i, 2 + 2 * d: 4 + 2 * d, 4:24] = 255
    return images, labels


def write_fake_mnist(root, n_train=300, n_test=100, seed=0, gz=False):
    """<root>/MNIST/raw/ with the four IDX files of a tiny fake MNIST; returns root."""
    raw = os.path.join(root, "MNIST", "raw")
    for split, n, s in (("train", n_train, seed), ("test", n_test, seed + 1)):
        images, labels = fake_digits(n, s)
        write_idx_file(os.path.join(raw, NAMES[split][0]), images, gz)
        write_idx_file(os.path.join(raw, NAMES[split][1]), labels, gz)
    return root
