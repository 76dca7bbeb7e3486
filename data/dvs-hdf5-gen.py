"""Convert IBM's DVS128 Gesture release into the one HDF5 file the DVS experiment reads.

Input, as extracted from DvsGesture.tar.gz: <root>/DvsGesture/userNN_<lighting>.aedat + _labels.csv.
Output (dcll's layout), for <split> in train (users 01-23) and test (users 24-29), recordings k = 0, 1, ...
in file-name order:
  /<split>/<k>/time    uint32 (N,)    event time, us (uint64 only if a time does not fit)
  /<split>/<k>/data    uint8  (N, 3)  x, y, polarity
  /<split>/<k>/labels  uint32 (n, 3)  class 1..11, start us, end us
  /stats               train class frequencies (as dcll; unused)
Only the events inside labelled gestures are kept. The file is written under a temporary name and
renamed when complete, so parallel jobs never see half a file. Run once before launching jobs:
    python data/dvs-hdf5-gen.py [--root data] [--out data/DvsGesture/dvs_gestures_events.hdf5] [--force]
"""
import argparse
import os
import sys
from collections import Counter

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # the kit
try:
    import h5py
    from common.data.events import (DVS_GESTURE_URL, DVS_SENSOR, DataError, find_gesture_recordings,
                                    load_gesture_recording)
    from common.fileio import disk_full
except ImportError as e:
    sys.exit(f"error: {e}. Install the requirements first: pip install -r requirements.txt")

HERE = os.path.dirname(os.path.abspath(__file__))


def is_complete(path):
    try:
        with h5py.File(path, "r") as f:
            return "train" in f and "test" in f and "stats" in f
    except OSError:
        return False


def write_split(f, split, paths):
    grp = f.create_group(split)
    classes = []
    for k, path in enumerate(paths):
        t, xyp, labels = load_gesture_recording(path)
        if not len(t):
            raise DataError(f"{path}: no events inside its labelled gestures (an empty or cut recording); "
                            f"re-extract it from DvsGesture.tar.gz ({DVS_GESTURE_URL}).")
        if xyp[:, :2].max() >= DVS_SENSOR:
            raise DataError(f"{path}: event coordinates up to {xyp[:, :2].max()}, outside the 128x128 sensor.")
        sub = grp.create_group(str(k))
        sub.attrs["source"] = os.path.basename(path)
        fits = t.max() <= np.iinfo(np.uint32).max
        sub.create_dataset("time", data=t.astype(np.uint32 if fits else np.uint64))
        sub.create_dataset("data", data=xyp.astype(np.uint8).reshape(-1, 3))
        sub.create_dataset("labels", data=labels)
        classes += labels[:, 0].tolist()
        print(f"{split} {k + 1:3d}/{len(paths)} {os.path.basename(path)}: "
              f"{len(t)} events in {len(labels)} gestures", flush=True)
    return classes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=HERE, help="folder holding the extracted DvsGesture/ folder (default: data/)")
    parser.add_argument("--out", default=None,
                        help="output file (default: <root>/DvsGesture/dvs_gestures_events.hdf5)")
    parser.add_argument("--force", action="store_true", help="rebuild even if a complete output file exists")
    args = parser.parse_args()
    folder = os.path.join(args.root, "DvsGesture")
    out = args.out or os.path.join(folder, "dvs_gestures_events.hdf5")

    if os.path.exists(out) and is_complete(out) and not args.force:
        print(f"{out} already exists and is complete; nothing to do (use --force to rebuild it).")
        return
    train, test = find_gesture_recordings(folder)
    for p in train + test:  # check every label file before the long conversion
        if not os.path.isfile(p[:-len(".aedat")] + "_labels.csv"):
            raise DataError(f"missing label file {p[:-len('.aedat')]}_labels.csv for {p}: extract the whole "
                            "DvsGesture.tar.gz (each .aedat comes with its _labels.csv).")
    print(f"{len(train)} train recordings (users 01-23), {len(test)} test recordings (users 24-29)")

    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = f"{out}.tmp-{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as f:
            classes = write_split(f, "train", train)
            write_split(f, "test", test)
            counts = np.array(list(Counter(classes).values()), dtype=np.float64)
            f.create_dataset("stats", data=counts / counts.sum())
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    print(f"wrote {out}")


if __name__ == "__main__":
    try:
        main()
    except DataError as e:  # a user's input problem: one line and exit code 2, as the experiment scripts
        print("error: " + " ".join(str(e).splitlines()), file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        if not disk_full(e):
            raise
        print("error: the disk is full while writing the HDF5 file; nothing was written (the temporary file is "
              "removed): free some space and run this again", file=sys.stderr)
        sys.exit(2)
