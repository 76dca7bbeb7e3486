"""The profile table (docs/aggregator.md): CPU cores, peak GPU and main memory from the launcher's profile.csv, and the
epoch time from the train logs."""
import csv
import glob
import os
import re
import statistics

from common.report.logs import MISSING


EPOCH_TIME = re.compile(r"^\| end of epoch .*\| time:\s*([0-9.]+)\s*s")


def epoch_times(folder):
    """Median epoch time (s) of every train log in folder/log."""
    medians = []
    for path in sorted(glob.glob(os.path.join(folder, "log", "train_*.log"))):
        try:
            with open(path, errors="replace") as f:
                times = [float(m.group(1)) for m in map(EPOCH_TIME.match, f) if m]
        except (OSError, ValueError):
            continue
        if times:
            medians.append(statistics.median(times))
    return medians


def read_profile_csv(path):
    if not os.path.exists(path):
        return []
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except (OSError, csv.Error):
        return []


def value_range(values, fmt):
    values = sorted(v for v in values if v is not None)
    if not values:
        return MISSING
    lo, hi = fmt(values[0]), fmt(values[-1])
    return lo if lo == hi else f"{lo} ~ {hi}"


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def profile_text(folders, profile_csv):
    """The profile table (docs/aggregator.md): CPU cores (CPU time / wall time), peak GPU memory, peak main memory
    (each min ~ max over the finished jobs in profile.csv) and epoch time (from the train logs)."""
    rows = [r for r in read_profile_csv(profile_csv) if r.get("status") == "ok"]
    names = sorted({os.path.basename(os.path.normpath(f)) for f in folders} | {r.get("experiment", "") for r in rows})
    by_name = {os.path.basename(os.path.normpath(f)): f for f in folders}
    lines = ["| Experiment | CPU cores | GPU memory | Main memory | Epoch time | Jobs profiled |",
             "| :---: | :---: | :---: | :---: | :---: | :---: |"]
    for name in filter(None, names):
        mine = [r for r in rows if r.get("experiment") == name]
        cores = [(_number(r.get("cpu_s")) or 0) / w for r in mine if (w := _number(r.get("wall_s")))]
        gpu = [_number(r.get("peak_gpu_mb")) for r in mine]
        ram = [None if _number(r.get("peak_rss_mb")) is None else _number(r.get("peak_rss_mb")) / 1024 for r in mine]
        epochs = epoch_times(by_name[name]) if name in by_name else []
        epoch = value_range(epochs, lambda v: f"{v:.0f} s" if v >= 10 else f"{v:.2g} s")
        if epoch != MISSING and "dvs" in name.lower():
            epoch += " (per 20 iterations)"
        lines.append(f"| {name} | {value_range(cores, lambda v: f'{v:.1f}')} | "
                     f"{value_range(gpu, lambda v: f'{v:.0f} MB')} | {value_range(ram, lambda v: f'{v:.1f} GB')} | "
                     f"{epoch} | {len(mine)} |")
    return "\n".join(lines) + "\n"
