"""Reading the runs' logs, and the tables and plots made from them.

The CSV and LaTeX follow the authors' latex-code-gen.py exactly; a run that is missing, unfinished or
garbled becomes the cell MISSING and one line in the list of problems, never an exception.
"""
import csv
import glob
import json
import math
import os
import re
import statistics
from dataclasses import dataclass, field

from common import runs

MISSING = "NA"
TEST_RULES = runs.TEST_RULES
BASE_MODELS = ("rnn", "lstm")
LOG_NAME = runs.LOG_NAME
METRIC = {"ptb": "test perplexity (lower is better)"}  # every other dataset: test accuracy
DATASET_IN_FOLDER = (("smnist", "mnist"), ("nmnist", "nmnist"), ("dvs", "dvsGesture"), ("ptb", "ptb"))
tail_lines = runs.tail_lines


# -- one log ----------------------------------------------------------------------------------------
def resume_file(log_path):
    """checkpoint/<name>.resume.t7 of the run that writes log/<train|test>_<name>.log."""
    return runs.resume_path(runs.run_of_log(log_path)[2])


def read_result(log_path, check_resume=False, legacy=False):
    """(raw value string, problem): the run's final metric when its completion record says finished and
    matches its log and checkpoint (common.runs.verify), or None and why not.

    legacy=True reads logs without records (the authors' own, older trees) by the last-three-lines rule:
    the final test block ends the log (and, with check_resume, no resume file is left)."""
    if not legacy:
        if not os.path.exists(log_path):
            return None, "missing"
        raw, _, problem = runs.verify(log_path)
        return raw, problem
    if check_resume and os.path.exists(resume_file(log_path)):
        return None, "unfinished (resume file present: training in progress or interrupted)"
    return runs.final_metric(log_path)


# -- experiments ------------------------------------------------------------------------------------
@dataclass
class Experiment:
    folder: str
    dataset: str
    rnn_type: str                 # "rnn" or "lstm": the pure non-spiking row and the CSV name
    seeds: list
    ratios: list
    log_kind: str = "test"        # the authors' DVS aggregator read train_ logs
    out_subdir: str = ""          # where under the output folder its files go
    train_fallback: bool = False  # a run without a test_ log is read from its train_ log (which also ends with the test)
    legacy: bool = False          # logs without completion records, by the last-three-lines rule (--legacy-logs)

    @property
    def name(self):
        return os.path.basename(os.path.normpath(self.folder))

    @property
    def stem(self):
        return f"{self.dataset}-{self.rnn_type.upper()}"


def ratio_str(ratio):
    return str(float(ratio))


def ratio_label(ratio):
    """The authors' row label: str(ratio), except 0.5 which is written 0.50."""
    label = ratio_str(ratio)
    return label + "0" if float(ratio) == 0.5 else label


def scan_logs(folder):
    """{dataset: (seeds, ratios)} from the names of log/*.log."""
    found = {}
    for path in glob.glob(os.path.join(folder, "log", "*.log")):
        m = LOG_NAME.match(os.path.basename(path))
        if m:
            seeds, ratios = found.setdefault(m.group(2), (set(), set()))
            seeds.add(int(m.group(4)))
            if m.group(5) and m.group(3) in ("ffs", "hybrid"):
                ratios.add(float(m.group(5)))
    return found


def rnn_type_of(folder):
    return "lstm" if os.path.basename(os.path.normpath(folder)).lower().startswith("lstm") else "rnn"


def dataset_from_folder(folder):
    name = os.path.basename(os.path.normpath(folder)).lower()
    return next((ds for key, ds in DATASET_IN_FOLDER if key in name), None)


def make_experiments(folder, seeds=None, ratios=None, log_kind="auto", out_subdir="", legacy=False):
    """The experiments (one per dataset) whose logs are in folder/log; seeds and ratios found there
    unless given. log_kind auto: train_ logs for DVS Gesture (as the authors), else test_ logs and, for a
    run that has none, its train_ log."""
    found = scan_logs(folder)
    if not found and dataset_from_folder(folder) and seeds and ratios:
        found = {dataset_from_folder(folder): (set(), set())}
    experiments = []
    for ds, (found_seeds, found_ratios) in sorted(found.items()):
        kind = ("train" if ds == "dvsGesture" else "test") if log_kind == "auto" else log_kind
        experiments.append(Experiment(folder, ds, rnn_type_of(folder), sorted(seeds or found_seeds),
                                      sorted(float(r) for r in (ratios or found_ratios)), kind, out_subdir,
                                      train_fallback=log_kind == "auto" and kind == "test", legacy=legacy))
    return experiments


def discover(root, seeds=None, ratios=None, log_kind="auto", legacy=False):
    """Every experiments/*/ and studies/*/ folder with logs. Studies write under results/studies/<name>/;
    two experiments with the same dataset and type write under results/<folder name>/."""
    experiments = []
    for group in ("experiments", "studies"):
        for folder in sorted(glob.glob(os.path.join(root, group, "*", "log"))):
            folder = os.path.dirname(folder)
            sub = os.path.join("studies", os.path.basename(folder)) if group == "studies" else ""
            experiments += make_experiments(folder, seeds, ratios, log_kind, sub, legacy)
    return separate_outputs(experiments)


def separate_outputs(experiments):
    """Experiments that would write the same results/<ds>-<TYPE>-* files write under results/<folder>/."""
    stems = [e.stem for e in experiments if not e.out_subdir]
    for e in experiments:
        if not e.out_subdir and stems.count(e.stem) > 1:
            e.out_subdir = e.name
    return experiments


# -- the numbers of one experiment -----------------------------------------------------------------
@dataclass
class Cell:
    raw: str = None               # the number as logged (the LaTeX shows it unrounded, as the original)
    problem: str = None
    log: str = ""

    @property
    def value(self):
        return None if self.raw is None else float(self.raw)


@dataclass
class Results:
    experiment: Experiment
    cells: dict = field(default_factory=dict)     # (model, ratio or None, seed) -> Cell

    def row(self, model, ratio=None):
        return [self.cells[(model, ratio, s)] for s in self.experiment.seeds]

    def problems(self):
        return [c for c in self.cells.values() if c.problem]


def log_path(exp, model, seed, ratio=None):
    """The log a cell is read from: <log_kind>_<name>.log, or with train_fallback the train_ log when there
    is no test_ log."""
    name = f"{exp.dataset}_{model}_{seed}" + ("" if ratio is None else f"_{ratio_str(ratio)}")
    path = os.path.join(exp.folder, "log", f"{exp.log_kind}_{name}.log")
    train = os.path.join(exp.folder, "log", f"train_{name}.log")
    return train if exp.train_fallback and not os.path.exists(path) and os.path.exists(train) else path


def cell_result(exp, path):
    return read_result(path, check_resume=os.path.basename(path).startswith("train_"), legacy=exp.legacy)


def collect(exp):
    res = Results(exp)
    keys = [(m, None) for m in (exp.rnn_type, "snn")] + [(m, r) for r in exp.ratios for m in ("ffs", "hybrid")]
    for model, ratio in keys:
        for seed in exp.seeds:
            path = log_path(exp, model, seed, ratio)
            raw, problem = cell_result(exp, path)
            res.cells[(model, ratio, seed)] = Cell(raw, problem, path)
    return res


def row_stats(cells):
    """(mean, population variance, n) of the usable values; mean and variance None when there are none."""
    values = [c.value for c in cells if c.value is not None]
    if not values:
        return None, None, 0
    avg = sum(values) / len(values)
    return avg, sum((v - avg) ** 2 for v in values) / len(values), len(values)


# -- CSV and LaTeX in the authors' format ----------------------------------------------------------
def csv_line(label, cells):
    avg, squ, _ = row_stats(cells)
    parts = [label] + [MISSING if c.value is None else str(round(c.value, 2)) for c in cells]
    parts += [MISSING, MISSING] if avg is None else [str(round(avg, 2)), str(round(squ, 2))]
    return ", ".join(parts) + "\n"


def csv_text(res, kind):
    """The content of <ds>-<TYPE>-<kind>.csv (kind ffs or hybrid), without print()'s final newline."""
    exp = res.experiment
    text = "type, " + ", ".join(str(s) for s in exp.seeds) + ", avg, squ\n"
    text += csv_line(exp.rnn_type, res.row(exp.rnn_type))
    for r in exp.ratios:
        text += csv_line(ratio_label(r), res.row(kind, r))
    return text + csv_line("snn", res.row("snn"))


def latex_text(res):
    """The authors' LaTeX table (at least 11 columns as theirs), with every seed."""
    exp, raw = res.experiment, (lambda c: MISSING if c.raw is None else c.raw)
    cols = "|c" * max(11, 1 + 2 * len(exp.seeds)) + "|"
    text = "\\begin{table}[] \n\\begin{tabular}{" + cols + "} \n\\hline \n     "
    text += "".join("& \\multicolumn{2}{c|}{%s}  " % s for s in exp.seeds) + "\\\\ \\hline \n"

    def pure_line(model):
        return model + "".join(" & \\multicolumn{2}{c|}{" + raw(c) + "} " for c in res.row(model)) + " \\\\ \\hline \n"

    text += pure_line(exp.rnn_type)
    for r in exp.ratios:
        text += ratio_label(r) + "".join(" & " + raw(f) + " & \\textbf{" + raw(h) + "} "
                                         for f, h in zip(res.row("ffs", r), res.row("hybrid", r))) + " \\\\ \\hline \n"
    text += pure_line("snn")
    return text + "\\end{tabular}\n\\end{table}\n"


# -- the compact table and the list of problems ------------------------------------------------------
def mean_std(cells, total):
    avg, squ, n = row_stats(cells)
    if avg is None:
        return MISSING
    return f"{avg:.2f} ± {math.sqrt(squ):.2f}" + ("" if n == total else f" (n={n})")


def summary_text(res):
    """Markdown: mean ± population std over seeds, ours and (where published) the authors'."""
    exp = res.experiment
    pub = published(exp.dataset, exp.rnn_type)
    n = len(exp.seeds)
    head = f"### {exp.stem} ({exp.name}): {METRIC.get(exp.dataset, 'test accuracy (%)')}, " \
           f"mean ± std over seeds {', '.join(map(str, exp.seeds))}\n\n"
    head += "| type | ffs | HSTNN |" + (" ffs (published) | HSTNN (published) |" if pub else "") + "\n"
    head += "|---|---|---|" + ("---|---|" if pub else "") + "\n"
    rows = []
    for label, ffs, hyb in ([(exp.rnn_type, res.row(exp.rnn_type), res.row(exp.rnn_type))]
                            + [(ratio_label(r), res.row("ffs", r), res.row("hybrid", r)) for r in exp.ratios]
                            + [("snn", res.row("snn"), res.row("snn"))]):
        line = f"| {label} | {mean_std(ffs, n)} | {mean_std(hyb, n)} |"
        if pub:
            line += " " + " | ".join(published_mean_std(pub, k, label) for k in ("ffs", "hybrid")) + " |"
        rows.append(line)
    return head + "\n".join(rows) + "\n"


def problems_text(results):
    lines = [f"- {os.path.join(res.experiment.name, os.path.relpath(c.log, res.experiment.folder))}: {c.problem}"
             for res in results for c in res.problems()]
    partial = []
    for res in results:
        exp = res.experiment
        for model, ratio in sorted({(m, r) for m, r, _ in res.cells}, key=lambda k: (k[0], k[1] or 0)):
            _, _, n = row_stats(res.row(model, ratio))
            if 0 < n < len(exp.seeds):
                what = model if ratio is None else f"{model} {ratio_label(ratio)}"
                partial.append(f"- {exp.name} {what}: avg and squ over {n} of {len(exp.seeds)} seeds")
    if not lines and not partial:
        return "All runs complete.\n"
    text = f"Runs without a result ({len(lines)}), shown as {MISSING}:\n" + "\n".join(lines) + "\n"
    return text + ("\nRows averaged over fewer seeds:\n" + "\n".join(partial) + "\n" if partial else "")


# -- the authors' published numbers (spec §10, verbatim) -------------------------------------------
PUBLISHED_CSV = {
    ("ptb", "ffs"): """type, 1111, 2222, 3333, 4444, avg, squ
rnn, 103.07, 102.76, 101.93, 102.75, 102.63, 0.18
0.1, 101.32, 101.24, 100.74, 100.95, 101.06, 0.05
0.2, 101.23, 101.05, 101.9, 100.71, 101.22, 0.19
0.3, 101.82, 102.07, 101.52, 101.62, 101.76, 0.04
0.4, 102.24, 102.25, 102.19, 102.16, 102.21, 0.0
0.50, 103.1, 102.97, 102.84, 102.85, 102.94, 0.01
0.6, 103.34, 103.53, 104.03, 103.72, 103.66, 0.06
0.7, 105.72, 106.18, 105.9, 105.14, 105.73, 0.14
0.8, 106.07, 108.07, 106.99, 107.31, 107.11, 0.51
0.9, 110.54, 110.13, 109.0, 110.73, 110.1, 0.45
snn, 122.73, 122.73, 123.41, 123.49, 123.09, 0.13
""",
    ("ptb", "hybrid"): """type, 1111, 2222, 3333, 4444, avg, squ
rnn, 103.07, 102.76, 101.93, 102.75, 102.63, 0.18
0.1, 97.65, 96.73, 96.5, 97.11, 97.0, 0.19
0.2, 98.85, 97.83, 97.33, 98.26, 98.07, 0.31
0.3, 99.47, 98.36, 97.82, 98.78, 98.61, 0.36
0.4, 100.04, 99.08, 98.64, 99.38, 99.28, 0.26
0.50, 100.33, 99.06, 99.08, 99.74, 99.55, 0.28
0.6, 100.67, 99.19, 99.85, 99.59, 99.83, 0.29
0.7, 101.01, 99.73, 100.89, 100.4, 100.51, 0.25
0.8, 102.06, 101.28, 102.76, 101.74, 101.96, 0.29
0.9, 105.9, 105.48, 106.43, 106.05, 105.97, 0.12
snn, 122.73, 122.73, 123.41, 123.49, 123.09, 0.13
""",
    ("mnist", "ffs"): """type, 1111, 2222, 3333, 4444, 5555, avg, squ
rnn, 98.64, 98.6, 98.69, 98.63, 98.62, 98.64, 0.0
0.05, 98.73, 98.75, 98.71, 98.71, 98.58, 98.7, 0.0
0.15, 98.78, 98.53, 98.73, 98.73, 98.63, 98.68, 0.01
0.25, 98.58, 98.65, 98.83, 98.64, 98.68, 98.68, 0.01
0.35, 98.75, 98.76, 98.54, 98.44, 98.71, 98.64, 0.02
0.45, 98.6, 98.83, 98.74, 98.48, 98.66, 98.66, 0.01
0.50, 98.68, 98.69, 98.67, 98.64, 98.65, 98.67, 0.0
0.55, 98.76, 98.74, 98.7, 98.74, 98.68, 98.72, 0.0
0.65, 98.72, 98.63, 98.82, 98.65, 98.68, 98.7, 0.0
0.75, 98.63, 98.69, 98.71, 98.5, 98.71, 98.65, 0.01
0.85, 98.66, 98.52, 98.66, 98.68, 98.64, 98.63, 0.0
0.95, 98.64, 98.59, 98.53, 98.43, 98.46, 98.53, 0.01
snn, 98.15, 98.19, 98.09, 98.2, 98.2, 98.17, 0.0
""",
    ("mnist", "hybrid"): """type, 1111, 2222, 3333, 4444, 5555, avg, squ
rnn, 98.64, 98.6, 98.69, 98.63, 98.62, 98.64, 0.0
0.05, 98.87, 98.81, 98.7, 98.62, 98.74, 98.75, 0.01
0.15, 98.97, 98.86, 98.61, 98.7, 98.84, 98.8, 0.02
0.25, 99.0, 98.91, 98.64, 98.82, 98.83, 98.84, 0.01
0.35, 98.96, 98.89, 98.78, 98.87, 98.89, 98.88, 0.0
0.45, 98.92, 98.92, 98.83, 98.9, 98.98, 98.91, 0.0
0.50, 98.94, 98.97, 98.85, 98.93, 98.92, 98.92, 0.0
0.55, 98.88, 98.89, 98.81, 98.94, 98.89, 98.88, 0.0
0.65, 98.88, 98.93, 98.76, 98.98, 98.94, 98.9, 0.01
0.75, 98.88, 98.95, 98.78, 99.06, 98.92, 98.92, 0.01
0.85, 98.68, 98.79, 98.73, 99.0, 98.98, 98.84, 0.02
0.95, 98.52, 98.58, 98.29, 98.67, 98.6, 98.53, 0.02
snn, 98.15, 98.19, 98.09, 98.2, 98.2, 98.17, 0.0
""",
    ("dvsGesture", "ffs"): """type, 1111, 2222, 3333, 4444, 5555, avg, squ
rnn, 88.54, 87.85, 86.81, 91.67, 88.54, 88.68, 2.63
0.0625, 94.44, 95.14, 93.06, 93.75, 93.4, 93.96, 0.56
0.125, 93.4, 93.4, 95.83, 94.1, 94.1, 94.17, 0.79
0.25, 93.06, 94.1, 95.49, 93.06, 92.71, 93.68, 1.03
0.375, 93.75, 93.4, 93.06, 94.1, 93.75, 93.61, 0.13
0.50, 94.44, 94.1, 94.44, 93.4, 93.4, 93.96, 0.22
0.625, 94.1, 94.1, 94.1, 94.1, 93.75, 94.03, 0.02
0.75, 94.44, 94.44, 94.1, 94.44, 95.49, 94.58, 0.22
0.875, 94.79, 94.1, 94.79, 94.44, 95.83, 94.79, 0.34
0.9375, 95.49, 94.79, 95.14, 94.1, 95.49, 95.0, 0.27
snn, 94.44, 94.44, 95.49, 93.4, 94.79, 94.51, 0.45
""",
    ("dvsGesture", "hybrid"): """type, 1111, 2222, 3333, 4444, 5555, avg, squ
rnn, 88.54, 87.85, 86.81, 91.67, 88.54, 88.68, 2.63
0.0625, 94.44, 94.44, 94.1, 92.71, 95.14, 94.17, 0.65
0.125, 94.1, 95.14, 95.14, 93.75, 95.83, 94.79, 0.58
0.25, 94.79, 95.14, 96.88, 94.1, 95.49, 95.28, 0.85
0.375, 95.14, 94.79, 96.53, 94.79, 95.49, 95.35, 0.41
0.50, 95.49, 95.49, 97.92, 95.49, 95.83, 96.04, 0.9
0.625, 96.18, 96.53, 97.92, 96.53, 95.83, 96.6, 0.5
0.75, 95.83, 96.88, 98.26, 95.83, 96.18, 96.6, 0.84
0.875, 96.18, 96.18, 97.22, 95.14, 96.18, 96.18, 0.43
0.9375, 95.83, 96.53, 96.88, 94.79, 96.18, 96.04, 0.51
snn, 94.44, 94.44, 95.49, 93.4, 94.79, 94.51, 0.45
""",
}


def published(dataset, rnn_type="rnn"):
    """{"ffs"|"hybrid": {label: (per-seed values, avg, squ)}} of the authors' CSVs, or None (N-MNIST, LSTM)."""
    if rnn_type != "rnn" or (dataset, "ffs") not in PUBLISHED_CSV:
        return None
    tables = {}
    for kind in ("ffs", "hybrid"):
        rows = [line.split(", ") for line in PUBLISHED_CSV[(dataset, kind)].strip().split("\n")[1:]]
        tables[kind] = {r[0]: ([float(x) for x in r[1:-2]], float(r[-2]), float(r[-1])) for r in rows}
    return tables


def published_mean_std(pub, kind, label):
    row = pub[kind].get(label)
    return "" if row is None else f"{row[1]:.2f} ± {math.sqrt(row[2]):.2f}"


# -- plots ------------------------------------------------------------------------------------------
def plot(res, path_stem):
    """<path_stem>.png and .pdf (ours, and the authors' published numbers in a panel on their own scale) and
    <path_stem>-curves.png (the learning curves of every run): see common/plots.py."""
    from common import plots
    return plots.plot_experiment(res, path_stem) + plots.plot_learning_curves(res, path_stem)


# -- profile ----------------------------------------------------------------------------------------
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
    """The README's profile table: CPU cores (CPU time / wall time), peak GPU memory, peak main memory
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


# -- the trade-off: cost and robustness from evaluate.py's JSON beside the logs ---------------------------------
def read_json(path):
    """(object, problem): None and None when the file does not exist."""
    if not os.path.exists(path):
        return None, None
    try:
        with open(path) as f:
            return json.load(f), None
    except (OSError, ValueError) as e:
        return None, f"unreadable ({type(e).__name__})"


def well_formed(obj, kind):
    """Whether obj has the shape of evaluate.py's cost or robust JSON (what the report reads of it)."""
    if not isinstance(obj, dict) or obj.get("kind") != kind:
        return False
    if kind == "cost":
        return isinstance(obj.get("firing_rate"), dict)
    perturbations = obj.get("perturbations")
    return isinstance(perturbations, dict) and all(
        isinstance(p, dict) and isinstance(p.get("values"), list) and isinstance(p.get("strengths"), list)
        and all(isinstance(s, (int, float)) for s in p["strengths"]) for p in perturbations.values())


def result_name(exp, model, seed, ratio=None):
    return f"{exp.dataset}_{model}_{seed}" + ("" if ratio is None else f"_{ratio_str(ratio)}")


@dataclass
class Tradeoff:
    results: Results
    cost: dict = field(default_factory=dict)      # (model, ratio, seed) -> evaluate.py's cost JSON
    robust: dict = field(default_factory=dict)    # (model, ratio, seed) -> its robust JSON
    problems: list = field(default_factory=list)  # "path: why"
    convention: str = None                        # the cost convention of every cost JSON (None: none, or mixed)
    memory: str = None                            # their memory term, e.g. "sram 5 pJ" (None: none, or mixed)

    @property
    def keys(self):
        """(row type, model, ratio): the pure RNN, every ratio's ffs and HSTNN, the pure SNN, and the adapted
        (redundant) hybrid when it was evaluated."""
        exp = self.results.experiment
        keys = [(exp.rnn_type, exp.rnn_type, None)] + [(m, m, r) for r in exp.ratios for m in ("ffs", "hybrid")]
        keys.append(("snn", "snn", None))
        if any(k[:2] == ("hybrid", None) for k in list(self.cost) + list(self.robust)):
            keys.append(("adapted", "hybrid", None))
        return keys


def collect_tradeoff(res):
    """The cost and robustness results of an experiment's runs; None when evaluate.py was never run on it."""
    exp = res.experiment
    t = Tradeoff(res)
    models = [(exp.rnn_type, None), ("snn", None), ("hybrid", None)] + \
             [(m, r) for r in exp.ratios for m in ("ffs", "hybrid")]
    for model, ratio in models:
        for seed in exp.seeds:
            for kind, table in (("cost", t.cost), ("robust", t.robust)):
                path = os.path.join(exp.folder, "log", f"{kind}_{result_name(exp, model, seed, ratio)}.json")
                obj, problem = read_json(path)
                if obj is not None and not well_formed(obj, kind):
                    obj, problem = None, f"not a {kind} result of evaluate.py"
                if problem:
                    t.problems.append(f"{os.path.join(exp.name, os.path.relpath(path, exp.folder))}: {problem}")
                elif obj is not None:
                    table[(model, ratio, seed)] = obj
    check_cost_settings(t)
    return t if (t.cost or t.robust or t.problems) else None


def check_cost_settings(t):
    """Sets t.convention and t.memory when every cost JSON shares them. Costs counted under different conventions
    (a JSON without one is kit-v1's) are never averaged or compared: t.convention stays None, every cost column
    is NA, and a problem line says which runs to count again; likewise for different memory terms."""
    exp = t.results.experiment
    number = lambda v: f"{v:g}" if isinstance(v, (int, float)) else str(v)
    for attr, setting in (("convention", lambda c: str(c.get("convention", "kit-v1"))),
                          ("memory", lambda c: c.get("memory") and f"{c['memory']} {number(c.get('memory_pj'))} pJ")):
        groups = {}
        for (model, ratio, seed), c in sorted(t.cost.items(), key=lambda kv: str(kv[0])):
            groups.setdefault(setting(c), []).append(result_name(exp, model, seed, ratio))
        if len(groups) == 1:
            setattr(t, attr, next(iter(groups)))
        elif len(groups) > 1:
            listed = "; ".join(f"{k or 'none'}: {', '.join(v)}" for k, v in sorted(groups.items(), key=lambda kv: str(kv[0])))
            what = "conventions" if attr == "convention" else "memory terms"
            t.problems.append(f"{exp.name}: cost results made under different {what} ({listed}), never averaged: "
                              f"their {'cost' if attr == 'convention' else 'memory'} columns are NA; count them again "
                              f"with one setting (evaluate.py cost --all --force --{attr} ...)")


def _mean(values):
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(values) / len(values) if values else None


def _std(values):
    m = _mean(values)
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return None if m is None else math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


COST_COLUMNS = ("macs", "acs", "energy_pj", "params", "state_bytes")
MEMORY_COLUMNS = ("weight_reads", "state_accesses", "energy_memory_pj", "energy_with_memory_pj")
BY_CONVENTION = ("macs", "acs", "energy_pj", "energy_pj_std") + MEMORY_COLUMNS  # CSV headers name the convention


def tradeoff_rows(t):
    """One dict per row type and ratio: the test metric (from the logs) and the means over seeds of the cost
    and robustness numbers (population std for the metric and the energy)."""
    exp = t.results.experiment
    rows = []
    for label, model, ratio in t.keys:
        if label == "adapted":
            cells = [Cell(*cell_result(exp, log_path(exp, "hybrid", s))) for s in exp.seeds]
        else:
            cells = t.results.row(model, ratio)
        avg, squ, n = row_stats(cells)
        costs = [t.cost[k] for k in ((model, ratio, s) for s in exp.seeds) if k in t.cost]
        counted = costs if t.convention is not None else []  # mixed conventions: no cost number at all
        robust = [t.robust[k] for k in ((model, ratio, s) for s in exp.seeds) if k in t.robust]
        row = {"type": label, "ratio": "" if ratio is None else ratio_str(ratio), "metric_mean": avg,
               "metric_std": None if squ is None else math.sqrt(squ), "n_seeds": n,
               "n_cost": len(costs), "n_robust": len(robust)}
        for key in COST_COLUMNS:
            row[key] = _mean([c.get(key) for c in counted])
        row["energy_pj_std"] = _std([c.get("energy_pj") for c in counted]) if counted else None
        if t.memory and t.convention:
            row.update({key: _mean([c.get(key) for c in counted]) for key in MEMORY_COLUMNS})
        for layer in sorted({k for c in costs for k in c.get("firing_rate", {})}):
            row[f"fr_{layer}"] = _mean([c["firing_rate"].get(layer) for c in costs])
        by_column = {}
        for r in robust:
            for kind, p in r.get("perturbations", {}).items():
                for strength, value in zip(p.get("strengths", []), p.get("values", [])):
                    by_column.setdefault(f"{kind}@{strength:g}", []).append(value)
                by_column.setdefault(f"{kind}_auc", []).append(p.get("auc"))
        row.update({column: _mean(values) for column, values in by_column.items()})
        rows.append(row)
    return rows


def tradeoff_csv(rows, convention=None, memory=None):
    """Comma-separated, one header line; empty cells where a number is missing. The headers of the counted
    columns name the cost convention (and memory term): energy_pj[standard], energy_memory_pj[standard, sram 5 pJ]."""
    columns = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    rates = sorted(k for k in columns if k.startswith("fr_"))  # cost, firing rates, then robustness
    columns = [k for k in columns if "@" not in k and not k.endswith("_auc") and k not in rates] + rates + \
              [k for k in columns if "@" in k or k.endswith("_auc")]
    fmt = lambda v: "" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))
    tag = lambda c: c if c not in BY_CONVENTION else \
        f"{c}[{convention or 'mixed'}" + (f"; {memory}]" if c in MEMORY_COLUMNS else "]")
    return "\n".join([",".join(tag(c) for c in columns)] +
                     [",".join(fmt(row.get(c)) for c in columns) for row in rows]) + "\n"


def pareto_front(points, lower_is_better):
    """The points (energy, metric) that no other point beats on both (less or equal energy, a metric at least
    as good, one of them strictly), sorted by energy."""
    good = (lambda a, b: a <= b) if lower_is_better else (lambda a, b: a >= b)
    front = [p for p in points if not any(q != p and q[0] <= p[0] and good(q[1], p[1]) and
                                          (q[0] < p[0] or q[1] != p[1]) for q in points)]
    return sorted(set(front))


def plot_tradeoff(t, rows, stem):
    """Four PNGs: the metric, the energy and the robustness (AUC per perturbation) against the SNN ratio for ffs
    and HSTNN with the pure RNN and SNN as horizontal references, and the metric-energy plane with the Pareto
    front of every evaluated model."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exp = t.results.experiment
    metric = METRIC.get(exp.dataset, "test accuracy (%)")
    lower = exp.dataset == "ptb"
    base = exp.rnn_type.upper()
    styles = {"ffs": ("ffs (hybrid from scratch)", "C0", "o"), "hybrid": ("HSTNN", "C1", "s")}
    refs = {exp.rnn_type: (f"pure {base}", "C2", "-."), "snn": ("pure SNN", "C3", ":")}
    title = f"{exp.stem} ({exp.name}), mean over seeds; cost: {t.convention or 'NA (mixed conventions)'} convention"

    def against_ratio(ax, column, err=None):
        for kind, (label, color, marker) in styles.items():
            pts = [(float(r["ratio"]), r[column], r.get(err) if err else None) for r in rows
                   if r["type"] == kind and r.get(column) is not None]
            if pts:
                ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] or 0 for p in pts] if err else None,
                            color=color, marker=marker, capsize=3, label=label)
        for r in rows:
            if r["type"] in refs and r.get(column) is not None:
                label, color, style = refs[r["type"]]
                ax.axhline(r[column], color=color, linestyle=style, label=label)
        ax.set_xlabel("SNN ratio")
        ax.grid(alpha=0.3)

    paths = []

    def legend(ax):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(f"{stem}-tradeoff-{name}.png", dpi=150)
        plt.close(fig)
        paths.append(f"{stem}-tradeoff-{name}.png")

    for name, column, err, ylabel in (("metric", "metric_mean", "metric_std", metric),
                                      ("energy", "energy_pj", "energy_pj_std", "energy per inference (pJ)")):
        fig, ax = plt.subplots(figsize=(7, 4))
        against_ratio(ax, column, err)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        legend(ax)
        save(fig, name)

    kinds = sorted({k[:-4] for r in rows for k in r if k.endswith("_auc")})
    fig, axes = plt.subplots(1, max(1, len(kinds)), figsize=(4.2 * max(1, len(kinds)), 3.8), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        against_ratio(ax, f"{kind}_auc")
        ax.set_title(f"{kind}: mean metric over the strengths", fontsize=8)
        ax.set_ylabel(metric, fontsize=8)
    legend(axes[0][0])
    fig.suptitle(title, fontsize=9)
    save(fig, "robustness")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    points = [(r["energy_pj"], r["metric_mean"]) for r in rows if r["energy_pj"] is not None and r["metric_mean"] is not None]
    for kind, (label, color, marker) in styles.items():
        mine = [r for r in rows if r["type"] == kind and r["energy_pj"] is not None and r["metric_mean"] is not None]
        ax.scatter([r["energy_pj"] for r in mine], [r["metric_mean"] for r in mine], color=color, marker=marker, label=label)
        for r in mine:
            ax.annotate(r["ratio"], (r["energy_pj"], r["metric_mean"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    for r in rows:
        if r["type"] in list(refs) + ["adapted"] and r["energy_pj"] is not None and r["metric_mean"] is not None:
            label, color, _ = refs.get(r["type"], ("adapted hybrid (before selection)", "C4", None))
            ax.scatter([r["energy_pj"]], [r["metric_mean"]], color=color, marker="*", s=120, label=label)
    front = pareto_front(points, lower)
    if front:
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="k", alpha=0.5, linestyle="--",
                label="Pareto front")
        ax.scatter([p[0] for p in front], [p[1] for p in front], facecolors="none", edgecolors="k", s=90)
    if any(p[0] > 0 for p in points):
        ax.set_xscale("log")
    ax.set_xlabel("energy per inference (pJ, log scale)")
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    legend(ax)
    save(fig, "pareto")
    return paths


def write_tradeoff(res, stem, plots=True):
    """<stem>-tradeoff.csv (and the four plots) when evaluate.py results exist; (written paths, problems)."""
    t = collect_tradeoff(res)
    if t is None:
        return [], []
    rows = tradeoff_rows(t)
    with open(f"{stem}-tradeoff.csv", "w") as fp:
        fp.write(tradeoff_csv(rows, t.convention, t.memory))
    written = [f"{stem}-tradeoff.csv"]
    if plots and (t.cost or t.robust):
        from common.plots import plot_firing_rates
        written += plot_tradeoff(t, rows, stem) + plot_firing_rates(res.experiment, rows, stem)
    return written, t.problems


# -- everything for a list of experiments -------------------------------------------------------------
def write_report(experiments, out_dir, plots=True, echo=print):
    """Write every experiment's CSVs, .tex, summary and plots under out_dir; return the Results."""
    all_results = []
    for exp in experiments:
        res = collect(exp)
        all_results.append(res)
        folder = os.path.join(out_dir, exp.out_subdir)
        os.makedirs(folder, exist_ok=True)
        stem = os.path.join(folder, exp.stem)
        for kind in ("ffs", "hybrid"):
            with open(f"{stem}-{kind}.csv", "w") as fp:
                print(csv_text(res, kind), file=fp)
        latex, summary = latex_text(res), summary_text(res)
        with open(f"{stem}.tex", "w") as fp:
            fp.write(latex)
        with open(f"{stem}-summary.md", "w") as fp:
            fp.write(summary + "\n" + problems_text([res]))
        written = [f"{stem}-ffs.csv", f"{stem}-hybrid.csv", f"{stem}.tex", f"{stem}-summary.md"]
        if plots:
            written += plot(res, stem)
        tradeoff, bad = write_tradeoff(res, stem, plots)
        written += tradeoff
        logs = f"{exp.log_kind}_ logs" + (" (else train_)" if exp.train_fallback else "") + \
            (", legacy: no records" if exp.legacy else "")
        echo(f"== {exp.name}: {exp.stem}, {logs}, seeds {exp.seeds}, "
             f"ratios {[ratio_str(r) for r in exp.ratios]}")
        echo(latex)
        echo(summary)
        if bad:
            echo("Trade-off results that could not be read (left out):\n" + "\n".join(f"- {b}" for b in bad))
        echo(f"wrote {', '.join(os.path.basename(p) for p in written)} in {os.path.abspath(folder)}\n")
    return all_results
