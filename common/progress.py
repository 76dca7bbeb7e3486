"""Progress bars with an ETA for long phases, shown only to a person watching a terminal.

A bar goes to stderr when stderr is a terminal and HSTNN_PROGRESS is not 0 (the launcher sets 0 for
its jobs). While a bar is shown, the lines of the "hstnn" logger and of print() are written above it;
the log files never see it. Without a bar the items pass through untouched.
"""
import contextlib
import logging
import os
import sys


def enabled():
    return os.environ.get("HSTNN_PROGRESS", "1") != "0" and sys.stderr.isatty()


def progress(items, desc, total=None, initial=0, unit="it", size=lambda item: 1):
    """items, with a bar advancing by size(item) after each item has been handled."""
    if not enabled():
        return items
    return _with_bar(items, desc, total, initial, unit, size)


def epoch_bar(epochs):
    """A range of epochs (range(start, last + 1)), with a bar that counts the epochs done before `start`."""
    return progress(epochs, "epochs", total=epochs.stop - 1, initial=epochs.start - 1, unit="epoch")


def _with_bar(items, desc, total, initial, unit, size):
    from tqdm import tqdm
    from tqdm.contrib import DummyTqdmFile
    from tqdm.contrib.logging import logging_redirect_tqdm

    with tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr, leave=False,
              dynamic_ncols=True) as bar, logging_redirect_tqdm([logging.getLogger("hstnn")]), \
            contextlib.redirect_stdout(DummyTqdmFile(sys.stdout)):
        for item in items:
            yield item
            bar.update(size(item))
