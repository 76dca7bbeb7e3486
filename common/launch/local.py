"""The local queue: a number of slots per GPU (or CPU jobs without one), CUDA_VISIBLE_DEVICES per job, and
Ctrl-C stopping the queue and every job it started."""
import os
import signal
import threading
import time
from collections import deque

from common.launch.jobs import Interrupted, Result, finished_result, start_job
from common.launch.settings import visible_gpus

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
