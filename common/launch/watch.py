"""What a running job's training log says about its progress: the epochs it has finished (of how many), the
batch of the epoch under way, and from the epoch times how long the rest will take. Only the lines written
since the launcher started the job count (a log is appended to by every run of the same name)."""
import os
import re

EPOCH_END = re.compile(r"^\| end of epoch +(\d+) \| time: +([0-9.]+)s")
BATCH = re.compile(r"^\| epoch +(\d+) \| +(\d+)/ *(\d+) batches")
RESUMED = re.compile(r"^resuming from .* after (?:epoch|iteration) (\d+)")
READ_AT_MOST = 1 << 20  # bytes per look


class LogWatch:
    """Reads the new lines of one job's training log. total: the epochs of its stage (None: not known).
    In the DVS Gesture script an "epoch" is one iteration and the log counts them the same way."""

    def __init__(self, path, total=None):
        self.path, self.total, self.inode, self.rest = path, total, None, b""
        self.offset = self.position()  # the log so far is an earlier run's
        self.base = 0          # epochs finished before this launch (a resumed run)
        self.epoch = None      # the last epoch finished
        self.batch = None      # (epoch, batch, batches) of the epoch under way
        self.seconds = 0.0     # the time of the epochs finished in this launch,
        self.units = 0         # and how many epochs that was

    def position(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return 0
        self.inode = st.st_ino
        return st.st_size

    def look(self):
        """Read what the log gained since the last look (from the start of a log that was replaced)."""
        try:
            with os.fdopen(os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as f:
                st = os.fstat(f.fileno())
                if st.st_ino != self.inode or st.st_size < self.offset:
                    self.inode, self.offset, self.rest = st.st_ino, 0, b""
                f.seek(self.offset)
                data = f.read(READ_AT_MOST)
        except OSError:
            return
        self.offset += len(data)
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            self.feed(line.decode("utf-8", errors="replace").strip())

    def feed(self, line):
        m = RESUMED.match(line)
        if m:
            self.base = int(m.group(1))
            return
        m = EPOCH_END.match(line)
        if m:
            epoch, seconds = int(m.group(1)), float(m.group(2))
            before = self.base if self.epoch is None else self.epoch
            if epoch > before:
                self.units += epoch - before
                self.seconds += seconds
            self.epoch = epoch
            return
        m = BATCH.match(line)
        if m:
            self.batch = tuple(int(g) for g in m.groups())

    @property
    def done(self):
        return self.base if self.epoch is None else self.epoch

    def seconds_left(self):
        """The time the remaining epochs take at the mean pace of those finished in this launch; None until
        one has finished or while the total is not known."""
        if self.total is None or self.units == 0:
            return None
        under_way = self.batch[1] / self.batch[2] if self.batch and self.batch[0] > self.done and self.batch[2] else 0
        return max(0.0, self.total - self.done - under_way) * self.seconds / self.units

    def text(self, hms):
        """e.g. "3/200 epochs, epoch 4 at batch 200/414, 1:10:05 left" (hms formats seconds)."""
        total = "?" if self.total is None else self.total
        if self.epoch is None and self.batch is None:
            return f"{self.done}/{total} epochs, none finished here yet" if self.base else "setting up, no epoch yet"
        text = f"{self.done}/{total} epochs"
        if self.batch and self.batch[0] > self.done:
            text += f", epoch {self.batch[0]} at batch {self.batch[1]}/{self.batch[2]}"
        left = self.seconds_left()
        if self.total is not None and self.done >= self.total:
            return text + ", final test"
        return text + (f", {hms(left)} left" if left is not None else ", time left unknown")
