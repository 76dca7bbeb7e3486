"""Prepare MNIST once for the sequential-MNIST experiments, so that parallel jobs never race on a download.

    python data/smnist-dataset-gen.py [--root data]

Puts the four IDX files of the MNIST release in <root>/MNIST/raw/ (torchvision's layout), downloading
them with torchvision.datasets.MNIST unless they are already there, then reads them back and reports
what they hold. The experiment scripts read that folder with --data <root> (default ../../data from
an experiment folder, i.e. this data/ folder) and never download anything.

Offline, the download fails; the script then says where to put the files by hand:
train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte,
gzipped (.gz, as released) or unpacked.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from common.data.smnist import FILES, MNIST_URL, find_file, load_split  # noqa: E402
from common.training import KitError, run_main  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FULL = {"train": 60000, "test": 10000}


def download(root):
    """torchvision's MNIST download into <root>/MNIST/raw; it does nothing when the files are there."""
    import torchvision
    for train in (True, False):
        torchvision.datasets.MNIST(root=root, train=train, download=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=HERE, help="folder that receives MNIST/raw/ (default: this data/ folder)")
    args = p.parse_args()
    raw = os.path.join(args.root, "MNIST", "raw")
    names = FILES["train"] + FILES["test"]
    if not all(find_file(raw, n) for n in names):
        print(f"downloading MNIST with torchvision into {raw} ...", flush=True)
        try:
            download(args.root)
        except Exception as e:  # offline, a mirror down, a disk full: say what to do instead
            missing = [n for n in names if not find_file(raw, n)]
            detail = " ".join(str(e).split())
            raise KitError(f"could not download MNIST ({type(e).__name__}: {detail[:300]}). "
                           f"Without internet, put the files by hand: copy {', '.join(missing)} "
                           f"(each as released, .gz, or unpacked) from a machine that has them "
                           f"(torchvision's mirror {MNIST_URL}, or any torchvision MNIST/raw folder) into\n"
                           f"    {os.path.abspath(raw)}\n"
                           "and run this script again to check them.")
    for split in ("train", "test"):
        images, labels = load_split(args.root, split)
        counts = ", ".join(str(int((labels == d).sum())) for d in range(10))
        note = "" if len(labels) == FULL[split] else \
            f"  NOTE: the full MNIST {split} split has {FULL[split]} images; numbers from this data are not the benchmark's"
        print(f"{split}: {len(labels)} images of 28x28 in {raw} (per digit 0-9: {counts}){note}")
    print(f"MNIST is ready. The S-MNIST scripts read it with --data {os.path.abspath(args.root)}")


if __name__ == "__main__":
    run_main(main)
