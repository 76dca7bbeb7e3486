"""What a table cell may show: a run's record read without trusting it (docs/records.md).

load_record never raises: a record that is not JSON, too deeply nested, not an object, of the wrong types or
whose digest does not match is one problem line. verify_run checks one log and its record (status, digest,
identity, format, log and checkpoint bytes, parent, final number: common.runs does the checks of a run folder,
this module reads copied logs and linked runs too); bound_to checks a re-test against its training run.
"""
import json
import os
from datetime import datetime

from common import runs

# configuration keys never compared between runs: the flags that cannot change a number, and the data folder
# (bound by the data digest instead)
NOT_COMPARED = runs.NEUTRAL_FLAGS + runs.BOUND_BY_DIGEST
MAX_RECORD_BYTES = 1 << 22


# -- one record, read without trusting it ----------------------------------------------------------------
def _facts(v):
    return v is None or (isinstance(v, dict) and isinstance(v.get("path"), str) and type(v.get("size")) is int
                         and isinstance(v.get("sha256"), str))


def _optional(*types):
    return lambda v: v is None or (isinstance(v, types) and not isinstance(v, bool))


def _text(v):
    return v is None or isinstance(v, str)


def _data(v):
    return v is None or (isinstance(v, dict) and _text(v.get("sha256")) and isinstance(v.get("parts", {}), dict)
                         and all(isinstance(k, str) and isinstance(p, str) for k, p in v.get("parts", {}).items()))


def _parent(v):
    return v is None or (isinstance(v, dict) and _text(v.get("role")) and _text(v.get("name"))
                         and _facts(v.get("checkpoint")) and _text(v.get("record_sha256")))


def _plain(x, depth=4):
    """A JSON value nested at most `depth` deep (a configuration value: a number, a string, a list, ...)."""
    if x is None or isinstance(x, (str, int, float, bool)):
        return True
    if depth == 0:
        return False
    if isinstance(x, list):
        return all(_plain(v, depth - 1) for v in x)
    return isinstance(x, dict) and all(isinstance(k, str) and _plain(v, depth - 1) for k, v in x.items())


def _config(v):
    return v is None or (isinstance(v, dict) and _plain(v))


FIELDS = {  # what each field may hold; a record with any other shape is garbled
    "format": lambda v: v is None or (type(v) is int), "status": lambda v: isinstance(v, str),
    "name": lambda v: isinstance(v, str), "kind": _text, "mode": _text, "dataset": _text, "model": _text,
    "seed": lambda v: v is None or type(v) is int, "ratio": _optional(int, float), "stage": _text,
    "metric": _text, "value": _optional(int, float), "test_line": _text,
    "diverged": lambda v: v is None or (isinstance(v, dict) and _optional(int)(v.get("epoch")) and _text(v.get("what"))),
    "error": _text, "protocol": _text, "config": _config, "data": _data, "parent": _parent,
    "checkpoint": _facts, "log": _facts,
    "argv": lambda v: v is None or (isinstance(v, list) and all(isinstance(a, str) for a in v)),
    "allow_unfinished": lambda v: v is None or isinstance(v, bool), "unfinished_adaptation": _text,
    "finished_at": _text, "digest": lambda v: isinstance(v, str),
    "upgraded": lambda v: v is None or (isinstance(v, dict) and _optional(int)(v.get("from_format"))),
}


def load_record(path, copied=False):
    """(record, problem) of a record file; never raises. copied: a record of format 1 copied out of its run
    folder (common.runs.copy_record made its paths relative, so its digest cannot match) is read without it."""
    base = os.path.basename(path)
    try:
        if os.path.getsize(path) > MAX_RECORD_BYTES:
            return None, f"record {base} is garbled (larger than any record)"
        with open(path, "rb") as f:
            record = json.loads(f.read().decode("utf-8"))
        if not isinstance(record, dict):
            return None, f"record {base} is garbled (not a JSON object)"
        bad = [k for k, ok in FIELDS.items() if not ok(record.get(k))]
        if bad:
            return None, f"record {base} is garbled (wrong type in {', '.join(bad)})"
        if record.get("format") not in (None, 2):
            return None, f"record {base} has format {record['format']}, which this version does not read"
        if record["digest"] != runs.record_digest(record) and not (copied and record_format(record) == 1):
            return None, f"record {base} is damaged (its digest does not match)"
    except OSError as e:
        return None, f"record {base} is unreadable ({e.strerror})"
    except (ValueError, RecursionError, TypeError, UnicodeDecodeError, OverflowError, AttributeError) as e:
        return None, f"record {base} is garbled ({type(e).__name__})"
    return record, None


def record_format(record):
    return record.get("format") or 1


# -- identity ---------------------------------------------------------------------------------------------
def argv_value(argv, flag):
    """The value given to --flag in a command line (the last one), or None."""
    value = None
    for i, word in enumerate(argv or []):
        if word == flag and i + 1 < len(argv):
            value = argv[i + 1]
        elif word.startswith(flag + "="):
            value = word.split("=", 1)[1]
    return value


def identity_problem(record, file_name):
    """Why the record does not name the run of file log/<kind>_<name>.json, or None: its name field, the name
    derived from its own fields and from its command line (or resolved configuration) must all be <name>."""
    m = runs.LOG_NAME.match(file_name[:-len(".json")] + ".log")
    if not m:
        return f"record file name {file_name} names no run"
    kind, name = m.group(1), file_name[len(m.group(1)) + 1:-len(".json")]
    dataset = name.split("_")[0]
    problem = runs.identity_problem(record, os.path.join("log", file_name[:-len(".json")] + ".log"))
    if problem:
        return problem
    config = record.get("config") or {}
    argv = record.get("argv") or []
    for key, field_value in (("seed", record.get("seed")), ("model", record.get("model")),
                             ("ratio", record.get("ratio")), ("mode", record.get("mode"))):
        said = [v for v in (field_value, config.get(key), argv_value(argv, f"--{key}")) if v is not None]
        if key in ("seed", "ratio"):
            try:
                said = [float(v) for v in said]
            except ValueError:
                return f"record {file_name} has a garbled --{key}"
        if len(set(map(str, said))) > 1:
            return f"record {file_name} disagrees with itself about its {key} ({', '.join(map(str, said))})"
    mode = record.get("mode") or config.get("mode") or argv_value(argv, "--mode")
    if mode and runs.log_kind(mode) != kind:
        return f"record {file_name} is of a {mode} run, not a {kind} run"
    model = record.get("model") or config.get("model") or argv_value(argv, "--model")
    seed = record.get("seed") if record.get("seed") is not None else config.get("seed", argv_value(argv, "--seed"))
    ratio = record.get("ratio") if record.get("ratio") is not None else config.get("ratio", argv_value(argv, "--ratio"))
    if record.get("dataset") not in (None, dataset):
        return f"record {file_name} is of dataset {record['dataset']}"
    if model is not None and seed is not None and mode:
        try:
            derived = runs.run_name(dataset, model, int(float(seed)), ratio if ratio is not None else 0.5, mode)
        except (TypeError, ValueError):
            return f"record {file_name} has a garbled seed or ratio"
        if derived != name:
            return f"record {file_name} was written by the run {derived}, not {name}"
    elif record_format(record) == 2:
        return f"record {file_name} does not say its model, seed and mode"
    return None


# -- one run: its log and record --------------------------------------------------------------------------
class Run:
    """What verify_run found: raw (the number) or problem, diverged, and the record when it could be read."""

    def __init__(self, log, raw=None, problem=None, record=None, diverged=False, exists=True, stale=False):
        self.log, self.raw, self.problem, self.record, self.diverged = log, raw, problem, record, diverged
        self.exists, self.stale = exists, stale  # exists: it has a record; stale: its parent changed after it

    @property
    def ok(self):
        return self.raw is not None and self.problem is None


def real_log(log):
    """A linked log (a run shared from another folder) is verified where it lives: beside its checkpoint."""
    return os.path.realpath(log) if os.path.islink(log) else log


def verify_run(log, copied=False):
    """Run(log, ...): the run's number when its record is readable, of format 2, finished, names itself, still
    matches its log and checkpoint, and its parent is still the checkpoint it started from (else stale); diverged
    when its record says so; otherwise the problem. copied: a log and record copied out of their run folder
    (results/studies/*/logs/), whose checkpoints are not at hand: bound by the log's bytes and final number, and
    the parent by the Adaptation record beside it."""
    real = real_log(log)
    rec_path = runs.record_path(real)
    if not os.path.exists(rec_path):
        if not os.path.exists(real):
            return Run(log, problem="missing", exists=False)
        return Run(log, problem="no completion record (the run did not finish, or it predates records: "
                                "--legacy-logs reads it)", exists=False)
    record, problem = load_record(rec_path, copied)
    if problem:
        return Run(log, problem=problem)
    problem = identity_problem(record, os.path.basename(runs.record_path(log)))
    if problem:
        return Run(log, problem=problem, record=record)
    if record_format(record) == 1 and not copied:
        return Run(log, problem="its record predates format 2 (it binds no configuration, data or parent): upgrade it "
                                "with python tools/upgrade-records.py", record=record)
    status = record["status"]
    if status == "diverged":
        if isinstance(record.get("log"), dict) and not same_file(record["log"], real):
            return Run(log, problem="the log changed since the run diverged", record=record)
        return Run(log, problem=runs.status_problem(record), record=record, diverged=True)
    if status != "finished":
        return Run(log, problem=runs.status_problem(record), record=record)
    if not copied:  # a run folder: common.runs.verify checks checkpoint, parent, log and number
        raw, _, problem = runs.verify(real, bind_test=False)  # re-tests are bound, and marked, by the caller
        return Run(log, raw=raw if problem is None else None, problem=problem, record=record,
                   stale=bool(problem) and problem.startswith("stale"))
    _, name, _ = runs.run_of_log(real)
    if record.get("mode") == "train2":
        problem = stale_parent(record, os.path.dirname(real), runs.run_name(name.split("_")[0], "hybrid",
                                                                            int(name.split("_")[2])))
        if problem:
            return Run(log, problem=problem, record=record, stale=True)
    raw, problem = runs.logged_metric(record, real)
    return Run(log, raw=raw, problem=problem, record=record)


_hashes = {}


def sha256_of(path):
    """The SHA-256 of a file, computed once per (path, size, mtime)."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in _hashes:
        _hashes[key] = runs.file_facts(path)["sha256"]
    return _hashes[key]


def same_file(facts, path):
    return isinstance(facts, dict) and os.path.exists(path) and os.path.getsize(path) == facts.get("size") \
        and sha256_of(path) == facts.get("sha256")


# -- links between records --------------------------------------------------------------------------------
def data_sha(record):
    return (record.get("data") or {}).get("sha256") if record else None


def parent_sha(record):
    """The checkpoint digest a record names as its parent (format 2), or None."""
    return (((record or {}).get("parent") or {}).get("checkpoint") or {}).get("sha256")


def bound_to(test, trained):
    """Why the verified re-test record `test` is not a test of the verified training record `trained` on the same
    data, or None. A format-1 re-test is bound by the checkpoint bytes it recorded; its data cannot be checked."""
    tested = parent_sha(test) if record_format(test) == 2 else (test.get("checkpoint") or {}).get("sha256")
    if tested != (trained.get("checkpoint") or {}).get("sha256"):
        return "other checkpoint"
    if data_sha(test) and data_sha(trained) and data_sha(test) != data_sha(trained):
        return "other data"
    return None


def _time(text):
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")
    except (TypeError, ValueError):
        return None


def stale_parent(record, log_dir, adaptation_name, copied=True):
    """For copied logs (no checkpoints at hand; common.runs.parent_problem reads run folders): why a Selection +
    Restoration is stale, or None. Its Adaptation's record beside it must name the checkpoint it started from (a
    record of format 1, without a parent: the Adaptation must have finished before it)."""
    path = runs.record_path(real_log(os.path.join(log_dir, f"train_{adaptation_name}.log")))
    adaptation = load_record(path, copied)[0] if os.path.exists(path) else None
    named = parent_sha(record)
    if record_format(record) == 2:
        if named is None and not record.get("allow_unfinished"):
            return "stale: its record names no Adaptation checkpoint it started from"
        current = ((adaptation or {}).get("checkpoint") or {}).get("sha256")
        return "stale: its Adaptation changed after it" if named and current and current != named else None
    then, adapted = _time(record.get("finished_at")), _time((adaptation or {}).get("finished_at"))
    if then is not None and adapted is not None and adapted > then:
        return "stale: its Adaptation finished after it (trained again)"
    return None


def comparable_config(record):
    """(format, the number-changing configuration) of a record: format 2 its resolved configuration, format 1
    the flags of its command line, both without the neutral flags and the run's identity."""
    skip = set(NOT_COMPARED) | {"seed", "protocol", "mode", "model", "ratio"}
    if record_format(record) == 2 and isinstance(record.get("config"), dict):
        return 2, {k: v for k, v in record["config"].items() if k not in skip}
    flags = {}
    for group in runs.flag_groups((record.get("argv") or [])[1:]):
        key = group[0].lstrip("-").replace("-", "_")
        if key not in skip:
            flags[key] = " ".join(group[1:]) or True
    return 1, flags
