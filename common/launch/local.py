"""The local queue: a number of slots per GPU (or CPU jobs without one), CUDA_VISIBLE_DEVICES per job, and
Ctrl-C, SIGTERM or SIGHUP stopping the queue and every job it started."""
import os
import signal
import threading
import time
from collections import deque

from common.launch.jobs import Interrupted, Result, finished_result, start_job
from common.launch.summary import say

POLL_S = 0.05


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


STOP_SIGNALS = {signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP (terminal closed)"}


class Stop(KeyboardInterrupt):
    def __init__(self, why):
        super().__init__(why)
        self.why = why


def _raise_stop(signum, frame):
    raise Stop(STOP_SIGNALS.get(signum, f"signal {signum}"))


def stop_jobs(running, why="Ctrl-C", grace_s=10.0):
    """SIGTERM every running job's process group, SIGKILL what is left after grace_s; reap them."""
    in_main = threading.current_thread() is threading.main_thread()  # a second Ctrl-C must not orphan jobs:
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, *STOP_SIGNALS)} if in_main else {}
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
                res.status, res.message = "interrupted", f"stopped by the launcher ({why})"
                results.append(res)
                del running[pid]
        if running and time.time() > deadline:
            for pid in running:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(POLL_S)
    for sig, handler in old.items():
        signal.signal(sig, handler)
    return results


def next_job(pending, running):
    """The first waiting job whose run is not running already (one launcher never runs a run twice at once)."""
    busy = {run["job"].key for run in running.values()}
    for job in pending:
        if job.key not in busy:
            pending.remove(job)
            return job
    return None


def run_local(jobs, settings, progress, gpus):
    """Run the jobs on the local queue (gpus: ids, or [] for CPU jobs); return their Results. Ctrl-C, SIGTERM
    and SIGHUP stop the queue and the jobs; a job also ends when the launcher is killed (common.launch.jobs)."""
    slots = Slots(gpus, settings.slots_per_gpu) if gpus else Slots([None], settings.cpu_jobs)
    cpu_only = not gpus
    progress.capacity = slots.capacity
    pending, running, results = deque(jobs), {}, []
    in_main = threading.current_thread() is threading.main_thread()
    old = {sig: signal.signal(sig, _raise_stop) for sig in STOP_SIGNALS  # nohup's SIG_IGN stays
           if signal.getsignal(sig) is not signal.SIG_IGN} if in_main else {}
    try:
        while pending or running:
            while pending and slots.free():
                job = next_job(pending, running)
                if job is None:
                    break
                gpu = slots.take()
                try:
                    proc = start_job(job, gpu, cpu_only, settings.cpu_jobs)
                except OSError as e:  # e.g. log/launcher/<job>.out became a symbolic link
                    slots.give_back(gpu)
                    results.append(Result(job, "blocked", message=f"cannot write {job.out_path}: {e.strerror}"))
                    continue
                running[proc.pid] = dict(job=job, proc=proc, gpu=gpu, start=time.time())
                progress.started(job, gpu)
            for pid, run in list(running.items()):
                got, status, usage = os.wait4(pid, os.WNOHANG)
                if got:
                    del running[pid]
                    slots.give_back(run["gpu"])
                    res = finished_result(run["job"], run["proc"], status, usage, run["start"], run["gpu"])
                    results.append(res)
                    progress.finished(res, len(pending))
            progress.tick(len(pending))
            time.sleep(POLL_S)
    except KeyboardInterrupt as stop:
        why = stop.why if isinstance(stop, Stop) else "Ctrl-C"
        say(f"\nInterrupted ({why}): stopping {len(running)} running job(s); {len(pending)} not started.")
        results += stop_jobs(running, why)
        results += [Result(job, "not started") for job in pending]
        raise Interrupted(results)
    except BaseException:  # the launcher itself fails: its jobs end too
        stop_jobs(running, "launcher error", grace_s=2.0)
        raise
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return results
