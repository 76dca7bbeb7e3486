"""The Slurm backend of the launcher: one submitit job array per multi_task call.

Each array task runs one job exactly as the local queue does (same command, same log/launcher/<job>.out,
same profile); Slurm chooses the GPU. On a timeout or preemption submitit requeues the task and the
training script resumes from its .resume.t7.
"""
import shlex
import sys
import time

import submitit
from submitit.slurm.slurm import _make_sbatch_string  # submitit's own sbatch writer, to show the text

from common.launch.jobs import ROOT, Interrupted, Result, last_lines, run_blocking, slurm_folder


class SlurmTask(submitit.helpers.Checkpointable):
    def __call__(self, job):
        return run_blocking(job)


def slurm_parameters(settings, job_name):
    """sbatch options from the launcher settings (names as submitit's SlurmExecutor takes them)."""
    mem = float(settings.mem_gb or 0)
    params = dict(job_name=job_name, time=int(settings.time_min), cpus_per_task=settings.cpus_per_job,
                  array_parallelism=settings.array_parallelism,
                  setup=[f"export PYTHONPATH={shlex.quote(ROOT)}${{PYTHONPATH:+:$PYTHONPATH}}"])
    if mem:
        params["mem"] = f"{int(mem)}GB" if mem.is_integer() else f"{int(mem * 1024)}MB"
    if settings.partition:
        params["partition"] = settings.partition
    if settings.gpus_per_job:
        params["gpus_per_node"] = settings.gpus_per_job
    return params


def submit_command(folder):
    return " ".join([shlex.quote(sys.executable), "-u -m submitit.core._submit", shlex.quote(str(folder))])


def sbatch_text(settings, n_jobs, folder, label):
    """The sbatch script submitit writes for an array of n_jobs tasks."""
    return _make_sbatch_string(command=submit_command(folder), folder=folder, map_count=n_jobs,
                               **slurm_parameters(settings, job_name(folder, label)))


def job_name(folder, label):
    experiment = str(folder).replace("\\", "/").split("/log/slurm")[0].rstrip("/").split("/")[-1]
    return f"hstnn-{experiment}-{label.replace(' ', '')}"


def make_executor(settings, folder, name):
    if settings.slurm_cluster == "slurm":
        executor = submitit.SlurmExecutor(folder)
        executor.update_parameters(**slurm_parameters(settings, name))
    else:  # "debug" (in this process) or "local" (subprocesses, all at once): for tests
        executor = submitit.AutoExecutor(folder, cluster=settings.slurm_cluster)
        executor.update_parameters(timeout_min=int(settings.time_min), name=name)
    return executor


def task_result(task, job):
    try:
        result = task.result()
        if isinstance(result, Result):
            return result
        return Result(job, "failed", message=f"the Slurm task returned {result!r}")
    except Exception as e:  # a failed, cancelled or timed-out task
        lines = str(e).strip().splitlines()
        err = [f"submitit stderr {task.paths.stderr}:"] + last_lines(task.paths.stderr, 5)
        return Result(job, "failed", message=" | ".join((lines[:1] or [type(e).__name__]) + err))


def run_slurm(jobs, settings, label, progress):
    """Submit the jobs as one job array and wait for it; return their Results."""
    folder = slurm_folder(jobs[0])
    executor = make_executor(settings, folder, job_name(folder, label))
    tasks = executor.map_array(SlurmTask(), jobs)
    array_id = str(tasks[0].job_id).split("_")[0]
    progress.capacity, progress.tracked = settings.array_parallelism, False  # Slurm knows which tasks run
    progress.line(f"submitted job array {array_id}: {len(tasks)} tasks, at most {settings.array_parallelism} at once")
    in_process = settings.slurm_cluster == "debug"
    results = {}
    try:
        while len(results) < len(tasks):
            for i, task in enumerate(tasks):
                if i not in results and (in_process or task.done()):
                    results[i] = task_result(task, jobs[i])
                    progress.finished(results[i], len(tasks) - len(results))
            if len(results) < len(tasks):
                progress.tick(len(tasks) - len(results))
                time.sleep(settings.slurm_poll_s)
    except KeyboardInterrupt:
        print(f"\nInterrupted: cancelling the {len(tasks) - len(results)} unfinished tasks of array {array_id}.")
        for i, task in enumerate(tasks):
            if i not in results:
                task.cancel(check=False)
                results[i] = Result(jobs[i], "interrupted", message=f"scancel {task.job_id} by the launcher")
        raise Interrupted([results[i] for i in sorted(results)])
    return [results[i] for i in range(len(tasks))]
