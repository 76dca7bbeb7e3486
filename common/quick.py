"""Quick runs: --max_batches N trains on at most N batches per epoch, --eval_batches N evaluates (validation
and test) on at most N batches. Both change the numbers: they are ordinary flags, recorded with the others,
and every log of such a run says so on one line near its top. Without them the data pass through untouched."""
import itertools


class FirstBatches:
    """The first n batches of every pass over `batches` (a DataLoader: a shuffled one still reshuffles on every
    pass, so each epoch sees other batches); its other attributes (.dataset ...) are the loader's."""

    def __init__(self, batches, n):
        self.batches, self.n = batches, n

    def __iter__(self):
        return itertools.islice(iter(self.batches), self.n)

    def __len__(self):
        return min(self.n, len(self.batches))

    def __getattr__(self, name):
        return getattr(self.__dict__["batches"], name)


def first_batches(batches, n):
    """`batches` limited to n per pass (FirstBatches), or untouched when n is None."""
    return batches if n is None else FirstBatches(batches, n)


def first_chunks(columns, n, bptt):
    """A batchified token split [steps, batch] limited to its first n chunks of bptt steps (n*bptt + 1 rows: the
    last chunk's targets are the next row), or untouched when n is None."""
    return columns if n is None else columns[:n * bptt + 1]


def quick_line(args):
    """The log line of a quick run, or None for a full one."""
    parts = []
    if getattr(args, "max_batches", None) is not None:
        parts.append(f"at most {args.max_batches} training batches per epoch (--max_batches)")
    if getattr(args, "eval_batches", None) is not None:
        parts.append(f"at most {args.eval_batches} batches per evaluation (--eval_batches)")
    if not parts:
        return None
    return "quick run: " + ", ".join(parts) + "; its numbers are not those of the full data"
