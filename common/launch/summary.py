"""What the launcher prints while jobs run (one line per start and end, a heartbeat with an ETA), the summary
of a stage with every failed job, and the profile.csv rows of finished jobs."""
import csv
import os
import socket
import time

from common.launch.jobs import last_lines


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
