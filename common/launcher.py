"""Run the parameter dicts of an mprun-*.py file as a queue of jobs.

    launcher = Launcher(gpus="auto", slots_per_gpu=1)      # command-line flags override these settings
    launcher.multi_task("./", PTB_XNN_Parameter)           # waits for its jobs, so calls run in order
    launcher.finish()                                      # summary; exit code 1 if a job failed

multi_task expands a dict as the authors' mprun did (ratio, then seed, then model; every other key becomes
`--key value`, keys containing "ratio", "seed" or "model" excepted) and runs the jobs on a local queue
(slots per GPU, GPUs round-robin, CUDA_VISIBLE_DEVICES per job; a bounded number of CPU jobs without GPU)
or as one Slurm job array through submitit (common/slurm.py). A job whose log already ends with its final
test block is skipped; an interrupted one is simply run again, and the script resumes it.
"""
import argparse
import csv
import difflib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, fields

from common import runs
from common.jobs import ROOT, Interrupted, Job, Result, finished_result, last_lines, slurm_folder, start_job
from common.results import DATASET_IN_FOLDER

MODES = ("train1", "test1", "train2", "test2")
# Keys of the original mprun dicts that abbreviate a script flag (argparse used to complete them by prefix;
# the scripts now take exact names only). Each still works, passed as the flag it stands for.
DICT_KEY_FLAGS = {"stage1_epoch": "stage1_epochs", "stage2_epoch": "stage2_epochs"}
POLL_S = 0.05


class LauncherError(Exception):
    """A problem with the settings or a parameter dict, reported as one message."""


# -- settings and command line ----------------------------------------------------------------------
@dataclass
class Settings:
    gpus: object = "auto"          # GPU ids such as [0, 1] (an int n: 0..n-1); "auto": all visible; []: CPU
    slots_per_gpu: int = 1         # jobs sharing one GPU
    cpu_jobs: int = 2              # parallel jobs when there is no GPU
    backend: str = "local"         # "local" or "slurm"
    rerun: bool = False            # also run jobs whose logs are complete (train modes get --overwrite)
    dry_run: bool = False          # print the commands, run nothing
    stages: object = None          # 1-based numbers of the multi_task calls to run; None: all
    check_inputs: bool = True      # block test1/train2/test2 jobs whose input checkpoint is unfinished
    progress_every_s: float = 60.0
    profile_csv: str = os.path.join(ROOT, "results", "profile.csv")
    # Slurm (backend "slurm"): one job array per multi_task call
    partition: str = None
    time_min: int = 24 * 60
    gpus_per_job: int = 1
    cpus_per_job: int = 2
    mem_gb: float = 16
    array_parallelism: int = 32
    slurm_cluster: str = "slurm"   # "debug" or "local": submitit's stand-ins, for tests
    slurm_poll_s: float = 10.0


def int_list(text):
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def gpu_setting(text):
    text = text.strip().lower()
    if text in ("auto",):
        return "auto"
    if text in ("", "cpu", "none"):
        return []
    return int_list(text)


def parse_command_line(settings, argv):
    """The mprun file's settings, overridden by its command-line flags."""
    s = settings
    p = argparse.ArgumentParser(description="Run this file's parameter dicts as a queue of jobs "
                                            "(settings at the top of the file; these flags override them).")
    p.add_argument("--dry-run", action="store_true", default=s.dry_run, help="print the commands, run nothing")
    p.add_argument("--gpus", type=gpu_setting, default=s.gpus,
                   help=f"GPU ids like 0,1; 'auto'; or 'cpu' (now: {s.gpus})")
    p.add_argument("--slots", type=int, default=s.slots_per_gpu, dest="slots_per_gpu",
                   help=f"jobs per GPU (now: {s.slots_per_gpu})")
    p.add_argument("--cpu-jobs", type=int, default=s.cpu_jobs, help=f"parallel jobs without GPU (now: {s.cpu_jobs})")
    p.add_argument("--backend", choices=("local", "slurm"), default=s.backend, help=f"(now: {s.backend})")
    p.add_argument("--rerun", action="store_true", default=s.rerun, help="also run jobs that are already done")
    p.add_argument("--stages", type=int_list, default=s.stages,
                   help="run only these multi_task calls, counted from 1, e.g. 1,3")
    p.add_argument("--no-input-check", action="store_false", dest="check_inputs", default=s.check_inputs,
                   help="start test1/train2/test2 jobs even if the checkpoint they load is missing or unfinished")
    g = p.add_argument_group("slurm backend")
    g.add_argument("--partition", default=s.partition, help=f"(now: {s.partition})")
    g.add_argument("--time-min", type=int, default=s.time_min, help=f"time limit per job (now: {s.time_min})")
    g.add_argument("--gpus-per-job", type=int, default=s.gpus_per_job, help=f"(now: {s.gpus_per_job})")
    g.add_argument("--cpus-per-job", type=int, default=s.cpus_per_job, help=f"(now: {s.cpus_per_job})")
    g.add_argument("--mem-gb", type=float, default=s.mem_gb, help=f"(now: {s.mem_gb})")
    g.add_argument("--array-parallelism", type=int, default=s.array_parallelism,
                   help=f"array tasks running at once (now: {s.array_parallelism})")
    args = p.parse_args(argv)
    out = Settings(**{f.name: getattr(s, f.name) for f in fields(Settings)})
    for key, value in vars(args).items():
        setattr(out, key, value)
    check_settings(out)
    return out


def check_settings(s):
    if isinstance(s.gpus, int) and not isinstance(s.gpus, bool) and s.gpus >= 0:
        s.gpus = list(range(s.gpus))  # the original mprun's "gpus = 2"
    if s.gpus != "auto" and not (isinstance(s.gpus, (list, tuple)) and all(isinstance(g, int) for g in s.gpus)):
        raise LauncherError(f"gpus must be 'auto' or a list of GPU ids like [0, 1] ([] for CPU only), got {s.gpus!r}")
    for name in ("slots_per_gpu", "cpu_jobs", "array_parallelism", "time_min"):
        if not isinstance(getattr(s, name), int) or getattr(s, name) < 1:
            raise LauncherError(f"{name} must be a positive integer, got {getattr(s, name)!r}")
    if s.backend not in ("local", "slurm"):
        raise LauncherError(f"backend must be 'local' or 'slurm', got {s.backend!r}")


def visible_gpus():
    """Ids of the GPUs this process may use: CUDA_VISIBLE_DEVICES if set, else those nvidia-smi lists."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:  # numbers or GPU UUIDs
        ids = [x.strip() for x in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if x.strip()]
        return [int(x) if x.isdigit() else x for x in ids]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return list(range(sum(line.startswith("GPU ") for line in out.splitlines())))


# -- jobs -------------------------------------------------------------------------------------------
def as_list(value):
    return list(value) if isinstance(value, (list, tuple, range)) else [value]


def expand_jobs(path, params, script, dataset):
    """The jobs of one parameter dict, ratio outer, then seed, then model (as the authors' mprun)."""
    if not isinstance(params, dict):
        raise LauncherError(f"a parameter dict is expected, got {type(params).__name__}")
    for key in ("ratio", "seed", "model", "mode"):
        if key not in params:
            raise LauncherError(f"the parameter dict has no {key!r} key (keys: {', '.join(params)})")
    if params["mode"] not in MODES:
        raise LauncherError(f"mode must be one of {', '.join(MODES)}, got {params['mode']!r}")
    if "gpu" in params:
        raise LauncherError("choose GPUs with the launcher's gpus setting (or --gpus), not a 'gpu' key in the dict")
    flags = []
    for k, v in params.items():
        if "ratio" in k or "seed" in k or "model" in k or v is None or v is False:
            continue
        flag = f"--{DICT_KEY_FLAGS.get(k, k)}"
        flags += [flag] if v is True else [flag, str(v)]
    for what, kind in (("ratio", float), ("seed", int)):
        for v in as_list(params[what]):
            try:
                kind(v)
            except (TypeError, ValueError):
                raise LauncherError(f"every {what} must be a number, got {v!r}")
    jobs, seen = [], set()
    for r in as_list(params["ratio"]):
        for s in as_list(params["seed"]):
            for m in as_list(params["model"]):
                if params["mode"] in ("train2", "test2") and m != "hybrid":
                    raise LauncherError(f"mode {params['mode']} is for model hybrid only, got model {m!r}")
                argv = [script, "--ratio", str(r), "--seed", str(s), "--model", str(m)] + flags
                job = Job(path, argv, dataset, str(m), str(s), str(r), params["mode"])
                if job.key not in seen:  # e.g. rnn listed with several ratios: one run
                    seen.add(job.key)
                    jobs.append(job)
    return jobs


def done_state(job):
    """None when the job has to run; "" when its completion record says it finished and still matches its log
    and checkpoint (common.runs.verify) with the same flags; else how the recorded flags differ."""
    _, record, problem = runs.verify(job.log_path)
    if problem:
        return None
    return runs.changed_flags(record, job.argv)


def is_done(job):
    return done_state(job) is not None


def missing_input(job):
    """Why the checkpoint this job loads is not a finished run's, or None. A train2 job given --allow-unfinished
    needs only the file."""
    needed = {"test1": job.name, "train2": runs.run_name(job.dataset, "hybrid", job.seed), "test2": job.name}.get(job.mode)
    if needed is None:
        return None
    if not os.path.exists(job.checkpoint(needed)):
        return f"checkpoint/{needed}.t7 does not exist (its training stage has not run)"
    if os.path.exists(job.resume_file(needed)):
        return f"checkpoint/{needed}.t7 is unfinished (checkpoint/{needed}.resume.t7 exists)"
    if job.mode == "train2" and {"--allow-unfinished", "--allow_unfinished"} & set(job.argv):
        return None
    _, _, problem = runs.verify(runs.log_path(needed, "train", job.cwd), check_log=False)
    if problem is None:
        return None
    return f"checkpoint/{needed}.t7 is not a finished run's: {problem}" + \
        ("; the dict key allow_unfinished=True selects from it anyway" if job.mode == "train2" else "")


# -- the local queue --------------------------------------------------------------------------------
class Slots:
    """A number of slots per device; devices are handed out round-robin among those with a free slot."""

    def __init__(self, devices, per_device):
        self.devices, self.per_device = list(devices), per_device
        self.used = {d: 0 for d in self.devices}
        self.next = 0

    @property
    def capacity(self):
        return len(self.devices) * self.per_device

    def free(self):
        return any(n < self.per_device for n in self.used.values())

    def take(self):
        for i in range(len(self.devices)):
            device = self.devices[(self.next + i) % len(self.devices)]
            if self.used[device] < self.per_device:
                self.used[device] += 1
                self.next = (self.next + i + 1) % len(self.devices)
                return device
        raise RuntimeError("no free slot")

    def give_back(self, device):
        self.used[device] -= 1


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def stop_jobs(running, grace_s=10.0):
    """SIGTERM every running job's process group, SIGKILL what is left after grace_s; reap them."""
    in_main = threading.current_thread() is threading.main_thread()
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None  # a second Ctrl-C must not orphan jobs
    for run in running.values():
        try:
            os.killpg(run["proc"].pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline, results = time.time() + grace_s, []
    while running:
        for pid, run in list(running.items()):
            got, status, usage = os.wait4(pid, os.WNOHANG)
            if got:
                res = finished_result(run["job"], run["proc"], status, usage, run["start"], run["gpu"])
                res.status, res.message = "interrupted", "stopped by the launcher (Ctrl-C)"
                results.append(res)
                del running[pid]
        if running and time.time() > deadline:
            for pid in running:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(POLL_S)
    if in_main:
        signal.signal(signal.SIGINT, old_int)
    return results


def run_local(jobs, settings, progress):
    """Run the jobs on the local queue; return their Results. Ctrl-C stops the queue and the jobs."""
    gpus = visible_gpus() if settings.gpus == "auto" else list(settings.gpus)
    slots = Slots(gpus, settings.slots_per_gpu) if gpus else Slots([None], settings.cpu_jobs)
    cpu_only = not gpus
    progress.capacity = slots.capacity
    pending, running, results = deque(jobs), {}, []
    in_main = threading.current_thread() is threading.main_thread()
    old_term = signal.signal(signal.SIGTERM, _raise_interrupt) if in_main else None
    try:
        while pending or running:
            while pending and slots.free():
                job, gpu = pending.popleft(), slots.take()
                proc = start_job(job, gpu, cpu_only, settings.cpu_jobs)
                running[proc.pid] = dict(job=job, proc=proc, gpu=gpu, start=time.time())
                progress.started(job, gpu)
            for pid, run in list(running.items()):
                got, status, usage = os.wait4(pid, os.WNOHANG)
                if got:
                    del running[pid]
                    slots.give_back(run["gpu"])
                    res = finished_result(run["job"], run["proc"], status, usage, run["start"], run["gpu"])
                    results.append(res)
                    progress.finished(res, [r["start"] for r in running.values()], len(pending))
            progress.tick([r["start"] for r in running.values()], len(pending))
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        print(f"\nInterrupted: stopping {len(running)} running job(s); {len(pending)} not started.", flush=True)
        results += stop_jobs(running)
        results += [Result(job, "not started") for job in pending]
        raise Interrupted(results)
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, old_term)
    return results


# -- progress and summaries -------------------------------------------------------------------------
def hms(seconds):
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """One line per job start and end, and a heartbeat line every progress_every_s."""

    def __init__(self, label, total, every_s, capacity=1):
        self.label, self.total, self.every_s, self.capacity = label, total, every_s, capacity
        self.start = self.last_print = time.time()
        self.walls, self.failed, self.done = [], 0, 0

    def line(self, text):
        print(f"[{self.label} {hms(time.time() - self.start)}] {text}", flush=True)
        self.last_print = time.time()

    def eta(self, running_starts, n_pending):
        if not self.walls:
            return "?"
        mean, now = sum(self.walls) / len(self.walls), time.time()
        left = n_pending * mean + sum(max(0.0, mean - (now - s)) for s in running_starts)
        return hms(left / max(1, min(self.capacity, n_pending + len(running_starts))))

    def counts(self, running_starts, n_pending):
        """running_starts: start times of the running jobs; None where unknown (Slurm)."""
        running = "" if running_starts is None else f"running {len(running_starts)}, "
        return (f"done {self.done}/{self.total}, {running}failed {self.failed} | "
                f"ETA {self.eta(running_starts or [], n_pending)}")

    def started(self, job, gpu):
        self.line(f"start {job.key} on {'CPU' if gpu is None else f'GPU {gpu}'}")

    def finished(self, res, running_starts, n_pending):
        self.done += 1
        if res.status == "ok":
            self.walls.append(res.wall_s)
        else:
            self.failed += 1
        what = "ok    " if res.status == "ok" else f"FAILED (exit code {res.exit_code})"
        self.line(f"{what} {res.job.key} in {hms(res.wall_s or 0)} | {self.counts(running_starts, n_pending)}")

    def tick(self, running_starts, n_pending):
        if time.time() - self.last_print >= self.every_s:
            self.line(self.counts(running_starts, n_pending))


def describe_failure(res):
    job = res.job
    text = f"{res.status.upper()} {job.key}" + ("" if res.exit_code is None else f": exit code {res.exit_code}")
    text += f"\n  command: {job.command(res.gpu or None)}\n  log:     {job.log_path}"
    if res.message:
        text += f"\n  reason:  {res.message}"
    if os.path.exists(job.out_path):
        text += f"\n  output:  {job.out_path}, last lines:\n" + "\n".join("    " + ln for ln in last_lines(job.out_path))
    return text


def summary_text(label, results, elapsed_s, details=True):
    """Counts per status, then every failed job: in full (details) or one line each."""
    counts = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    text = f"== {label}: {len(results)} jobs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    text += f" (elapsed {hms(elapsed_s)})"
    if details:
        return "\n".join([text] + [describe_failure(r) for r in results if r.bad])
    return "\n".join([text] + [f"  {r.status.upper()} {r.job.key}" + ("" if r.exit_code is None else
                                f" (exit code {r.exit_code})") + (f": {r.message}" if r.message else "")
                                for r in results if r.bad])


PROFILE_FIELDS = ["experiment", "job", "mode", "model", "seed", "ratio", "status", "exit_code", "wall_s", "cpu_s",
                  "peak_rss_mb", "peak_gpu_mb", "device", "gpu", "backend", "host", "finished"]


def append_profile(path, results, backend):
    rows = [r for r in results if r.wall_s is not None]
    if not rows or not path:
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(PROFILE_FIELDS)
        for r in rows:
            j = r.job
            w.writerow([os.path.basename(os.path.normpath(j.cwd)), j.key, j.mode, j.model, j.seed, j.ratio, r.status,
                        r.exit_code, r.wall_s, r.cpu_s, r.peak_rss_mb, "" if r.peak_gpu_mb is None else r.peak_gpu_mb,
                        r.device, r.gpu, backend, socket.gethostname(), time.strftime("%Y-%m-%d %H:%M:%S")])


# -- the mprun interface ----------------------------------------------------------------------------
def main_file():
    main = sys.modules.get("__main__")
    return os.path.abspath(main.__file__) if main is not None and getattr(main, "__file__", None) else None


def script_for(mprun_file):
    base = os.path.basename(mprun_file or "")
    if not base.startswith("mprun-"):
        raise LauncherError("cannot tell the training script from this file's name; pass script='xxx.py' to Launcher")
    return base[len("mprun-"):]


def dataset_for(script):
    name = script.lower()
    for key, ds in DATASET_IN_FOLDER:
        if key in name:
            return ds
    raise LauncherError(f"cannot tell the dataset of {script!r}; pass dataset='ptb' (or mnist, dvsGesture, nmnist)")


# Runs a training script in a fresh interpreter up to its parse_args call and prints its parser's flags.
FLAGS_PROBE = """
import argparse, json, runpy, sys
class Parsed(BaseException):
    pass
def parsed(self, *args, **kwargs):
    print(json.dumps([flag for action in self._actions for flag in action.option_strings]))
    raise Parsed
argparse.ArgumentParser.parse_args = argparse.ArgumentParser.parse_known_args = parsed
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except Parsed:
    sys.exit(0)
sys.exit("it ended without reading its command line")
"""


def script_flags(script):
    """The flags (--name) that a training script's parser accepts; nothing is trained."""
    env = {k: v for k, v in os.environ.items() if k != "HSTNN_PROFILE_FILE"}
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    proc = subprocess.run([sys.executable, "-c", FLAGS_PROBE, script], cwd=os.path.dirname(script), env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise LauncherError(f"cannot read the flags of {script}: {why}")
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def unknown_keys(params, flags):
    """'key (did you mean ...?)' for each key of a parameter dict that is not a flag of the script."""
    names = sorted(f[2:] for f in flags if f.startswith("--"))
    unknown = []
    for key in params:
        if f"--{DICT_KEY_FLAGS.get(key, key)}" not in flags:
            close = difflib.get_close_matches(key, names, n=1)
            unknown.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return unknown


def fail(message, code=2):
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


class Launcher:
    """Holds the settings (command-line flags override the keyword arguments) and the results so far."""

    def __init__(self, script=None, dataset=None, base_dir=None, argv=None, **settings):
        unknown = set(settings) - {f.name for f in fields(Settings)}
        if unknown:
            fail(f"unknown launcher setting(s) {', '.join(sorted(unknown))}; "
                 f"known: {', '.join(f.name for f in fields(Settings))}")
        try:
            defaults = Settings(**settings)
            check_settings(defaults)
            self.argv = sys.argv[1:] if argv is None else list(argv)
            self.settings = parse_command_line(defaults, self.argv)
            mprun = main_file()
            self.base_dir = base_dir or (os.path.dirname(mprun) if mprun else os.getcwd())
            self.script = script or script_for(mprun)
            self.dataset = dataset or dataset_for(self.script)
        except LauncherError as e:
            fail(str(e))
        self.results, self.stage, self.start = [], 0, time.time()
        self.flags, self.file_checked = {}, None  # script -> its flags; whether a dry run checked every dict

    def jobs_for(self, path, params):
        cwd = os.path.normpath(os.path.join(self.base_dir, path))
        if not os.path.isdir(cwd):
            raise LauncherError(f"experiment folder {cwd} does not exist")
        if not os.path.exists(os.path.join(cwd, self.script)) and not self.settings.dry_run:
            raise LauncherError(f"training script {os.path.join(cwd, self.script)} does not exist")
        return expand_jobs(cwd, params, self.script, self.dataset)

    def multi_task(self, path, params):
        """Run one parameter dict's jobs and wait for them. Returns their Results."""
        self.stage += 1
        label = f"stage {self.stage}"
        s = self.settings
        if s.stages and self.stage not in s.stages:
            print(f"== {label}: not selected (--stages {','.join(map(str, s.stages))})", flush=True)
            return []
        try:
            jobs = self.jobs_for(path, params)
            self.check_keys(jobs, params)
        except LauncherError as e:
            fail(f"{label}: {e}")
        state = {j.key: done_state(j) for j in jobs}
        done = {key for key, st in state.items() if st is not None}
        for j in jobs:
            if state[j.key]:
                print(f"== {label}: {j.key} done with other flags ({state[j.key]}); "
                      + ("running it again (--rerun)" if s.rerun else "skipped; --rerun runs it again"), flush=True)
        todo = jobs if s.rerun else [j for j in jobs if j.key not in done]
        for j in todo:
            if j.key in done and j.mode.startswith("train"):
                j.argv.append("--overwrite")  # the scripts keep the old checkpoint aside
        if s.dry_run:
            return self.dry_run(label, jobs, todo)
        results = [Result(j, "skipped") for j in jobs if j.key in done and not s.rerun]
        if results:
            print(f"== {label}: {len(results)} of {len(jobs)} jobs already done (finished records), skipped; "
                  f"--rerun runs them again", flush=True)
        runnable = []
        for j in todo:
            why = missing_input(j) if s.check_inputs else None
            if why:
                results.append(Result(j, "blocked", message=why + "; --no-input-check starts it anyway"))
            else:
                runnable.append(j)
        print(f"== {label}: {len(runnable)} jobs to run ({s.backend})", flush=True)
        progress = Progress(label, len(runnable), s.progress_every_s)
        try:
            if runnable and s.backend == "slurm":
                from common.slurm import run_slurm
                results += run_slurm(runnable, s, label, progress)
            elif runnable:
                results += run_local(runnable, s, progress)
        except Interrupted as stop:
            self.record(in_order(jobs, results + stop.results))
            print(summary_text("interrupted; so far", self.results, time.time() - self.start), flush=True)
            sys.exit(130)
        results = in_order(jobs, results)
        self.record(results)
        print(summary_text(label, results, time.time() - progress.start, details=False), flush=True)
        return results

    def check_keys(self, jobs, params):
        """Every key of the dict must be a flag of the script (DICT_KEY_FLAGS maps the original abbreviations).
        A real launch of an mprun file first runs the whole file as a dry run, which checks every dict, so that
        a bad key in a later dict stops the launch before any job."""
        if not self.settings.dry_run and self.file_checked is None:
            self.file_checked = self.check_whole_file()
        if self.file_checked or not jobs:
            return
        script = os.path.join(jobs[0].cwd, self.script)
        if not os.path.exists(script):  # a dry run only (jobs_for)
            print(f"# keys not checked: {script} does not exist", flush=True)
            return
        if script not in self.flags:
            self.flags[script] = script_flags(script)
        unknown = unknown_keys(params, self.flags[script])
        if unknown:
            mprun = main_file()
            where = os.path.basename(mprun) if mprun and os.path.basename(mprun).startswith("mprun-") else "this file"
            raise LauncherError(f"the parameter dict in {where} has {'keys' if len(unknown) > 1 else 'a key'} that "
                                f"{self.script} does not take: {', '.join(unknown)}")

    def check_whole_file(self):
        """The mprun file that is running, with the same flags plus --dry-run, in a fresh interpreter: True when
        it passes; on an error its message is shown and the launch stops. False when no mprun file runs."""
        mprun = main_file()
        if not mprun or not os.path.basename(mprun).startswith("mprun-"):
            return False
        proc = subprocess.run([sys.executable, mprun, *self.argv, "--dry-run"], capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            sys.exit(proc.returncode)
        return True

    def record(self, results):
        self.results += results
        append_profile(self.settings.profile_csv, results, self.settings.backend)

    def dry_run(self, label, jobs, todo):
        s = self.settings
        gpus = visible_gpus() if s.gpus == "auto" else list(s.gpus)
        print(f"== {label}: {len(todo)} of {len(jobs)} jobs would run "
              f"({s.backend}; {'GPUs ' + ','.join(map(str, gpus)) if gpus else 'CPU'})")
        keys, n = {j.key for j in todo}, 0
        for j in jobs:
            if j.key not in keys:
                print(f"# done, skipped: {j.key}")
            elif s.backend == "slurm":
                print(j.command())
            else:
                print(j.command(gpus[n % len(gpus)] if gpus else None, cpu_only=not gpus))
                n += 1
        if s.backend == "slurm" and todo:
            from common.slurm import sbatch_text
            print(f"# sbatch script of the job array:\n{sbatch_text(s, len(todo), slurm_folder(todo[0]), label)}")
        results = [Result(j, "dry-run") for j in jobs]
        self.results += results
        return results

    def finish(self):
        """Print the summary of every stage, each failed job in full, and exit: 0 if every job is done."""
        ran = [r for r in self.results if r.status != "dry-run"]
        if ran:
            print(summary_text("all stages", ran, time.time() - self.start), flush=True)
        sys.exit(1 if any(r.bad for r in self.results) else 0)


def in_order(jobs, results):
    order = {j.key: i for i, j in enumerate(jobs)}
    return sorted(results, key=lambda r: order[r.job.key])
