"""The one error type of the kit: a problem with the user's input or files, reported as one line."""


class KitError(Exception):
    """A problem with the user's input or files, reported as one clear message (no traceback)."""


class RunInUse(KitError):
    """Another process holds the run's lock (common.runs.begin): exit code 75, the holder named."""
    exit_code = 75
