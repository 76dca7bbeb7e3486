"""One job of the launcher: the command it runs, where its files are, and how it runs to its end (shared by
the local queue in common/launch/local.py and the Slurm backend in common/launch/slurm.py)."""
import ctypes
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from common import runs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROFILED = "common.launch.profiled"  # runs a script as `python <script>` would, and writes its profile at exit
BUSY_EXIT = 75                       # a script's exit code when another process holds its run
PR_SET_PDEATHSIG = 1                 # prctl(2): a signal for the child when its parent ends


@dataclass
class Job:
    cwd: str                       # the experiment folder; logs and checkpoints are relative to it
    argv: list                     # script and flags (no interpreter, no --gpu)
    dataset: str
    model: str
    seed: str
    ratio: str
    mode: str

    @property
    def name(self):
        """<ds>_<model>_<seed>, plus _<ratio> for ffs and for hybrid in train2/test2 (as the scripts)."""
        return runs.run_name(self.dataset, self.model, self.seed, self.ratio, self.mode)

    @property
    def key(self):
        return f"{self.mode}_{self.name}"

    @property
    def log_path(self):
        return runs.log_path(self.name, runs.log_kind(self.mode), self.cwd)

    def checkpoint(self, name=None):
        return runs.checkpoint_path(name or self.name, self.cwd)

    def resume_file(self, name=None):
        return runs.resume_path(self.checkpoint(name))

    @property
    def out_path(self):
        return os.path.join(self.cwd, "log", "launcher", f"{self.key}.out")

    @property
    def profile_path(self):
        return os.path.join(self.cwd, "log", "launcher", f"{self.key}.profile.json")

    def script_argv(self, gpu=None):
        return self.argv + ([] if gpu is None else ["--gpu", str(gpu)])

    def full_argv(self, gpu=None):
        """What the launcher runs: the script through common.launch.profiled, same sys.argv as command()."""
        return [sys.executable, "-m", PROFILED] + self.script_argv(gpu)

    def command(self, gpu=None, cpu_only=False):
        """What a person would type: cd <folder> && [CUDA_VISIBLE_DEVICES=..] python <script> <flags>."""
        python = "python" if shutil.which("python") and os.path.realpath(shutil.which("python")) == \
            os.path.realpath(sys.executable) else sys.executable
        env = f"CUDA_VISIBLE_DEVICES={gpu} " if gpu is not None else ("CUDA_VISIBLE_DEVICES= " if cpu_only else "")
        return f"cd {shlex.quote(self.cwd)} && {env}" + shlex.join([python] + self.script_argv(gpu))


# -- running one job --------------------------------------------------------------------------------
@dataclass
class Result:
    job: Job
    status: str                    # ok, failed, busy, skipped, blocked, interrupted, not started, dry-run
    exit_code: int = None
    wall_s: float = None
    cpu_s: float = None
    peak_rss_mb: float = None
    peak_gpu_mb: float = None
    device: str = ""
    gpu: str = ""
    message: str = ""

    @property
    def bad(self):
        return self.status in ("failed", "busy", "blocked", "interrupted", "not started")


def cpu_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def job_env(job, gpu, cpu_only, cpu_jobs=1):
    env = dict(os.environ, HSTNN_PROFILE_FILE=job.profile_path, PYTHONUNBUFFERED="1",
               HSTNN_PROGRESS="0")
    paths = env.get("PYTHONPATH", "").split(os.pathsep)
    if ROOT not in paths:
        env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in paths if p])
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    elif cpu_only:
        env["CUDA_VISIBLE_DEVICES"] = ""
        env.setdefault("OMP_NUM_THREADS", str(max(1, cpu_cores() // cpu_jobs)))
    return env


# -- the files of log/launcher/, never written or read through a symbolic link ----------------------
def launcher_dir(folder):
    """A descriptor of <folder>/log/launcher (made if missing); OSError when log or launcher is a link."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in ("log", "launcher"):
            try:
                os.mkdir(part, dir_fd=fd)
            except FileExistsError:
                pass
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
        return fd
    except BaseException:
        os.close(fd)
        raise


def link_problem(job):
    """Why the launcher will not write this job's files in log/launcher, or None: a symbolic link on the way."""
    for path in (os.path.join(job.cwd, "log"), os.path.dirname(job.out_path), job.out_path, job.profile_path):
        if os.path.islink(path):
            return f"{os.path.relpath(path, job.cwd)} is a symbolic link; the launcher never writes through one " \
                   f"(remove the link)"
    return None


def open_out(job):
    """log/launcher/<job>.out for appending, its old profile removed; OSError on a symbolic link."""
    folder = launcher_dir(job.cwd)
    try:
        try:
            os.unlink(os.path.basename(job.profile_path), dir_fd=folder)  # a link is removed, never followed
        except FileNotFoundError:
            pass
        fd = os.open(os.path.basename(job.out_path), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644,
                     dir_fd=folder)
    finally:
        os.close(folder)
    return os.fdopen(fd, "ab")


def read_small(path, limit=1 << 16):
    """The bytes of a file that is no link and no larger than limit; None otherwise."""
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as f:
            data = f.read(limit + 1)
    except OSError:
        return None
    return data if len(data) <= limit else None


def read_profile(job):
    """(device, peak GPU MiB or None) from the job's profile JSON; ("", None) when it is missing or garbled."""
    data = read_small(job.profile_path)
    try:
        profile = json.loads(data) if data is not None else None
    except (ValueError, RecursionError):  # deeply nested JSON raises RecursionError
        profile = None
    if not isinstance(profile, dict):
        return "", None
    device, peak = profile.get("device"), profile.get("peak_gpu_mem_bytes")
    good = isinstance(peak, (int, float)) and not isinstance(peak, bool) and math.isfinite(peak) and peak >= 0
    return (device[:200] if isinstance(device, str) else ""), (round(peak / 2 ** 20, 1) if good else None)


# -- running one job --------------------------------------------------------------------------------
_libc = []


def dies_with_launcher():
    """A preexec_fn (Linux) that makes the job get SIGTERM when the launcher ends, however it ends (SIGKILL too)."""
    if not sys.platform.startswith("linux"):
        return None
    if not _libc:
        _libc.append(ctypes.CDLL(None, use_errno=True))  # loaded before the fork
    prctl, parent = _libc[0].prctl, os.getpid()

    def preexec():
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the launcher ended before prctl
            os._exit(1)
    return preexec


def start_job(job, gpu=None, cpu_only=False, cpu_jobs=1, new_session=True):
    """Start the job with its output appended to log/launcher/<job>.out; return the Popen. The job has its own
    process group (new_session) and ends with the launcher."""
    with open_out(job) as out:
        out.write(f"\n==> {time.strftime('%Y-%m-%d %H:%M:%S')} {job.command(gpu, cpu_only)}\n".encode())
        out.flush()
        return subprocess.Popen(job.full_argv(gpu), cwd=job.cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=job_env(job, gpu, cpu_only, cpu_jobs),
                                start_new_session=new_session, preexec_fn=dies_with_launcher())


def busy_holder(job):
    """The script's one line when another process held its run ("run <name> is in use by process <pid>")."""
    for line in reversed(last_lines(job.out_path, 5)):
        if line.startswith("error: run ") and " is in use by process " in line:
            return line[len("error: "):].strip()
    return None


def finished_result(job, proc, wait_status, usage, started, gpu):
    code = os.waitstatus_to_exitcode(wait_status)
    proc.returncode = code
    device, peak_gpu_mb = read_profile(job)
    holder = busy_holder(job) if code == BUSY_EXIT else None
    status = "ok" if code == 0 else ("busy" if holder else "failed")
    return Result(job, status, code, round(time.time() - started, 2), round(usage.ru_utime + usage.ru_stime, 2),
                  round(usage.ru_maxrss / 1024, 1), peak_gpu_mb, device, "" if gpu is None else str(gpu),
                  message=f"{holder}; not run twice" if holder else "")


def run_blocking(job):
    """Run one job to its end in this process's group (used inside a Slurm task)."""
    started = time.time()
    proc = start_job(job, new_session=False)
    _, status, usage = os.wait4(proc.pid, 0)
    return finished_result(job, proc, status, usage, started, os.environ.get("CUDA_VISIBLE_DEVICES"))


def last_lines(path, n=15):
    try:
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            return f.read().decode("utf-8", errors="replace").splitlines()[-n:]
    except OSError:
        return []


class Interrupted(Exception):
    def __init__(self, results):
        super().__init__("interrupted")
        self.results = results


def slurm_folder(job):
    return os.path.join(job.cwd, "log", "slurm", "%j")
