"""One job of the launcher: the command it runs, where its files are, and how it runs to its end (shared by
the local queue in common/launch/local.py and the Slurm backend in common/launch/slurm.py)."""
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

from common import runs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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

    def full_argv(self, gpu=None):
        return [sys.executable] + self.argv + ([] if gpu is None else ["--gpu", str(gpu)])

    def command(self, gpu=None, cpu_only=False):
        """What a person would type: cd <folder> && [CUDA_VISIBLE_DEVICES=..] python <script> <flags>."""
        python = "python" if shutil.which("python") and os.path.realpath(shutil.which("python")) == \
            os.path.realpath(sys.executable) else sys.executable
        env = f"CUDA_VISIBLE_DEVICES={gpu} " if gpu is not None else ("CUDA_VISIBLE_DEVICES= " if cpu_only else "")
        return f"cd {shlex.quote(self.cwd)} && {env}" + shlex.join([python] + self.full_argv(gpu)[1:])


# -- running one job --------------------------------------------------------------------------------
@dataclass
class Result:
    job: Job
    status: str                    # ok, failed, skipped, blocked, interrupted, not started, dry-run
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
        return self.status in ("failed", "blocked", "interrupted", "not started")


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
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // cpu_jobs)))
    return env


def start_job(job, gpu=None, cpu_only=False, cpu_jobs=1, new_session=True):
    """Start the job with its output appended to log/launcher/<job>.out; return the Popen."""
    os.makedirs(os.path.dirname(job.out_path), exist_ok=True)
    if os.path.exists(job.profile_path):
        os.remove(job.profile_path)
    with open(job.out_path, "ab") as out:
        out.write(f"\n==> {time.strftime('%Y-%m-%d %H:%M:%S')} {job.command(gpu, cpu_only)}\n".encode())
        out.flush()
        return subprocess.Popen(job.full_argv(gpu), cwd=job.cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=job_env(job, gpu, cpu_only, cpu_jobs),
                                start_new_session=new_session)


def finished_result(job, proc, wait_status, usage, started, gpu):
    code = os.waitstatus_to_exitcode(wait_status)
    proc.returncode = code
    profile = {}
    try:
        with open(job.profile_path) as f:
            profile = json.load(f)
    except (OSError, ValueError):
        pass
    gpu_bytes = profile.get("peak_gpu_mem_bytes") if isinstance(profile, dict) else None
    return Result(job, "ok" if code == 0 else "failed", code, round(time.time() - started, 2),
                  round(usage.ru_utime + usage.ru_stime, 2), round(usage.ru_maxrss / 1024, 1),
                  None if gpu_bytes is None else round(gpu_bytes / 2 ** 20, 1),
                  str(profile.get("device", "")) if isinstance(profile, dict) else "", "" if gpu is None else str(gpu))


def run_blocking(job):
    """Run one job to its end in this process's group (used inside a Slurm task)."""
    started = time.time()
    proc = start_job(job, new_session=False)
    _, status, usage = os.wait4(proc.pid, 0)
    return finished_result(job, proc, status, usage, started, os.environ.get("CUDA_VISIBLE_DEVICES"))


def last_lines(path, n=15):
    try:
        with open(path, "rb") as f:
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
