"""How the neurons' time loops are executed: one setting per process, read by every forward.

    definition  the step-by-step definition: one time step of every layer after the other (the
                authors' order of operations), Hessian-vector products one probe at a time
    torch       layer-major: each layer over all time steps at once, the LIF population and the
                recurrence as single autograd nodes running torch loops (any device)
    triton      as torch, with the LIF loops as fused Triton kernels (CUDA, float32, Triton installed)

The fast paths are the multi-step neurons of common/fast/ (one module per step function of
common/neurons.py). A script sets it once (`from_args`) before building any model; the fc stack, the
conv stack (`runs_fast`), the multi-step LIF and the Hessian path read `current()`. Unset, it is the device's default: triton on
CUDA where Triton is importable, torch otherwise.
"""
import contextlib

import torch

from common.errors import KitError

NAMES = ("definition", "torch", "triton")
_setting = None


def triton_available():
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def supported(device):
    """The settings that can run on `device`."""
    cuda = torch.device(device).type == "cuda"
    return ("definition", "torch", "triton") if cuda and triton_available() else ("definition", "torch")


def default(device):
    return "triton" if "triton" in supported(device) else "torch"


def set_execution(name, device="cpu"):
    """Set the process-wide execution (None: the device's default); returns the name set."""
    name = default(device) if name is None else name
    if name not in supported(device):
        raise KitError(f"--execution {name} is not available on {torch.device(device).type} "
                       f"(available: {', '.join(supported(device))})")
    global _setting
    _setting = name
    return name


def current():
    """The setting in force: the one set, else the default of the machine (CUDA when present)."""
    return _setting or default("cuda" if torch.cuda.is_available() else "cpu")


def is_definition():
    return current() == "definition"


def runs_fast(model):
    """Whether `model` runs forward_fast: its `fast` attribute when set (tests, benchmarks), else the setting."""
    return not is_definition() if model.fast is None else model.fast


@contextlib.contextmanager
def using(name):
    """Run a block under another setting (tests and benchmarks compare the paths in one process)."""
    global _setting
    before, _setting = _setting, name
    try:
        yield
    finally:
        _setting = before


def from_args(args, device):
    """Set the execution from --execution / --definition; returns the line that records it."""
    chosen = getattr(args, "execution", None)
    if args.definition and chosen not in (None, "definition"):
        raise KitError(f"--definition contradicts --execution {chosen}")
    name = set_execution("definition" if args.definition else chosen, device)
    return f"execution: {name}" + ("" if chosen or args.definition else " (the default on this device)")
