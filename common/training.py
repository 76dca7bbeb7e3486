"""What every experiment's training needs: device and seeds, logs, checkpoints, the best model and resume point
of a training stage (Checkpoint; the epoch loop itself is written out in each script)."""
import hashlib
import logging
import os
import random
import sys
import time

import numpy as np
import torch

from common.errors import KitError, RunInUse  # noqa: F401 (KitError re-exported)
from common import runs
from common.fileio import disk_full, full_disk_error, write_atomic
from common.runs import (fault_point, log_path, log_test_block, new_run, record_path,  # noqa: F401 (re-exported)
                         resume_path)


def run_main(main, interrupted=None):
    """Call main(); a KitError ends the program with its message and exit code 2 (75: the run is in use).
    A run that diverges ends with its record saying so (exit code 3); one that fails after it began, with a
    record saying failed. With `interrupted` (what a stop leaves behind), Ctrl-C ends it with that one line
    and exit code 130, without a traceback. The run's lock is released however it ends."""
    try:
        main()
    except runs.Diverged as e:
        logging.getLogger("hstnn").info(f"diverged at epoch {e.epoch}: {e.what}")
        if runs.current_name():
            runs.write_record("diverged", diverged={"epoch": e.epoch, "what": e.what})
        print(f"diverged: run {runs.current_name()} stopped at epoch {e.epoch} ({e.what}); its record says "
              "diverged and its table cell reads div", file=sys.stderr)
        sys.exit(3)
    except KitError as e:
        message = " ".join(str(e).splitlines())  # always one line
        if runs.current_name() and not isinstance(e, RunInUse):
            runs.write_failed(message)
        print("error: " + message, file=sys.stderr)
        sys.exit(getattr(e, "exit_code", 2))
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        print(f"interrupted: {interrupted}", file=sys.stderr)
        sys.exit(130)
    except BaseException as e:
        if runs.current_name() and not isinstance(e, (SystemExit, KeyboardInterrupt)):
            runs.write_failed(f"{type(e).__name__}: {' '.join(str(e).splitlines())}")
        raise
    finally:
        runs.end()


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
    new_run()  # a new command in this process: forget the last one's test line
    os.makedirs(log_dir, exist_ok=True)
    logger = logging.getLogger("hstnn")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    for handler in (logging.StreamHandler(sys.stdout), NoLinkFileHandler(os.path.join(log_dir, f"{name}.log"))):
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    return logger


class NoLinkFileHandler(logging.FileHandler):
    """Appends to a log file, never through a symbolic link planted in its place."""

    def __init__(self, path):
        if os.path.islink(path):
            raise KitError(f"{path} is a symbolic link; a log is never written through one (remove the link)")
        super().__init__(path, mode="a", delay=True)

    def _open(self):
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)

    def handleError(self, record):
        """A full disk stops the run with one line (logging's default prints a traceback and goes on)."""
        error = sys.exc_info()[1]
        if disk_full(error):
            raise full_disk_error(self.baseFilename, error) from None
        super().handleError(record)


# -- checkpoints ------------------------------------------------------------------------------------
def save_atomic(obj, path):
    """torch.save to a temporary file, then rename: a checkpoint is never half written (a full disk: KitError)."""
    write_atomic(path, lambda f: torch.save(obj, f))


def load_checkpoint(path, needed_for, how_to_make=None):
    if not os.path.exists(path):
        hint = f" Create it first with: {how_to_make}" if how_to_make else ""
        raise KitError(f"{needed_for} needs the checkpoint {path}, which does not exist.{hint}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated file, not a torch file, or pickled objects we refuse to run
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise KitError(f"cannot read checkpoint {path} ({type(e).__name__}: {first}); it is corrupt or not a checkpoint of this kit")


def load_weights(model, state, path):
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise KitError(f"checkpoint {path} does not fit the model built from its own shapes: {e}")


def guard_overwrite(path, overwrite):
    """A finished checkpoint is never silently replaced: refuse, or keep the old one aside."""
    if not os.path.exists(path):
        return
    record = record_path(log_path(os.path.basename(path)[:-3], "train", os.path.dirname(os.path.dirname(path))))
    if not overwrite:
        held = "a trained model" if os.path.exists(record) else \
            "a checkpoint from an earlier run (finished or not: it has no resumable state and no record of a finished run)"
        raise KitError(f"{path} already holds {held}. Pass --overwrite to train again "
                       f"(the old file is then kept as {path[:-3]}.replaced-<time>.t7), or use a test mode.")
    stamp = set_aside(path)
    if os.path.exists(record):  # its completion record goes aside with it
        os.replace(record, f"{record[:-5]}.replaced-{stamp}.json")


def set_aside(path):
    """Rename <stem>.<ext> to <stem>.replaced-<time>.<ext> (never deleted); returns the time stamp."""
    stamp = time.strftime('%Y%m%d-%H%M%S')
    stem, ext = os.path.splitext(path)
    if stem.endswith(".resume"):
        stem, ext = stem[:-len(".resume")], ".resume" + ext
    os.replace(path, f"{stem}.replaced-{stamp}{ext}")
    return stamp


def save_resume_point(model, checkpoint_path, meta, optimizer=None, epoch=0, best=None, record=()):
    """Everything needed to continue a run after `epoch` (0: before the first epoch), with a digest of its
    contents (load_resume checks it: torch's zip format does not notice a flipped bit in a tensor)."""
    state = dict(meta, net=model.state_dict(), optimizer=None if optimizer is None else optimizer.state_dict(),
                 epoch=epoch, best=best, record=list(record), rng=rng_state(), binding=runs.binding())
    save_atomic(dict(state, digest=content_digest(state)), resume_path(checkpoint_path))
    if epoch == 0:
        fault_point("resume-start")


def content_digest(obj):
    """SHA-256 of nested dicts, lists, tuples, tensors and plain values, in a fixed order."""
    digest = hashlib.sha256()

    def feed(x):
        if isinstance(x, dict):
            digest.update(b"{")
            for k in sorted(x, key=str):
                feed(str(k))
                feed(x[k])
            digest.update(b"}")
        elif isinstance(x, (list, tuple)):
            digest.update(b"[")
            for v in x:
                feed(v)
            digest.update(b"]")
        elif isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            digest.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            digest.update(t.view(-1).view(torch.uint8).numpy() if t.numel() else b"")  # no copy
        else:
            digest.update(f"{type(x).__name__}:{x!r};".encode())
    feed(obj)
    return digest.hexdigest()


def rng_state():
    """Every random state as tensors and plain values, so that a resume file loads with weights_only=True."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, mt, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(), "numpy": (str(name), torch.from_numpy(keys.astype(np.int64)), int(pos),
                                                       int(has_gauss), float(gauss)),
            "python": (int(version), tuple(int(v) for v in mt), gauss_next),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state):
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos, has_gauss, gauss))
    version, mt, gauss_next = state["python"]
    random.setstate((version, tuple(mt), gauss_next))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- the best model and the resume point of a training stage ------------------------------------------
class Checkpoint:
    """The best model of a training stage in `path`, and the point an interrupted run resumes from.

        ckpt = Checkpoint(path, meta, "val_loss_record", keep="lowest", resume=run.resume)
        start = ckpt.restore(model, optimizer)      # 1, or the epoch after the last one saved
        for epoch in range(start, epochs + 1):
            ...                                     # train, evaluate and log, schedule the lr
            ckpt.end_epoch(epoch, score)            # the best model so far, then the resume point
        model = ckpt.finish()                       # the best model's weights

    meta: the checkpoint's keys besides the weights; record_key: the key of the scores, one per epoch;
    keep: "lowest" or "highest" score. The resume point (beside `path`, written atomically after every
    epoch, with the weights, optimizer, RNG states, best score and record) stays until the run's record is
    written (common.runs.finish_run), so a run killed even in its final test resumes.
    """

    def __init__(self, path, meta, record_key, keep, resume=None):
        if keep not in ("lowest", "highest"):
            raise ValueError(f"keep must be 'lowest' or 'highest', not {keep!r}")
        self.path, self.meta, self.record_key, self.keep, self.resume = path, meta, record_key, keep, resume
        self.model = self.optimizer = self.best = None
        self.record = []

    def restore(self, model, optimizer):
        """The first epoch to run: 1 for a fresh run (which writes its resume point at once, marking the run
        unfinished), else the epoch after the resume point's, with its weights, optimizer, scores and RNG states."""
        self.model, self.optimizer, resume = model, optimizer, self.resume
        if resume is None:
            save_resume_point(model, self.path, self.meta)
            return 1
        model.load_state_dict(resume["net"])
        if resume["optimizer"] is not None:
            optimizer.load_state_dict(resume["optimizer"])
        self.best, self.record = resume["best"], list(resume["record"])
        set_rng_state(resume["rng"])
        return resume["epoch"] + 1

    def end_epoch(self, epoch, score, loss=None):
        """Keep the model if `score` is the best so far, then save the resume point after `epoch`. A non-finite
        score, loss or weight stops the run as diverged (common.runs.Diverged) before anything is saved."""
        runs.check_finite(epoch, score=score, loss=loss)
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise runs.Diverged(epoch, "non-finite weights")
        runs.note_epoch(epoch)
        self.record.append(score)
        if self.best is None or (score < self.best if self.keep == "lowest" else score > self.best):
            self.best = score
            self._save_best()
        save_resume_point(self.model, self.path, self.meta, self.optimizer, epoch, self.best, self.record)
        fault_point("epoch")

    def finish(self):
        """The model with the best epoch's weights (with no epoch run, the model as it is counts as the best)."""
        if not os.path.exists(self.path):
            self._save_best()
        self.model.load_state_dict(torch.load(self.path, map_location="cpu", weights_only=True)["net"])
        fault_point("trained")
        return self.model

    def _save_best(self):
        save_atomic(dict(self.meta, net=self.model.state_dict(), **{self.record_key: list(self.record)}), self.path)


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
        state = torch.load(path, map_location="cpu", weights_only=True)
        digest = state.pop("digest")
    except Exception as e:  # truncated, not a torch file, pickled objects we refuse to run, or an old format
        raise KitError(f"cannot read the resumable state {path} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                       "delete it to start this run afresh")
    if digest != content_digest(state):
        raise KitError(f"the resumable state {path} is corrupt (its contents do not match their digest); "
                       "delete it to start this run afresh")
    return state
