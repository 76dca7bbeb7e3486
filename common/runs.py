"""The files of one run and the completion record that says it finished.

A run is named <ds>_<model>_<seed>[_<ratio>] and, relative to its experiment folder, writes
log/<train|test>_<name>.log, checkpoint/<name>.t7 (and checkpoint/<name>.resume.t7 while unfinished) and,
as the very last act of a successful command, the record log/<train|test>_<name>.json. The record holds the
final metric exactly as the log's final test block shows it, the sizes and SHA-256 of the log and the
checkpoint at that moment, the full command line, the kit's version, the device, wall time and peak memory.
A run counts as finished only when its record says so and still matches its log and checkpoint.
"""
import hashlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time

from common.errors import KitError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STARTED = time.time()
NAME = r"([A-Za-z0-9]+)_(rnn|lstm|snn|ffs|hybrid)_(\d+)(?:_(\d*\.?\d+(?:[eE][-+]?\d+)?))?"
LOG_NAME = re.compile(rf"^(train|test)_{NAME}\.log$")
TEST_RULES = ("=" * 89, "=" * 83)
# flags that do not change a run's result: a finished run given them again is not "done with other flags"
IGNORED_FLAGS = ("--gpu", "--overwrite", "--device", "--threads", "--allow-unfinished", "--allow_unfinished", "--cuda")
_final = {}  # what this process has logged and used: the last test line, an unfinished Adaptation


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
    finish. (A copied record's paths are made relative, see copy_record, so its digest is not checked here.)"""
    if not os.path.exists(record_path(log)):
        return False
    with open(record_path(log)) as f:
        return json.load(f).get("status") != "finished"


def copy_record(src, dst):
    """Copy a completion record with its paths made relative to the repository (experiments/..., studies/...),
    so that no path of the machine that ran it is kept."""
    with open(src) as fin, open(dst, "w") as fout:
        fout.write(re.sub(r'"/[^"]*?/((?:experiments|studies)/)', r'"\1', fin.read()))


def run_of_log(log):
    """(kind, name, checkpoint path) of log/<kind>_<name>.log."""
    folder, base = os.path.split(log)
    kind, name = base[:-len(".log")].split("_", 1)
    return kind, name, checkpoint_path(name, os.path.dirname(folder))


# -- the final test block ---------------------------------------------------------------------------
def log_test_block(logger, line, width):
    """The three lines the aggregator reads at the end of every train and test log."""
    logger.info("=" * width)
    logger.info(line)
    logger.info("=" * width)
    _final["line"] = line


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
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"path": path, "size": os.path.getsize(path), "sha256": digest.hexdigest()}


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
    from common import execution  # not at the top: common.execution imports common.training, which imports this
    return execution.current()


def finish_run(args, name, device=None):
    """The last call of a successful train or test command: write the completion record atomically,
    then remove the run's resume file (a run killed before this point resumes, even in its final test)."""
    kind = log_kind(args.mode)
    log, checkpoint = log_path(name, kind), checkpoint_path(name)
    line = _final.get("line")
    raw = None if line is None else line.split(" ")[-1].strip()
    rss, gpu = peak_memory()
    record = {
        "status": "finished", "name": name, "mode": args.mode, "model": args.model,
        "stage": STAGES.get((args.model, args.mode), "training" if kind == "train" else "test"),
        "metric": raw, "value": None if raw is None else float(raw), "test_line": line,
        "protocol": getattr(args, "protocol", None),
        "checkpoint": file_facts(checkpoint), "log": file_facts(log),
        "argv": list(sys.argv), "kit_version": kit_version(), "device": str(device) if device is not None else None,
        "execution": _execution(),
        "wall_s": round(time.time() - STARTED, 3), "peak_rss_mb": rss, "peak_gpu_mb": gpu,
        "allow_unfinished": bool(getattr(args, "allow_unfinished", False)),
        "unfinished_adaptation": _final.get("unfinished_adaptation"),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    record["digest"] = record_digest(record)
    path = record_path(log)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    if kind == "train" and os.path.exists(resume_path(checkpoint)):
        os.remove(resume_path(checkpoint))


def record_digest(record):
    """SHA-256 of a record's other fields: a record damaged in any field is not trusted."""
    return hashlib.sha256(json.dumps({k: v for k, v in record.items() if k != "digest"}, sort_keys=True).encode()).hexdigest()


def read_record(log):
    """(record, problem) of the run that wrote `log`."""
    path = record_path(log)
    if not os.path.exists(path):
        return None, "no completion record (the run did not finish, or it predates records: --legacy-logs reads it)"
    try:
        with open(path) as f:
            record = json.load(f)
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        return None, f"completion record {os.path.basename(path)} unreadable ({type(e).__name__})"
    if record.get("digest") != record_digest(record):
        return None, f"completion record {os.path.basename(path)} is damaged (its digest does not match)"
    if record.get("status") != "finished":
        return None, f"completion record says {record.get('status')!r}, not finished"
    return record, None


def same_file(facts, path):
    return isinstance(facts, dict) and os.path.exists(path) and os.path.getsize(path) == facts.get("size") \
        and file_facts(path)["sha256"] == facts.get("sha256")


def verify(log, check_log=True):
    """(raw metric, record, problem): the run's number when its record says finished and still matches its
    log (same bytes, same final number) and its checkpoint (same bytes, no resume file left)."""
    kind, _, checkpoint = run_of_log(log)
    if kind == "train" and os.path.exists(resume_path(checkpoint)):
        return None, None, "unfinished (resume file present: training in progress or interrupted)"
    record, problem = read_record(log)
    if problem:
        return None, None, problem
    if not os.path.exists(checkpoint):
        return None, record, f"its checkpoint {os.path.basename(checkpoint)} is missing"
    if not same_file(record.get("checkpoint"), checkpoint):
        return None, record, f"its checkpoint {os.path.basename(checkpoint)} was replaced or changed since the run finished"
    if kind == "test":  # a test of a checkpoint that changed after its training finished does not count either
        trained, _ = read_record(log_path(run_of_log(log)[1], "train", os.path.dirname(os.path.dirname(log))))
        if trained is not None and trained.get("checkpoint", {}).get("sha256") != record["checkpoint"].get("sha256"):
            return None, record, f"it tested {os.path.basename(checkpoint)} after it changed since its training finished"
    if not check_log:
        return record.get("metric"), record, None
    if not same_file(record.get("log"), log):
        return None, record, "the log changed since the run finished (appended to or edited)"
    raw, problem = final_metric(log)
    if problem:
        return None, record, problem
    if raw != record.get("metric"):
        return None, record, f"the log's final number {raw} differs from its record's {record.get('metric')}"
    return raw, record, None


# -- Selection needs a finished Adaptation ------------------------------------------------------------
def adaptation_problem(checkpoint):
    """Why the Adaptation checkpoint is not a finished run's, or None."""
    if os.path.exists(resume_path(checkpoint)):
        return f"{resume_path(checkpoint)} exists: its training was interrupted or is still running"
    if not os.path.exists(checkpoint):
        return None  # the loader names the missing file
    log = log_path(os.path.basename(checkpoint)[:-3], "train", os.path.dirname(os.path.dirname(checkpoint)))
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
