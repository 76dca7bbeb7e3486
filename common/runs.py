"""The files of one run and the completion record that says it finished.

A run is named <ds>_<model>_<seed>[_<ratio>] and, relative to its experiment folder, writes
log/<train|test>_<name>.log, checkpoint/<name>.t7 (and checkpoint/<name>.resume.t7 while unfinished) and,
as the very last act of a command, the record log/<train|test>_<name>.json (format 2, docs/records.md): its
status (finished, diverged, failed), its identity, its resolved configuration, a digest of the data it read,
the checkpoint it started from (its parent), the final metric exactly as the log's final test block shows it,
the sizes and SHA-256 of the log and the checkpoint at that moment, the command line, the kit's version, the
device, wall time and peak memory. A run counts as finished only when its record says so, names itself, still
matches its log and checkpoint, and its parent is still the checkpoint it started from.

One process works on a run at a time: begin() takes an advisory lock on checkpoint/<name>.lock, held until the
process ends (or end() releases it), so two launchers, two shells, or a launcher and a hand-run meet it.
"""
import errno
import fcntl
import hashlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time

from common import datadigest
from common.errors import KitError, RunInUse
from common.fileio import write_atomic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STARTED = time.time()
NAME = r"([A-Za-z0-9]+)_(rnn|lstm|snn|ffs|hybrid)_(\d+)(?:_(\d*\.?\d+(?:[eE][-+]?\d+)?))?"
LOG_NAME = re.compile(rf"^(train|test)_{NAME}\.log$")
TEST_RULES = ("=" * 89, "=" * 83)
FORMAT = 2
# Flags (by dest) that cannot change a run's numbers: recorded, never compared (resume, "done with other flags").
# The data folder is bound by the data digest instead, the execution path by the tests of every fast path.
NEUTRAL_FLAGS = ("gpu", "device", "cuda", "threads", "overwrite", "allow_unfinished", "yes", "log_interval",
                 "execution", "definition")
BOUND_BY_DIGEST = ("data",)  # the data folder: a resumed run may read the same data from elsewhere
IGNORED_FLAGS = tuple(f"--{spelling}" for dest in NEUTRAL_FLAGS for spelling in {dest, dest.replace("_", "-")})
_final = {}  # what this process has logged and used: the last test line, an unfinished Adaptation
_run = {}    # the command this process works on (begin): args, name, dataset, parent, lock


# -- names and paths --------------------------------------------------------------------------------
def run_name(dataset, model, seed, ratio=None, mode="train1"):
    """<ds>_<model>_<seed>, plus _<ratio> for ffs and for the restored hybrid (train2/test2)."""
    name = f"{dataset}_{model}_{seed}"
    return name + (f"_{float(ratio)}" if model == "ffs" or mode in ("train2", "test2") else "")


def log_kind(mode):
    return "train" if mode.startswith("train") else "test"


def checkpoint_path(name, folder=""):
    return os.path.join(folder, "checkpoint", f"{name}.t7")


def resume_path(checkpoint):
    return checkpoint[:-3] + ".resume.t7"


def log_path(name, kind, folder=""):
    return os.path.join(folder, "log", f"{kind}_{name}.log")


def record_path(log):
    return log[:-len(".log")] + ".json"


def unfinished_by_record(log):
    """For a log copied out of its run folder: True when a completion record beside it says the run did not
    finish. (A copied record of format 1 has its paths made relative, see copy_record, so no digest is checked here.)"""
    if not os.path.exists(record_path(log)):
        return False
    with open(record_path(log)) as f:
        return json.load(f).get("status") != "finished"


def copy_record(src, dst):
    """Copy a completion record with its paths made relative to the repository (experiments/..., studies/...),
    so that no path of the machine that ran it is kept. An intact record of format 2 is digested again after the
    change and says so ("copied": true); any other (a damaged one, or format 1) keeps its digest as it was."""
    with open(src) as f:
        text = f.read()
    relative = re.sub(r'"/[^"]*?/((?:experiments|studies)/)', r'"\1', text)
    try:
        record = json.loads(text)
        intact = isinstance(record, dict) and record.get("format") == FORMAT and record.get("digest") == record_digest(record)
    except ValueError:
        intact = False
    if intact:
        record = dict(json.loads(relative), copied=True)
        record["digest"] = record_digest(record)
        relative = json.dumps(record, indent=1) + "\n"
    with open(dst, "w") as f:
        f.write(relative)


def run_of_log(log):
    """(kind, name, checkpoint path) of log/<kind>_<name>.log."""
    folder, base = os.path.split(log)
    kind, name = base[:-len(".log")].split("_", 1)
    return kind, name, checkpoint_path(name, os.path.dirname(folder))


# -- the final test block ---------------------------------------------------------------------------
def log_test_block(logger, line, width):
    """The three lines the aggregator reads at the end of every train and test log; a non-finite number in them
    stops the run as diverged (Diverged), after they are logged."""
    logger.info("=" * width)
    logger.info(line)
    logger.info("=" * width)
    _final["line"] = line
    for word in line.replace("|", " ").split():
        if word.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise Diverged(_final.get("epoch", 0), f"the final test: {line.strip('| ')}")


def new_run():
    _final.clear()


def tail_lines(path, n=3, max_bytes=16384):
    """The last n non-empty lines of a text file (reads only its end)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - max_bytes))
        text = f.read().decode("utf-8", errors="replace")
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()][-n:]


def final_metric(log):
    """(raw value string, problem) of the final test block that ends the log."""
    if not os.path.exists(log):
        return None, "missing"
    try:
        lines = tail_lines(log)
    except OSError as e:
        return None, f"unreadable ({e.strerror})"
    if not (len(lines) == 3 and lines[0].strip() in TEST_RULES and lines[2].strip() == lines[0].strip()
            and lines[1].startswith("| Performance on Test Set")):
        return None, "unfinished (no final test block)"
    raw = lines[1].split(" ")[-1].strip()
    try:
        value = float(raw)
    except ValueError:
        return None, f"garbled value {raw!r}"
    if not math.isfinite(value):
        return None, f"non-finite value {raw!r}"
    return raw, None


# -- the completion record --------------------------------------------------------------------------
def file_facts(path):
    """{"path", "size", "sha256"} of a file."""
    return {"path": path, "size": os.path.getsize(path), "sha256": datadigest.file_sha256(path)}


def kit_version():
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def peak_memory():
    """(peak main memory in MiB of this process, peak GPU memory allocated by PyTorch in MiB or None)."""
    import resource
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 1024 ** 2)
    gpu = None
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        gpu = torch.cuda.max_memory_allocated() / 2 ** 20
    return round(rss, 1), None if gpu is None else round(gpu, 1)


STAGES = {("hybrid", "train1"): "adaptation", ("hybrid", "train2"): "selection+restoration",
          ("hybrid", "test2"): "test of the restored network"}


def _execution():
    from common import execution  # not at the top: the launcher reads records without importing torch
    return execution.current()


# -- the command this process works on ---------------------------------------------------------------
def config_of(args):
    """The resolved configuration: every flag after defaults, as JSON values."""
    return json.loads(json.dumps(vars(args), sort_keys=True, default=repr))


def config_difference(then, now):
    """'--flag A -> B' for every flag that can change numbers and differs between two configurations."""
    skip = NEUTRAL_FLAGS + BOUND_BY_DIGEST
    keys = sorted(k for k in set(then) & set(now) if k not in skip and then[k] != now[k])
    return [f"--{k} {then[k]} -> {now[k]}" for k in keys]


def lock_path(name, folder=""):
    return os.path.join(folder, "checkpoint", f"{name}.lock")


def _take_lock(path, name):
    """The open, locked file descriptor of `path` (RunInUse names the holder)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as e:
        raise KitError(f"cannot open the lock file {path} ({e.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
            raise RunInUse(f"run {name} is in use by process {holder} (lock {path}); wait for it to end, "
                           "or stop that process") from None
        raise
    return fd


def refuse_if_in_use(name, folder=""):
    """Fail at once when another process holds the run's lock (creates nothing: bad input leaves no file)."""
    path = lock_path(name, folder)
    if os.path.exists(path) and not os.path.islink(path):
        os.close(_take_lock(path, name))


def begin(args, dataset, name, folder=""):
    """Start working on run `name`, before any of its files is written or read to resume it: take its lock
    (RunInUse names the holder; held until end() or the process's end, however it ends) and remember the command
    for its record."""
    end()
    os.makedirs(os.path.dirname(lock_path(name, folder)) or ".", exist_ok=True)
    fd = _take_lock(lock_path(name, folder), name)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _run.update(args=args, dataset=dataset, name=name, folder=folder, lock=fd, parent=None)


def end():
    """Release the run's lock (the process's exit does it too, whatever ends it)."""
    fd = _run.pop("lock", None)
    _run.clear()
    if fd is not None:
        os.close(fd)


def current_name():
    return _run.get("name")


def note_epoch(epoch):
    _final["epoch"] = epoch


def write_failed(message):
    """The record of a command that began writing its log and then failed (never over a finished train run's
    record); a command refused before it wrote anything leaves no record."""
    try:
        log = log_path(_run["name"], log_kind(_run["args"].mode), _run.get("folder", ""))
        record, _ = load_record(log)
        if os.path.exists(log) and not (record and record.get("status") == "finished" and record.get("kind") == "train"):
            write_record("failed", error=message)
    except Exception:  # noqa: BLE001 -- the original error is what the user must see
        pass


def set_parent(role, name, checkpoint, folder=""):
    """The checkpoint this command starts from: "adaptation" (train2) or "trained" (test1/test2), with the digest
    of that run's record file when it has one."""
    record = record_path(log_path(name, "train", folder))
    _run["parent"] = {"role": role, "name": name, "checkpoint": file_facts(checkpoint),
                      "record_sha256": file_facts(record)["sha256"] if os.path.exists(record) else None}


def binding():
    """What a resume point must agree with: the resolved configuration, the data digest and the parent."""
    args = _run.get("args")
    return {"config": None if args is None else config_of(args), "data": datadigest.current()["sha256"],
            "parent": _run.get("parent")}


def check_resume(then):
    """None when an interrupted run may continue under this command; else why not (one line)."""
    if not isinstance(then, dict) or then.get("config") is None:
        return None  # a resume point of an earlier version: nothing to compare
    now = binding()
    changed = config_difference(then["config"], now["config"])
    if changed:
        return f"the run was started with other flags ({'; '.join(changed)})"
    if then.get("data") and now["data"] and then["data"] != now["data"]:
        return "the run was started on other data (the data digest differs)"
    if then.get("parent"):
        _run["parent"] = then["parent"]
    return None


# -- divergence ---------------------------------------------------------------------------------------
class Diverged(Exception):
    """A non-finite loss, metric or weight: the run stops and its record says diverged."""

    def __init__(self, epoch, what):
        super().__init__(f"diverged at epoch {epoch}: {what}")
        self.epoch, self.what = epoch, what


def check_finite(epoch, **values):
    """Raise Diverged naming the first value (loss, metric, ...) that is not a finite number."""
    for what, value in values.items():
        if value is not None and not math.isfinite(float(value)):
            raise Diverged(epoch, f"{what.replace('_', ' ')} {value}")


def safe_exp(x):
    """math.exp of a loss that may be huge: inf instead of OverflowError."""
    return math.exp(x) if x < 709.0 else float("inf")


# -- the record ---------------------------------------------------------------------------------------
def finish_run(args, name, device=None):
    """The last call of a successful train or test command: write the record (finished), then remove the run's
    resume file (a run killed before this point resumes, even in its final test)."""
    write_record("finished", args, name, device)


def write_record(status, args=None, name=None, device=None, **extra):
    """Write the run's record atomically; a finished or diverged train run's resume file goes."""
    args, name = args or _run.get("args"), name or _run.get("name")
    kind = log_kind(args.mode)
    log, checkpoint = log_path(name, kind), checkpoint_path(name)
    line = _final.get("line") if status == "finished" else None
    raw = None if line is None else line.split(" ")[-1].strip()
    rss, gpu = peak_memory()
    parent = _run.get("parent") if _run.get("name") == name else None
    record = {
        "format": FORMAT, "status": status, "name": name, "kind": kind, "mode": args.mode,
        "dataset": _run.get("dataset") if _run.get("name") == name else None, "model": args.model,
        "seed": getattr(args, "seed", None),
        "ratio": float(args.ratio) if args.model == "ffs" or args.mode in ("train2", "test2") else None,
        "stage": STAGES.get((args.model, args.mode), "training" if kind == "train" else "test"),
        "metric": raw, "value": None if raw is None else float(raw), "test_line": line,
        "protocol": getattr(args, "protocol", None),
        "config": config_of(args), "data": datadigest.current(), "parent": parent,
        "checkpoint": file_facts(checkpoint) if os.path.exists(checkpoint) else None,
        "log": file_facts(log) if os.path.exists(log) else None,
        "argv": list(sys.argv), "kit_version": kit_version(), "device": str(device) if device is not None else None,
        "execution": _execution(),
        "wall_s": round(time.time() - STARTED, 3), "peak_rss_mb": rss, "peak_gpu_mb": gpu,
        "allow_unfinished": bool(getattr(args, "allow_unfinished", False)),
        "unfinished_adaptation": _final.get("unfinished_adaptation"),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }
    record["digest"] = record_digest(record)
    write_atomic(record_path(log), lambda f: (json.dump(record, f, indent=1), f.write("\n")), "w")
    if kind == "train" and status in ("finished", "diverged") and os.path.exists(resume_path(checkpoint)):
        os.remove(resume_path(checkpoint))


def record_digest(record):
    """SHA-256 of a record's other fields: a record damaged in any field is not trusted."""
    return hashlib.sha256(json.dumps({k: v for k, v in record.items() if k != "digest"}, sort_keys=True).encode()).hexdigest()


def load_record(log):
    """(record, problem): the record beside `log` as written, whatever its status; problem when it is missing,
    unreadable, malformed or damaged (record None then)."""
    path = record_path(log)
    if not os.path.exists(path):
        return None, "no completion record (the run did not finish, or it predates records: --legacy-logs reads it)"
    try:
        with open(path) as f:
            record = json.load(f)
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        if record.get("digest") != record_digest(record):
            return None, f"completion record {os.path.basename(path)} is damaged (its digest does not match)"
    except (OSError, ValueError, RecursionError, TypeError) as e:
        return None, f"completion record {os.path.basename(path)} unreadable ({type(e).__name__})"
    return record, None


def status_problem(record):
    """Why a record's run does not count by its status, or None for a finished run."""
    status = record.get("status")
    if status == "finished":
        return None
    if status == "diverged":
        d = record.get("diverged") if isinstance(record.get("diverged"), dict) else {}
        return f"diverged at epoch {d.get('epoch', '?')} ({d.get('what', 'non-finite value')})"
    if status == "failed":
        return f"failed ({record.get('error', 'no reason recorded')})"
    return f"completion record says {status!r}, not finished"


def read_record(log):
    """(record, problem) of a finished run that wrote `log`; record None unless it finished."""
    record, problem = load_record(log)
    if problem is None:
        problem = status_problem(record)
    return (None, problem) if problem else (record, None)


def same_file(facts, path):
    return isinstance(facts, dict) and os.path.exists(path) and os.path.getsize(path) == facts.get("size") \
        and file_facts(path)["sha256"] == facts.get("sha256")


def identity_problem(record, log):
    """Why a record does not name the run whose file it is, or None."""
    _, name, _ = run_of_log(log)
    if record.get("name") != name:
        return f"its record names run {record.get('name')!r}, not {name} (copied or renamed files)"
    config = record.get("config")
    if isinstance(config, dict) and record.get("dataset"):
        derived = run_name(record["dataset"], config.get("model"), config.get("seed"), config.get("ratio"),
                           config.get("mode"))
        if derived != name:
            return f"its record's configuration is run {derived}'s, not {name}'s"
    return None


def parent_problem(record, log):
    """Why a record's parent is no longer the checkpoint it started from, or None. The parent's checkpoint on disk
    is compared where it exists, else the checkpoint its record names (logs copied without checkpoints)."""
    parent = record.get("parent")
    if not isinstance(parent, dict):
        return None
    folder = os.path.dirname(os.path.dirname(log))
    then = (parent.get("checkpoint") or {}).get("sha256")
    path = checkpoint_path(parent.get("name", ""), folder)
    what = "its Adaptation" if parent.get("role") == "adaptation" else "the checkpoint it tested"
    if os.path.exists(resume_path(path)):
        return f"stale: {what} ({os.path.basename(path)}) is being trained again (its resume file exists)"
    if os.path.exists(path):
        if file_facts(path)["sha256"] != then:
            return f"stale: {what} ({os.path.basename(path)}) changed after this run started from it"
        return None
    parent_record, _ = load_record(log_path(parent.get("name", ""), "train", folder))
    if parent_record is not None and (parent_record.get("checkpoint") or {}).get("sha256") != then:
        return f"stale: {what} ({parent.get('name')}) was trained again after this run started from it"
    if parent_record is not None and parent.get("role") == "adaptation":
        ours, theirs = (record.get("data") or {}).get("sha256"), (parent_record.get("data") or {}).get("sha256")
        if ours and theirs and ours != theirs:
            return "stale: it ran on other data than its Adaptation (the data digests differ)"
    return None


def verify(log, check_log=True, bind_test=True):
    """(raw metric, record, problem): the run's number when its record says finished, names this run, still
    matches its log (same bytes, same final number) and its checkpoint (same bytes, no resume file left), and
    its parent is still the checkpoint it started from; a test also tested its training run's checkpoint on its
    data (bind_test=False leaves that to the caller: the aggregator marks such re-tests). A malformed record is a
    problem, never an exception."""
    try:
        return _verify(log, check_log, bind_test)
    except (TypeError, AttributeError, ValueError, KeyError, RecursionError) as e:
        return None, None, f"completion record {os.path.basename(record_path(log))} is malformed ({type(e).__name__})"


def _verify(log, check_log, bind_test):
    if os.path.islink(log):  # a run shared from another folder (a linked log) is checked where it lives
        log = os.path.realpath(log)
    kind, _, checkpoint = run_of_log(log)
    if kind == "train" and os.path.exists(resume_path(checkpoint)):
        return None, None, "unfinished (resume file present: training in progress or interrupted)"
    record, problem = load_record(log)
    if problem:
        return None, None, problem
    problem = status_problem(record) or identity_problem(record, log)
    if problem:
        return None, record, problem
    if record.get("format") != FORMAT:
        return None, record, "its record predates format 2 (it binds no configuration, data or parent): " \
                             "upgrade it with python tools/upgrade-records.py"
    if not os.path.exists(checkpoint):
        return None, record, f"its checkpoint {os.path.basename(checkpoint)} is missing"
    if not same_file(record.get("checkpoint"), checkpoint):
        return None, record, f"its checkpoint {os.path.basename(checkpoint)} was replaced or changed since the run finished"
    if kind == "test" and bind_test:  # a test of a checkpoint that changed since its training finished: no number
        trained, _ = read_record(log_path(run_of_log(log)[1], "train", os.path.dirname(os.path.dirname(log))))
        if trained is not None and trained.get("checkpoint", {}).get("sha256") != record["checkpoint"].get("sha256"):
            return None, record, f"it tested {os.path.basename(checkpoint)} after it changed since its training finished"
        ours, theirs = (record.get("data") or {}).get("sha256"), ((trained or {}).get("data") or {}).get("sha256")
        if ours and theirs and ours != theirs:
            return None, record, "a re-test on other data than the training's (the data digests differ)"
    problem = parent_problem(record, log)
    if problem:
        return None, record, problem
    if not check_log:
        return record.get("metric"), record, None
    raw, problem = logged_metric(record, log)
    return raw, record, problem


def logged_metric(record, log):
    """(raw metric, problem): the number of a finished run's log when the log is still the one its record names
    (same bytes) and its final number is the record's."""
    if not same_file(record.get("log"), log):
        return None, "the log changed since the run finished (appended to or edited)"
    raw, problem = final_metric(log)
    if problem:
        return None, problem
    if raw != record.get("metric"):
        return None, f"the log's final number {raw} differs from its record's {record.get('metric')}"
    return raw, None


# -- Selection needs a finished Adaptation ------------------------------------------------------------
def adaptation_problem(checkpoint):
    """Why the Adaptation checkpoint is not a finished run's, or None."""
    if os.path.exists(resume_path(checkpoint)):
        return f"{resume_path(checkpoint)} exists: its training was interrupted or is still running"
    log = log_path(os.path.basename(checkpoint)[:-3], "train", os.path.dirname(os.path.dirname(checkpoint)))
    if not os.path.exists(checkpoint):  # the loader names the missing file, unless a record says why it is missing
        record, _ = load_record(log)
        return None if record is None else status_problem(record)
    _, _, problem = verify(log, check_log=False)
    return problem


def require_finished_adaptation(checkpoint, args, logger, command):
    """train2 starts only from a finished Adaptation run (`command` makes it); --allow-unfinished uses it
    anyway, and the log and the record say so."""
    why = adaptation_problem(checkpoint)
    if why is None:
        return
    if not getattr(args, "allow_unfinished", False):
        raise KitError(f"the Adaptation checkpoint {checkpoint} is not a finished run ({why}). Finish it first with: "
                       f"{command} (an interrupted run resumes), or pass --allow-unfinished to select "
                       "from it anyway (also needed for the authors' own checkpoints, which have no record)")
    logger.info(f"using the Adaptation checkpoint {checkpoint} although it is not a finished run ({why}): --allow-unfinished")
    _final["unfinished_adaptation"] = why


# -- the launcher's view ----------------------------------------------------------------------------
def flag_groups(argv):
    """The flags of a command line (without the script) as sorted tuples (flag, values...), leaving out
    flags that do not change the result (--gpu, --device, --overwrite, ...)."""
    groups = []
    for word in argv:
        if word.startswith("--"):
            groups.append([word.split("=", 1)[0]] + ([word.split("=", 1)[1]] if "=" in word else []))
        elif groups:
            groups[-1].append(word)
    return sorted(tuple(g) for g in groups if g[0] not in IGNORED_FLAGS)


def changed_flags(record, argv):
    """'' when the record's command line has the same flags as argv (both without the interpreter), else a
    short description of the difference."""
    then, now = flag_groups(record.get("argv", [])[1:]), flag_groups(argv[1:])
    if then == now:
        return ""
    gone = [" ".join(g) for g in then if g not in now]
    new = [" ".join(g) for g in now if g not in then]
    return "; ".join(x for x in (f"ran with {', '.join(gone)}" if gone else "",
                                 f"now {', '.join(new)}" if new else "") if x)


# -- test-only fault injection ----------------------------------------------------------------------
def fault_point(point):
    """Test-only: HSTNN_FAULT=<point> kills this process with SIGKILL here (tests/test_faults.py). The points:
    resume-start, epoch, selection, traces-cached, trained."""
    if os.environ.get("HSTNN_FAULT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
