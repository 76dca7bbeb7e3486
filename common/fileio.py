"""Files written whole or not at all, and a full disk reported as one line.

Checkpoints, resume points, trace caches, importance tables, run records and frame caches are all written
through write_atomic: into a temporary file beside the target, then renamed over it, so a reader never sees
half a file. When the disk (or the user's quota) is full, the temporary file is removed and the write ends
in a KitError naming the file; the previous version of the file is untouched, so the same command run again
once there is space resumes where the run stopped.
"""
import errno
import os

from common.errors import KitError

FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full(error):
    """True when an OSError says the disk or the quota is full (by its errno, or by its text where a library such
    as HDF5 passes the system's message on without the errno)."""
    return isinstance(error, OSError) and (error.errno in FULL or any(os.strerror(n) in str(error) for n in FULL))


def full_disk_error(path, error):
    quota = error.errno == errno.EDQUOT or os.strerror(errno.EDQUOT) in str(error)
    return KitError(f"cannot write {path}: {'the disk quota is exceeded' if quota else 'the disk is full'}; "
                    "nothing was half written: free some space and run the same command again "
                    "(an interrupted training resumes)")


def write_atomic(path, write, mode="wb", **open_args):
    """write(f) on a fresh temporary file (never opened through a link) with `mode`, then rename it to `path`.

    Pass torch.save / np.save a file object (write=lambda f: torch.save(obj, f)): torch.save given a file
    name reports a full disk as a RuntimeError without errno, given a file object as OSError(ENOSPC)."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
        with os.fdopen(fd, mode, **open_args) as f:
            write(f)
        os.replace(tmp, path)
    except OSError as e:
        if disk_full(e):
            raise full_disk_error(path, e) from None
        raise
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
