"""Turn N-MNIST into the frame files the N-MNIST experiment reads.

Output, in <out>/<dt>ms/ (default data/N-MNIST/processed/3ms/):
  nhtrain_image.npy (N, 2, 34, 34, T)   nhtrain_label.npy (N, 10) float32 one-hot   (train, 60000)
  nrtest_image.npy  (N, 2, 34, 34, T)   nrtest_label.npy  (N, 10) float32 one-hot   (test, 10000)
  source.json       the SHA-256 of every input file read and of the four outputs: the experiment refuses
                    frame files that are not the ones written here and notes the inputs in its data digest
Image axes are (polarity OFF/ON, x, y, time).

Sources (--source auto picks the .mat files when both are there, else the raw release):
  raw  the official release extracted as <root>/N-MNIST/Train/<digit>/*.bin and Test/<digit>/*.bin.
       Frames are BINARY spike frames (uint8 0/1, as in the STBP preprocessing the authors used):
       frame i is 1 where a pixel fired in [i*dt, (i+1)*dt) ms, from t = 0 of each recording, for
       --steps frames (15 x 3 ms = the first 45 ms). Samples are ordered by digit, then file name.
  mat  the authors' NMNIST_train_data_<dt>ms.mat and NMNIST_test_data_<dt>ms.mat in <root>/N-MNIST/
       (image (N, 34, 34, 2, T), label (N, 10); MATLAB v7.3 files are read with h5py and transposed,
       older ones with scipy.io.loadmat), permuted to (N, 2, 34, 34, T), image dtype kept.
The folder is built under a temporary name and renamed when complete.
    python data/nmnist-dataset-gen.py [dt] [--root data] [--out data/N-MNIST/processed] [--force]
"""
import argparse
import hashlib
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # the kit
try:
    from common.data.events import NMNIST_URL, SOURCE_FILE, DataError, binary_frames, read_nmnist_bin
    from common.datadigest import file_sha256
    from common.fileio import disk_full
except ImportError as e:
    sys.exit(f"error: {e}. Install the requirements first: pip install -r requirements.txt")

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUTS = ("nhtrain_image.npy", "nhtrain_label.npy", "nrtest_image.npy", "nrtest_label.npy")


def list_samples(folder):
    """[(path, digit)] of <folder>/<digit>/*.bin, by digit then file name."""
    if not os.path.isdir(folder):
        raise DataError(f"N-MNIST folder not found: {folder}. "
                        f"Download Train.zip and Test.zip from {NMNIST_URL} and unzip them into "
                        f"{os.path.dirname(folder)} so that files like {os.path.join(folder, '0', '00002.bin')} exist "
                        "(or put the authors' NMNIST_{train,test}_data_<dt>ms.mat files there).")
    samples = []
    for digit in range(10):
        sub = os.path.join(folder, str(digit))
        if not os.path.isdir(sub):
            raise DataError(f"missing digit folder {sub}: the N-MNIST zip files were not fully extracted.")
        samples += [(os.path.join(sub, n), digit) for n in sorted(os.listdir(sub)) if n.endswith(".bin")]
    if not samples:
        raise DataError(f"{folder} holds no .bin recordings in its digit folders: the N-MNIST zip files were not "
                        f"extracted there ({NMNIST_URL}).")
    return samples


def check_space(dest, nbytes):
    """Refuse before writing when the disk cannot hold nbytes more (a memory-mapped write to a full disk
    ends in a bus error, not a message)."""
    free = shutil.disk_usage(dest).free
    if free < nbytes:
        raise DataError(f"{dest}: {nbytes / 1e9:.2f} GB of frames to write but {free / 1e9:.2f} GB free on that "
                        "disk; free some space (or pass --out on another disk) and run this again.")


def convert_raw(folder, prefix, dest, dt_ms, steps, sources):
    samples = list_samples(folder)
    check_space(dest, len(samples) * 2 * 34 * 34 * steps)
    images = np.lib.format.open_memmap(os.path.join(dest, f"{prefix}_image.npy"), mode="w+",
                                       dtype=np.uint8, shape=(len(samples), 2, 34, 34, steps))
    for i, (path, digit) in enumerate(samples):
        if os.path.getsize(path) == 0:
            raise DataError(f"{path}: empty recording (0 bytes); re-extract it from the N-MNIST release ({NMNIST_URL}).")
        sources.update(f"{prefix} {digit} {os.path.basename(path)} {file_sha256(path)}\n".encode())
        t, xyp = read_nmnist_bin(path)
        try:
            images[i] = binary_frames(t, xyp, steps, dt_ms * 1000)
        except DataError as e:
            raise DataError(f"{path}: {e}") from None
        if (i + 1) % 10000 == 0:
            print(f"{prefix}: {i + 1}/{len(samples)}", flush=True)
    images.flush()
    del images
    labels = np.eye(10, dtype=np.float32)[[d for _, d in samples]]
    np.save(os.path.join(dest, f"{prefix}_label.npy"), labels)
    print(f"{prefix}: {len(samples)} samples from {folder}")


def load_mat(path):
    """image (N, 34, 34, 2, T), label (N, 10) of one of the authors' .mat files."""
    import h5py
    import scipy.io
    try:
        if h5py.is_hdf5(path):  # MATLAB v7.3 is HDF5, and h5py sees MATLAB's axes reversed
            with h5py.File(path, "r") as f:
                image, label = np.transpose(f["image"][()]), np.transpose(f["label"][()])
        else:
            m = scipy.io.loadmat(path)
            image, label = m["image"], m["label"]
    except KeyError as e:
        raise DataError(f"{path}: no variable {e} (expected 'image' and 'label').") from None
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: unreadable .mat file ({e}).") from None
    if image.ndim != 5 or image.shape[1:4] != (34, 34, 2) or label.shape != (len(image), 10):
        raise DataError(f"{path}: expected image (N, 34, 34, 2, T) and label (N, 10), "
                        f"got {image.shape} and {label.shape}.")
    return image, label


def convert_mat(path, prefix, dest, sources):
    sources.update(f"{prefix} {os.path.basename(path)} {file_sha256(path)}\n".encode())
    image, label = load_mat(path)
    np.save(os.path.join(dest, f"{prefix}_image.npy"), np.ascontiguousarray(image.transpose(0, 3, 1, 2, 4)))
    np.save(os.path.join(dest, f"{prefix}_label.npy"), label.astype(np.float32))
    print(f"{prefix}: {len(image)} samples, {image.shape[4]} steps, from {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dt", nargs="?", type=int, default=3, help="frame length in ms (default 3)")
    parser.add_argument("--steps", type=int, default=15, help="frames per sample from the raw release (default 15)")
    parser.add_argument("--root", default=HERE, help="folder holding N-MNIST/ (default: data/)")
    parser.add_argument("--out", default=None, help="output root (default: <root>/N-MNIST/processed)")
    parser.add_argument("--source", choices=("auto", "raw", "mat"), default="auto")
    parser.add_argument("--force", action="store_true", help="rebuild even if the output folder is complete")
    args = parser.parse_args()
    if args.dt < 1 or args.steps < 1:
        parser.error(f"dt and --steps must be at least 1 (got {args.dt} and {args.steps})")
    base = os.path.join(args.root, "N-MNIST")
    final = os.path.join(args.out or os.path.join(base, "processed"), f"{args.dt}ms")

    if all(os.path.isfile(os.path.join(final, n)) for n in OUTPUTS) and not args.force:
        print(f"{final} already holds {', '.join(OUTPUTS)}; nothing to do (use --force to rebuild).")
        return
    mats = [os.path.join(base, f"NMNIST_{s}_data_{args.dt}ms.mat") for s in ("train", "test")]
    source = args.source
    if source == "auto":
        source = "mat" if all(map(os.path.isfile, mats)) else "raw"
    if source == "mat":
        for m in mats:
            if not os.path.isfile(m):
                raise DataError(f"missing {m}: the authors' .mat files are not distributed; "
                                f"use --source raw with the N-MNIST release ({NMNIST_URL}).")

    parent = os.path.dirname(os.path.abspath(final))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(final)}.tmp-{os.getpid()}")
    old = tmp.replace(".tmp-", ".old-")
    os.makedirs(tmp)
    sources = hashlib.sha256()  # every input file's name and SHA-256, in the order read
    try:
        if source == "mat":
            convert_mat(mats[0], "nhtrain", tmp, sources)
            convert_mat(mats[1], "nrtest", tmp, sources)
        else:
            convert_raw(os.path.join(base, "Train"), "nhtrain", tmp, args.dt, args.steps, sources)
            convert_raw(os.path.join(base, "Test"), "nrtest", tmp, args.dt, args.steps, sources)
        with open(os.path.join(tmp, SOURCE_FILE), "w") as f:  # binds the frames to what they were made from
            json.dump({"made_by": "data/nmnist-dataset-gen.py", "source": source, "dt_ms": args.dt,
                       "steps": args.steps if source == "raw" else None, "recordings_sha256": sources.hexdigest(),
                       "files": {n: file_sha256(os.path.join(tmp, n)) for n in OUTPUTS}}, f, indent=1)
        if os.path.exists(final):
            os.rename(final, old)
        os.rename(tmp, final)
    finally:
        for d in (tmp, old):
            if os.path.exists(d):
                shutil.rmtree(d)
    print(f"wrote {final}")


if __name__ == "__main__":
    try:
        main()
    except DataError as e:  # a user's input problem: one line and exit code 2, as the experiment scripts
        print("error: " + " ".join(str(e).splitlines()), file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        if not disk_full(e):
            raise
        print(f"error: {e.filename or 'the frames'}: the disk is full; nothing was written, free some space and "
              "run this again", file=sys.stderr)
        sys.exit(2)
