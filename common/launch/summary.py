"""What the launcher prints while jobs run (one line per start and end, a heartbeat with an ETA), the summary
of a stage with every failed job, and the profile.csv rows of finished jobs."""
import csv
import os
import socket
import time

from common.launch.jobs import last_lines
from common.launch.watch import LogWatch


def hms(seconds):
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def say(text):
    """Print, and go on when the terminal is gone (after a hangup)."""
    try:
        print(text, flush=True)
    except OSError:
        pass


class Running:
    def __init__(self, job):
        self.job, self.watch, self.start = job, LogWatch(job.log_path), time.time()
        self.total_known = False  # watch.total is looked up at the first heartbeat, not when the job starts


class Progress:
    """One line per job start and end, and every every_s a heartbeat: the counts and the stage's ETA, then one
    line per running job with its epoch and batch from its log. totals(job): the epochs of its stage or None.
    tracked False (Slurm): which jobs run is not known here, the ETA comes from finished jobs only."""

    def __init__(self, label, total, every_s, capacity=1, totals=None, tracked=True):
        self.label, self.total, self.every_s, self.capacity = label, total, every_s, capacity
        self.totals, self.tracked = totals or (lambda job: None), tracked
        self.start = self.last_print = time.time()
        self.walls, self.failed, self.done, self.running = [], 0, 0, {}

    def line(self, text):
        say(f"[{self.label} {hms(time.time() - self.start)}] {text}")
        self.last_print = time.time()

    def eta(self, n_pending):
        """Seconds until the stage ends, or None while that is not known (a running job has not finished an
        epoch yet, or nothing tells how long a job that has not started will take)."""
        mean = sum(self.walls) / len(self.walls) if self.walls else None
        if not self.tracked:
            return None if mean is None or not n_pending else n_pending * mean / max(1, min(self.capacity, n_pending))
        lefts = [self.left(r, mean) for r in self.running.values()]
        if None in lefts:
            return None
        if mean is None and self.running:  # a job that has not started takes as long as the running ones
            mean = sum(time.time() - r.start + left for r, left in zip(self.running.values(), lefts)) / len(lefts)
        if n_pending and mean is None:
            return None
        slots = sorted(lefts + [0.0] * max(0, self.capacity - len(lefts)))
        for _ in range(n_pending):  # each waiting job goes to the slot that frees first
            slots[0] += mean
            slots.sort()
        return max(slots, default=0.0)

    def look(self, run):
        """Read what the job's log gained; the first time, also the epochs of its stage."""
        if not run.total_known:
            run.watch.total, run.total_known = self.totals(run.job), True
        run.watch.look()

    def left(self, run, mean):
        """A running job's time left: from its epochs (training), else from the finished jobs' mean while it has
        not run longer than that; None when not known."""
        if run.job.mode.startswith("train"):
            self.look(run)
            return run.watch.seconds_left()
        elapsed = time.time() - run.start
        return mean - elapsed if mean is not None and elapsed < mean else None

    def eta_text(self, n_pending):
        left = self.eta(n_pending)
        if left is None:
            return "ETA unknown"
        return f"ETA {hms(left)}" if left >= 1 or not (self.running or n_pending) else "ETA: final tests"

    def counts(self, n_pending):
        running = f"running {len(self.running)}, " if self.tracked else ""
        return f"done {self.done}/{self.total}, {running}failed {self.failed} | {self.eta_text(n_pending)}"

    def started(self, job, gpu):
        self.running[job.key] = Running(job)
        self.line(f"start {job.key} on {'CPU' if gpu is None else f'GPU {gpu}'}")

    def job_line(self, run):
        job, watch = run.job, run.watch
        if not job.mode.startswith("train"):
            return f"  {job.key}: testing, {hms(time.time() - run.start)}"
        self.look(run)
        text = watch.text(hms)
        if job.mode == "train2" and text.startswith("setting up"):
            text = "setup or Selection, no epoch yet"
        return f"  {job.key}: {text}"

    def finished(self, res, n_pending):
        self.running.pop(res.job.key, None)
        self.done += 1
        if res.status == "ok":
            self.walls.append(res.wall_s)
        else:
            self.failed += 1
        what = {"ok": "ok    ", "busy": "BUSY  "}.get(res.status, f"FAILED (exit code {res.exit_code})")
        self.line(f"{what} {res.job.key} in {hms(res.wall_s or 0)} | {self.counts(n_pending)}")
        if res.status == "busy":
            say(f"  {res.message}")

    def tick(self, n_pending):
        if time.time() - self.last_print >= self.every_s:
            lines = [self.job_line(r) for r in self.running.values()]  # read the logs before the ETA
            self.line(self.counts(n_pending))
            for text in lines:
                say(text)


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
