"""What every experiment's training needs: device and seeds, logs, checkpoints, the epoch loop."""
import logging
import os
import random
import sys
import time

import numpy as np
import torch

from common.progress import progress


class KitError(Exception):
    """A problem with the user's input or files, reported as one clear message (no traceback)."""


def run_main(main):
    """Call main(); a KitError ends the program with its message and exit code 2.
    When a launcher asks for it (HSTNN_PROFILE_FILE), the run's peak GPU memory is written at exit."""
    from common.profiling import write_profile_at_exit
    write_profile_at_exit()
    try:
        main()
    except KitError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


# -- device and seeds -------------------------------------------------------------------------------
def pick_device(args):
    """--device auto uses CUDA when present. --gpu N selects the card unless a launcher already
    set CUDA_VISIBLE_DEVICES; the chosen card is then cuda:0 of the visible ones."""
    if args.gpu is not None and "CUDA_VISIBLE_DEVICES" not in os.environ:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(args.gpu)
    if args.device == "cpu" or (args.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise KitError("--device cuda was requested but no CUDA device is available")
    return torch.device("cuda")


def seed_everything(seed):
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    np.random.seed(seed)
    random.seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


# -- logs -------------------------------------------------------------------------------------------
def get_logger(name, log_dir="log"):
    """Bare-message logger to stdout and log/<name>.log (appended), as the authors' logs."""
    os.makedirs(log_dir, exist_ok=True)
    logger = logging.getLogger("hstnn")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    for handler in (logging.StreamHandler(sys.stdout), logging.FileHandler(os.path.join(log_dir, f"{name}.log"), mode="a", delay=True)):
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    return logger


def log_test_block(logger, line, width):
    """The three lines the aggregator reads at the end of every train and test log."""
    logger.info("=" * width)
    logger.info(line)
    logger.info("=" * width)


# -- checkpoints ------------------------------------------------------------------------------------
def save_atomic(obj, path):
    """torch.save to a temporary file, then rename: a checkpoint is never half written."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, needed_for, how_to_make=None):
    if not os.path.exists(path):
        hint = f" Create it first with: {how_to_make}" if how_to_make else ""
        raise KitError(f"{needed_for} needs the checkpoint {path}, which does not exist.{hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated file, not a torch file, or pickled objects we refuse to run
        raise KitError(f"cannot read checkpoint {path} ({type(e).__name__}: {e}); it is corrupt or not a checkpoint of this kit")


def load_weights(model, state, path):
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise KitError(f"checkpoint {path} does not fit the model built from its own shapes: {e}")


def guard_overwrite(path, overwrite):
    """A finished checkpoint is never silently replaced: refuse, or keep the old one aside."""
    if not os.path.exists(path):
        return
    if not overwrite:
        raise KitError(f"{path} already holds a trained model. Pass --overwrite to train again "
                       f"(the old file is then kept as {path[:-3]}.replaced-<time>.t7), or use a test mode.")
    os.replace(path, f"{path[:-3]}.replaced-{time.strftime('%Y%m%d-%H%M%S')}.t7")


def resume_path(checkpoint_path):
    return checkpoint_path[:-3] + ".resume.t7"


def save_resume_point(model, checkpoint_path, meta, optimizer=None, epoch=0, best=None, record=()):
    """Everything needed to continue a run after `epoch` (0: before the first epoch)."""
    save_atomic(dict(meta, net=model.state_dict(), optimizer=None if optimizer is None else optimizer.state_dict(),
                     epoch=epoch, best=best, record=list(record), rng=rng_state()), resume_path(checkpoint_path))


def rng_state():
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state):
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- the epoch loop ---------------------------------------------------------------------------------
def train_epochs(model, optimizer, epochs, train_one_epoch, evaluate, is_better, checkpoint_path,
                 checkpoint_meta, record_key, after_epoch=None, resume=None):
    """Train for `epochs`, keep the best model by `evaluate` in checkpoint_path, and return it.

    train_one_epoch(epoch) trains; evaluate(epoch) returns the selection metric (and logs it);
    is_better(new, best) compares; after_epoch(epoch) runs last (e.g. the lr schedule).
    checkpoint_meta() gives the checkpoint's other keys; the metric history goes in record_key.
    After every epoch a resumable state is written beside the checkpoint (atomically); `resume`
    is that state when an interrupted run is continued. It is deleted when training completes.
    """
    start, best, record = 1, None, []
    if resume is not None:
        model.load_state_dict(resume["net"])
        if resume["optimizer"] is not None:
            optimizer.load_state_dict(resume["optimizer"])
        start, best, record = resume["epoch"] + 1, resume["best"], list(resume["record"])
        set_rng_state(resume["rng"])
    else:
        save_resume_point(model, checkpoint_path, checkpoint_meta())  # marks the run as unfinished
    for epoch in progress(range(start, epochs + 1), "epochs", total=epochs, initial=start - 1, unit="epoch"):
        train_one_epoch(epoch)
        score = evaluate(epoch)
        record.append(score)
        if best is None or is_better(score, best):
            best = score
            save_atomic(dict(checkpoint_meta(), net=model.state_dict(), **{record_key: list(record)}), checkpoint_path)
        if after_epoch is not None:
            after_epoch(epoch)
        save_resume_point(model, checkpoint_path, checkpoint_meta(), optimizer, epoch, best, record)
    if not os.path.exists(checkpoint_path):  # epochs == 0: the model as it is counts as the best
        save_atomic(dict(checkpoint_meta(), net=model.state_dict(), **{record_key: list(record)}), checkpoint_path)
    model.load_state_dict(torch.load(checkpoint_path, map_location="cpu", weights_only=True)["net"])
    if os.path.exists(resume_path(checkpoint_path)):
        os.remove(resume_path(checkpoint_path))
    return model


def resume_or_guard(checkpoint_path, overwrite):
    """The resumable state of an interrupted run of this checkpoint, or None for a fresh run, which
    may replace a finished checkpoint only with `overwrite` (guard_overwrite)."""
    resume = load_resume(checkpoint_path)
    if resume is None:
        guard_overwrite(checkpoint_path, overwrite)
    return resume


def load_resume(checkpoint_path):
    path = resume_path(checkpoint_path)
    if not os.path.exists(path):
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise KitError(f"cannot read the resumable state {path} ({type(e).__name__}: {e}); delete it to start this run afresh")
