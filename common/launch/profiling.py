"""Peak GPU memory and device name of a run, written as JSON at exit for the launcher's profile.csv
(registered by common/launch/profiled.py, through which the launcher runs every job)."""
import atexit
import json
import os
import platform
import sys


def write_profile_at_exit():
    """If HSTNN_PROFILE_FILE is set, write {"device", "peak_gpu_mem_bytes", "peak_gpu_reserved_bytes"}
    there when the program exits (the GPU numbers are null when CUDA was not used)."""
    path = os.environ.get("HSTNN_PROFILE_FILE")
    if path:
        atexit.register(_write_profile, path)


def _write_profile(path):
    torch = sys.modules.get("torch")  # not imported: CUDA was not used
    used_cuda = torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized()
    profile = {
        "device": torch.cuda.get_device_name() if used_cuda else (platform.processor() or platform.machine() or "cpu"),
        "peak_gpu_mem_bytes": torch.cuda.max_memory_allocated() if used_cuda else None,
        "peak_gpu_reserved_bytes": torch.cuda.max_memory_reserved() if used_cuda else None,
    }
    try:  # never through a symbolic link
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644), "w") as f:
            json.dump(profile, f)
    except OSError:
        pass  # a profile is never worth failing a finished run
