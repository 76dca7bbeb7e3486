"""Reading the runs: a run's final metric from its log and completion record, the experiments found under a
folder, and the cells (model, ratio, seed) of one experiment. A run that is missing, unfinished or garbled
becomes a cell with a problem, never an exception."""
import glob
import json
import os
from dataclasses import dataclass, field

from common import runs
from common.report import provenance as P


MISSING = "NA"
DIVERGED = "div"
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
    matches its log and checkpoint (provenance.verify_run), or None and why not.

    legacy=True reads logs without records (the authors' own, older trees) by the last-three-lines rule:
    the final test block ends the log (and, with check_resume, no resume file is left)."""
    if not legacy:
        run = P.verify_run(log_path)
        return run.raw, run.problem
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
    copied: bool = False          # logs and records copied out of their run folders into logs/ (no checkpoints)

    @property
    def name(self):
        return os.path.basename(os.path.normpath(self.folder))

    @property
    def log_dir(self):
        return os.path.join(self.folder, "logs" if self.copied else "log")

    @property
    def stem(self):
        return f"{self.dataset}-{self.rnn_type.upper()}"


def ratio_str(ratio):
    return str(float(ratio))


def ratio_label(ratio):
    """The authors' row label: str(ratio), except 0.5 which is written 0.50."""
    label = ratio_str(ratio)
    return label + "0" if float(ratio) == 0.5 else label


def copied_logs(folder):
    """Whether folder holds copied logs (logs/, as results/studies/*/) rather than a run folder's log/."""
    return not os.path.isdir(os.path.join(folder, "log")) and os.path.isdir(os.path.join(folder, "logs"))


def scan_logs(folder):
    """{dataset: (seeds, ratios)} from the names of log/*.log (or, for copied logs, logs/*.log)."""
    found = {}
    for path in glob.glob(os.path.join(folder, "logs" if copied_logs(folder) else "log", "*.log")):
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
                                      train_fallback=log_kind == "auto" and kind == "test", legacy=legacy,
                                      copied=copied_logs(folder)))
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
    diverged: bool = False        # shown as div, never a number, left out of the averages
    notes: list = field(default_factory=list)  # what the cell's marker says (protocol, --allow-unfinished, ...)
    record: dict = None

    @property
    def value(self):
        return None if self.raw is None else float(self.raw)

    @property
    def shown(self):
        return DIVERGED if self.diverged else MISSING if self.raw is None else self.raw


@dataclass
class Results:
    experiment: Experiment
    cells: dict = field(default_factory=dict)     # (model, ratio or None, seed) -> Cell
    row_notes: dict = field(default_factory=dict)  # (model, ratio) -> why its average is refused
    notes: list = field(default_factory=list)     # what the whole table says (legacy logs, record formats)

    def row(self, model, ratio=None):
        return [self.cells[(model, ratio, s)] for s in self.experiment.seeds]

    def problems(self):
        return [c for c in self.cells.values() if c.problem]

    def markers(self):
        """{note: letter} of every cell's and row's note, in the order of the table."""
        order, exp = {}, self.experiment
        keys = [(exp.rnn_type, None)] + [(m, r) for r in exp.ratios for m in ("ffs", "hybrid")] + [("snn", None)]
        for model, ratio in keys:
            for note in [n for c in self.row(model, ratio) for n in c.notes] + self.row_notes.get((model, ratio), []):
                order.setdefault(note, None)
        return {note: chr(ord("a") + i) if i < 26 else f"z{i - 25}" for i, note in enumerate(order)}

    def refused(self, model, ratio=None):
        return bool(self.row_notes.get((model, ratio)))


def log_path(exp, model, seed, ratio=None):
    """The log a cell is read from: <log_kind>_<name>.log, or with train_fallback the train_ log when there
    is no test_ log."""
    name = f"{exp.dataset}_{model}_{seed}" + ("" if ratio is None else f"_{ratio_str(ratio)}")
    path = os.path.join(exp.log_dir, f"{exp.log_kind}_{name}.log")
    train = os.path.join(exp.log_dir, f"train_{name}.log")
    return train if exp.train_fallback and not os.path.exists(path) and os.path.exists(train) else path


def cell_result(exp, path):
    return read_result(path, check_resume=os.path.basename(path).startswith("train_"), legacy=exp.legacy)


def run_log(exp, kind, name):
    return os.path.join(exp.log_dir, f"{kind}_{name}.log")


def from_run(run, notes=()):
    return Cell(run.raw, run.problem, run.log, run.diverged, list(notes), run.record)


def read_cell(exp, model, seed, ratio=None):
    """The cell of one run. Legacy trees: the last three lines of its log. Otherwise the training run's verified
    number (its train_ log ends with the final test); a re-test (test_ log) counts only as a test of that same
    checkpoint on the same data, fills the cell only where there is no training record at all (marked), and
    never hides the training number. --logs test reads the re-tests, bound the same way; --logs train and DVS
    Gesture the training runs only. A run whose parent changed after it is stale (NA, marked). A garbled record
    is one NA cell, never an exception."""
    if exp.legacy:
        path = log_path(exp, model, seed, ratio)
        return Cell(*cell_result(exp, path), path)
    name = result_name(exp, model, seed, ratio)
    try:
        cell = bound_cell(exp, name)
        if cell.raw is not None and cell.record.get("allow_unfinished"):
            cell.notes.append("selected from an Adaptation that was not a finished run (--allow-unfinished)")
        quick = {k: v for k, v in (cell.record or {}).get("config", {}).items()
                 if k in ("max_batches", "eval_batches") and v is not None} if cell.raw is not None else {}
        if quick:
            cell.notes.append("a quick run (" + ", ".join(f"--{k} {v}" for k, v in sorted(quick.items()))
                              + "): not the number of the full data")
        return cell
    except (RecursionError, TypeError, ValueError, KeyError, AttributeError, OverflowError) as e:
        return Cell(None, f"garbled record ({type(e).__name__})", run_log(exp, "train", name))


STALE = "stale: what it started from (its Adaptation, or the checkpoint it tested) changed after it"
UNCHECKED = "its data cannot be compared with its training run's (a record without a data digest)"


def same_data(test, train):
    return bool(P.data_sha(test.record)) and P.data_sha(test.record) == P.data_sha(train.record)


def bound_cell(exp, name):
    train = P.verify_run(run_log(exp, "train", name), exp.copied)
    stale = [STALE] if train.stale else []
    if exp.log_kind == "train":
        return from_run(train, stale)
    test_log = run_log(exp, "test", name)
    has_test = os.path.exists(runs.record_path(P.real_log(test_log))) or os.path.exists(test_log)
    test = P.verify_run(test_log, exp.copied) if has_test else None
    tested = test if test is not None and test.ok else None
    unbound = tested and train.ok and P.bound_to(tested.record, train.record)
    if not exp.train_fallback:  # --logs test: the re-tests, each bound to its training run
        if tested is None:
            return from_run(test or P.Run(test_log, problem="missing", exists=False))
        if unbound:
            return Cell(None, f"a re-test on {unbound} than its training run's", test_log, record=tested.record)
        if train.exists and not train.ok:
            return Cell(None, f"its training run: {train.problem}", test_log, notes=stale, record=tested.record)
        if not train.ok:
            return from_run(tested, ["from a re-test: no training record"])
        return from_run(tested, [] if same_data(tested, train) else [UNCHECKED])
    if train.ok:
        notes = []
        if unbound:
            notes.append(f"a re-test on {unbound} was ignored")
        elif tested and tested.raw != train.raw:
            notes.append(f"a re-test of the same checkpoint on the same data gives {tested.raw}"
                         if same_data(tested, train) else f"a re-test ({UNCHECKED}) was ignored")
        return from_run(train, notes)
    if not train.exists and tested is not None:
        return from_run(tested, ["from a re-test: no training record"])
    if not train.exists and test is not None:
        return from_run(test)
    return from_run(train, stale)


def collect(exp):
    res = Results(exp)
    keys = [(m, None) for m in (exp.rnn_type, "snn")] + [(m, r) for r in exp.ratios for m in ("ffs", "hybrid")]
    for model, ratio in keys:
        for seed in exp.seeds:
            res.cells[(model, ratio, seed)] = read_cell(exp, model, seed, ratio)
    if exp.copied:
        res.notes.append("read from copied logs and records (logs/): the checkpoints are not at hand; each number is "
                         "bound by its log's bytes and final number")
    if exp.legacy:
        res.notes.append("read without completion records (--legacy-logs): nothing binds these numbers to a "
                         "checkpoint, data or configuration")
    else:
        check_table(res, keys)
    return res


def _counted(res):
    return [(k, c) for k, c in res.cells.items() if c.raw is not None and c.record is not None]


def majority(groups):
    """The key held by more cells than any other, or None on a tie."""
    sizes = sorted((len(v) for v in groups.values()), reverse=True)
    if len(sizes) > 1 and sizes[0] == sizes[1]:
        return None
    return max(groups, key=lambda k: len(groups[k]))


def check_table(res, keys):
    """What the table mixes: data digests (a run on other data than the rest of its table is stale: NA), protocols
    (the minority marked; a row mixing them has no average) and number-changing configuration within a row
    (marked; no average); and the records of format 1 or upgraded without their data."""
    by_data = {}  # per protocol (a validation protocol may read other data than the test protocol)
    for k, c in _counted(res):
        if P.data_sha(c.record):
            by_data.setdefault(c.record.get("protocol"), {}).setdefault(P.data_sha(c.record), []).append(k)
    for groups in by_data.values():
        if len(groups) < 2:
            continue
        common = majority(groups)
        for sha, ks in groups.items():
            if sha == common:
                continue
            why = "stale: its data digest differs from the rest of its table" if common else \
                "stale: the table's runs read different data (no majority)"
            for k in ks:
                c = res.cells[k]
                res.cells[k] = Cell(None, f"{why} (data {sha[:12]})", c.log, notes=[why], record=c.record)
    by_protocol = {}
    for k, c in _counted(res):
        if c.record.get("protocol"):
            by_protocol.setdefault(c.record["protocol"], []).append(k)
    if len(by_protocol) > 1:
        common = majority(by_protocol)
        for protocol, ks in by_protocol.items():
            if protocol != common:
                for k in ks:
                    res.cells[k].notes.append(f"--protocol {protocol} (not the table's "
                                              f"{common if common else 'single protocol'})")
    for model, ratio in keys:
        row = [(s, res.cells[(model, ratio, s)]) for s in res.experiment.seeds]
        counted = [(s, c) for s, c in row if c.raw is not None and c.record is not None]
        protocols = {c.record.get("protocol") for _, c in counted}
        if len(protocols) > 1:
            res.row_notes.setdefault((model, ratio), []).append(
                "no average: the row mixes protocols " + ", ".join(sorted(map(str, protocols))))
        for fmt in (1, 2):
            configs = {}
            for s, c in counted:
                f, config = P.comparable_config(c.record)
                if f == fmt:
                    configs.setdefault(json_key(config), []).append((s, config))
            if len(configs) > 1:
                common = majority(configs)
                every = [config for members in configs.values() for _, config in members]
                varying = sorted(k for k in set().union(*every) if len({json_key(c.get(k)) for c in every}) > 1)
                for key, members in configs.items():
                    if key == common:
                        continue
                    for s, config in members:
                        shown = ", ".join(f"{k}={config.get(k)}" for k in varying)
                        res.cells[(model, ratio, s)].notes.append(f"configuration differs from the rest of its row: {shown}")
                res.row_notes.setdefault((model, ratio), []).append("no average: the row mixes configurations")
    counted = _counted(res)
    old = sum(1 for _, c in counted if P.record_format(c.record) == 1)
    if old:
        res.notes.append(f"{old} of {len(counted)} numbers have records of format 1: their data and parent are not "
                         "bound (tools/upgrade-records.py upgrades them)")
    unbound = sum(1 for _, c in counted if P.record_format(c.record) == 2 and not P.data_sha(c.record))
    if unbound:
        res.notes.append(f"{unbound} of {len(counted)} numbers have records without a data digest (upgraded where "
                         "the data was not at hand): their data is not compared")


def json_key(config):
    return json.dumps(config, sort_keys=True, default=str)


def row_stats(cells, refused=False):
    """(mean, population variance, n) of the usable values; mean and variance None when there are none or the
    average is refused (a row mixing protocols or configurations). Diverged and NA cells are left out."""
    if refused:
        return None, None, sum(1 for c in cells if c.value is not None)
    values = [c.value for c in cells if c.value is not None]
    if not values:
        return None, None, 0
    avg = sum(values) / len(values)
    return avg, sum((v - avg) ** 2 for v in values) / len(values), len(values)


def result_name(exp, model, seed, ratio=None):
    return f"{exp.dataset}_{model}_{seed}" + ("" if ratio is None else f"_{ratio_str(ratio)}")
