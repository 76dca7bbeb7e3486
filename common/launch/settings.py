"""The launcher's settings: the keyword arguments of Launcher(...) in an mprun file, overridden by its command line."""
import argparse
import os
import shutil
import subprocess
from dataclasses import dataclass, fields

from common.launch.jobs import ROOT


MODES = ("train1", "test1", "train2", "test2")
# Keys of the original mprun dicts that abbreviate a script flag (argparse used to complete them by prefix;
# the scripts now take exact names only). Each still works, passed as the flag it stands for.
DICT_KEY_FLAGS = {"stage1_epoch": "stage1_epochs", "stage2_epoch": "stage2_epochs"}


class LauncherError(Exception):
    """A problem with the settings or a parameter dict, reported as one message."""


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


def job_gpus(setting):
    """(GPUs the local queue hands out, a note or None). GPUs asked for that are not visible are dropped with a
    note; when none is left the jobs run as CPU jobs."""
    visible = visible_gpus()
    if setting == "auto" or not setting:
        return list(visible) if setting == "auto" else [], None
    kept = [g for g in setting if g in visible]
    missing = ",".join(str(g) for g in setting if g not in visible)
    shown = ",".join(map(str, visible))
    where = f"GPU {missing} not visible (visible: {shown})" if visible else "no GPU is visible"
    if not kept:
        return [], f"note: {where}" + (f" (gpus asks for {missing})" if not visible else "") + ": running on the CPU"
    if missing:
        return kept, f"note: {where}: using GPU {','.join(map(str, kept))}"
    return kept, None
