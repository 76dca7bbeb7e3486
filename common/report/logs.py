"""Reading the runs: a run's final metric from its log and completion record, the experiments found under a
folder, and the cells (model, ratio, seed) of one experiment. A run that is missing, unfinished or garbled
becomes a cell with a problem, never an exception."""
import glob
import os
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


def result_name(exp, model, seed, ratio=None):
    return f"{exp.dataset}_{model}_{seed}" + ("" if ratio is None else f"_{ratio_str(ratio)}")
