"""Command-line flags shared by every experiment script, their checks, the run names derived from them,
the commands that error messages suggest, and the start of every command (start_run)."""
import argparse
import math
import os
import shlex
import sys

import torch

from common.criteria import CRITERIA
from common.hessian import allow_long_work, check_probes
from common.hybrid_conv import add_size_arguments, check_size_arguments
from common import datadigest, execution, runs
from common.quick import quick_line
from common.selection import SelectionError
from common.stages import ensure_dirs, fc_shapes
from common.training import (KitError, get_logger, guard_overwrite, load_checkpoint, pick_device, resume_or_guard,
                             resume_path, seed_everything, set_aside)

MODES = ("train1", "test1", "train2", "test2")


def experiment_parser(description, models=("rnn", "snn", "ffs", "hybrid")):
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                allow_abbrev=False)  # exact flag names: a typo never reaches another flag
    p.add_argument("--data", type=str, help="dataset location")
    p.add_argument("--model", type=str, default="hybrid", choices=models,
                   help="rnn/lstm: pure non-spiking; snn: pure spiking; ffs: hybrid trained from scratch at --ratio; "
                        "hybrid: HSTNN (train1 = Adaptation of the redundant network, train2 = Selection + Restoration)")
    if "lstm" in models:  # the fully connected experiments: RNN or LSTM neurons beside the LIF ones
        p.add_argument("--cell", type=str, default=None, choices=("rnn", "lstm"),
                       help="non-spiking neuron type of the ffs/hybrid models (None: rnn; the lstm-* experiments "
                            "set lstm); --model rnn and --model lstm imply their own")
    p.add_argument("--mode", type=str, default="train1", choices=MODES,
                   help="train1/test1: stage 1 (every model); train2/test2: Selection + Restoration (hybrid only)")
    p.add_argument("--ratio", type=float, default=0.5, help="SNN fraction of the neurons (ffs, and hybrid in train2/test2)")
    p.add_argument("--seed", type=int, default=1111, help="random seed; also part of every file name")
    p.add_argument("--batch_size", type=int, help="batch size")
    p.add_argument("--stage1_epochs", type=int, help="epochs of stage 1 (train1)")
    p.add_argument("--stage2_epochs", type=int, help="epochs of Restoration (train2)")
    p.add_argument("--stage1_lr", type=float, help="learning rate of stage 1")
    p.add_argument("--stage2_lr", type=float, help="learning rate of Restoration")
    p.add_argument("--dropout", type=float, help="dropout probability")
    p.add_argument("--clip", type=float, help="gradient-norm clipping")
    p.add_argument("--log-interval", type=int, help="batches between progress lines")
    p.add_argument("--max_batches", type=int, default=None,
                   help="a quick run: train on at most this many batches per epoch (default: all); changes the "
                        "numbers, and every log of the run says so")
    p.add_argument("--eval_batches", type=int, default=None,
                   help="a quick run: evaluate (validation and test) on at most this many batches (default: all); "
                        "changes the numbers, and every log of the run says so")
    p.add_argument("--hessian_probes", type=int, default=300, help="Rademacher probes of the Hutchinson trace estimate")
    p.add_argument("--selection", type=str, default="hessian", choices=tuple(CRITERIA),
                   help="how Selection ranks neurons, with the same counts and per-layer rule: hessian = the "
                        "Hessian-trace importance (the method); the ablations: random = uniform scores (draw "
                        "--selection_draw of a generator seeded by --seed), reversed = the least important by the "
                        "Hessian, magnitude = ||w||^2/numel alone, trace = the trace alone, taylor = |sum g*w| on "
                        "the trace batch, oracle = each neuron's loss increase when it alone is removed, on "
                        "held-out data (slow: one evaluation per neuron)")
    p.add_argument("--selection_draw", type=int, default=0,
                   help="which draw of --selection random (0, 1, ...; 0 is the draw of earlier versions)")
    p.add_argument("--truncate_counts", action="store_true",
                   help="compute neuron counts with the original int() truncation instead of refusing non-integer counts")
    p.add_argument("--yes", action="store_true", help="go on with work projected to take over an hour")
    p.add_argument("--overwrite", action="store_true",
                   help="retrain even if the checkpoint exists (the old checkpoint is kept aside, never deleted)")
    p.add_argument("--device", type=str, default="auto", choices=("auto", "cpu", "cuda"), help="where to run")
    p.add_argument("--gpu", type=str, default=None, help="GPU index (sets CUDA_VISIBLE_DEVICES unless already set)")
    p.add_argument("--cuda", action="store_true", help="accepted for compatibility with the original scripts; see --device")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--allow-unfinished", "--allow_unfinished", action="store_true",
                   help="train2: select from an Adaptation checkpoint without a finished run's record (interrupted, "
                        "changed since, or the authors' own checkpoints); the log and the record say so")
    p.add_argument("--definition", action="store_true",
                   help="run the step-by-step definition of the neurons in every stage (same as --execution definition)")
    p.add_argument("--execution", type=str, default=None, choices=("definition", "torch", "triton"),
                   help="how the time loops run: definition (step by step), torch (layer-major), triton (layer-major "
                        "with fused LIF kernels; CUDA only). Default: triton on CUDA with Triton installed, else torch")
    return p


def conv_parser(description, default_nwin):
    """experiment_parser with the flags that size a conv network (common.hybrid_conv.add_size_arguments)."""
    p = experiment_parser(description)
    add_size_arguments(p, default_nwin)
    return p


# flags (by dest) that must be whole numbers >= 1, when the script has them; a flag's spelling when not --<dest>
AT_LEAST_ONE = ("batch_size", "stage1_epochs", "stage2_epochs", "log_interval", "hessian_probes", "threads", "nhid",
                "emsize", "bptt", "stage1_decay", "stage2_decay", "val_size", "nwin", "hessian_batch", "dt", "ds",
                "test_interval", "max_batches", "eval_batches")
POSITIVE = ("stage1_lr", "stage2_lr", "clip")
SPELLING = {"log_interval": "log-interval"}


def check_args(args):
    """Every flag's range, checked before any data is read (KitError on the first bad one)."""
    if args.mode in ("train2", "test2") and args.model != "hybrid":
        raise KitError(f"--mode {args.mode} is the Selection/Restoration stage of --model hybrid only (got --model {args.model})")
    if (args.model == "ffs" or args.mode in ("train2", "test2")) and not 0 < args.ratio < 1:
        raise KitError(f"--ratio must lie strictly between 0 and 1 (got {args.ratio})")
    if not 0 <= args.seed < 2 ** 32:
        raise KitError(f"--seed must lie between 0 and 2**32 - 1 (got {args.seed}); it seeds torch, NumPy and Python")
    for key in AT_LEAST_ONE:
        value = getattr(args, key, None)
        if value is not None and value < 1:
            why = ": 0 epochs would save an untrained network as the stage's result" if key.endswith("_epochs") else ""
            raise KitError(f"--{SPELLING.get(key, key)} must be at least 1 (got {value}){why}")
    for key in POSITIVE:
        value = getattr(args, key, None)
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise KitError(f"--{key} must be a positive number (got {value})")
    check_probes(args.hessian_probes)
    if getattr(args, "dropout", None) is not None and not 0 <= args.dropout < 1:
        raise KitError(f"--dropout must lie in [0, 1) (got {args.dropout})")
    if args.model == "ffs" and getattr(args, "nhid", None) is not None:  # the fc scripts split nhid by the ratio
        fc_shapes(args.model, args.nhid, args.ratio, args.truncate_counts)
    if hasattr(args, "channels"):  # the conv scripts (conv_parser)
        check_size_arguments(args)


def check_before_data(args, parser, dataset, populations, select):
    """What needs no data, checked before any is read (and before any Hessian is computed):
    test1/test2: the checkpoint to re-test exists; train1/train2: a finished checkpoint is not replaced
    without --overwrite (common.training.guard_overwrite); train2 also: the Adaptation checkpoint exists and
    the selection rule `select` (common.selection) accepts --ratio for its populations.

    populations(checkpoint) -> {name: neurons or filters} of the redundant network; the rule is run on
    zero scores, so a ratio that Selection would refuse is refused now. An interrupted run that resumes
    skips the train checks (it continues what was already accepted)."""
    path = f"checkpoint/{run_name(dataset, args)}.t7"
    if args.mode in ("test1", "test2"):
        if not os.path.exists(path):
            load_checkpoint(path, args.mode, suggested_command(parser, args, args.mode.replace("test", "train")))
        return
    if os.path.exists(resume_path(path)):
        return
    if not args.overwrite:
        guard_overwrite(path, False)
    if args.mode != "train2":
        return
    adapted = f"checkpoint/{dataset}_hybrid_{args.seed}.t7"
    why = runs.adaptation_problem(adapted)
    if why and not os.path.exists(adapted):
        raise KitError(f"train2 needs a finished Adaptation, and {adapted} is not one ({why}). Train it again: "
                       f"{suggested_command(parser, args, 'train1', 'hybrid')} --overwrite")
    ckpt = load_checkpoint(adapted, f"train2 (ratio {args.ratio})", suggested_command(parser, args, "train1", "hybrid"))
    try:
        sizes = populations(ckpt)
    except (KeyError, TypeError, IndexError):  # not this kit's layout: the full load reports it later
        return
    try:
        select({name: [0.0] * n for name, n in sizes.items() if n > 0}, args.ratio, args.truncate_counts)
    except SelectionError as e:
        raise KitError(f"--ratio {args.ratio} does not fit {adapted}: {e}")


# flags (by dest) of Selection and Restoration only: a stage-1 command suggested from train2/test2 leaves them out
RESTORATION_ONLY = ("stage2_epochs", "stage2_lr", "stage2_decay", "selection", "selection_draw", "hessian_probes",
                    "hessian_batch", "allow_unfinished")


def suggested_command(parser, args, mode, model=None, argv=None):
    """The command line that makes the file a run needs: this script with the user's own flags (argv),
    --model/--mode set for the target run, the same --seed, --ratio only when the target's name has one,
    and for a stage-1 target none of the Restoration-only flags (RESTORATION_ONLY)."""
    model = model or args.model
    command = ["python", parser.prog, "--model", model, "--mode", mode, "--seed", str(args.seed)]
    if model == "ffs" or mode in ("train2", "test2"):
        command += ["--ratio", str(args.ratio)]
    drop = ("model", "mode", "ratio", "seed") + (RESTORATION_ONLY if mode in ("train1", "test1") else ())
    return " ".join(shlex.quote(word) for word in
                    command + other_flags(parser, sys.argv[1:] if argv is None else argv, drop))


def other_flags(parser, argv, drop=("model", "mode", "ratio", "seed")):
    """argv without the flags whose dest is in `drop` (and their values); --flag=value and, where the parser
    allows them, abbreviations count."""
    kept, skip = [], False
    for word in argv:
        if skip:
            skip = False
            continue
        flag = word.split("=", 1)[0]
        matches = [a for option, a in parser._option_string_actions.items() if option == flag] or \
                  {a for option, a in parser._option_string_actions.items()
                   if parser.allow_abbrev and option.startswith(flag) and flag.startswith("--")}
        action = next(iter(matches)) if len(matches) == 1 else None
        if action is not None and action.dest in drop:
            skip = "=" not in word and action.nargs != 0
            continue
        kept.append(word)
    return kept


def fc_populations(ckpt):
    """Neurons per population of a fully connected hybrid checkpoint (common.selection.select_fc's keys)."""
    return {f"{kind}{l + 1}": int(ckpt[f"{kind}_shape"][l]) for kind in ("rnn", "snn") for l in (0, 1)}


def conv_populations(ckpt):
    """Filters per layer and type of a conv hybrid checkpoint (names as common.hybrid_conv's probed groups)."""
    return {f"hcnn_layers.{l}.{kind}_fc": int(layer[f"{kind}_channels"])
            for l, layer in enumerate(ckpt["layer_config"]) for kind in ("rcnn", "scnn")}


def run_name(dataset, args):
    """<ds>_<model>_<seed>, plus _<ratio> for ffs and for the restored hybrid (train2/test2)."""
    return runs.run_name(dataset, args.model, args.seed, args.ratio, args.mode)


def load_script(path, name):
    """The experiment script at `path` as a module called `name`, without running its main. Every script
    offers the same interface: DATASET, parser, check_flags(args), load_data(args, device),
    model_from_checkpoint(ckpt, path, args, device) and test_metric(model, data, args)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def variant(base, prog_file, description, **defaults):
    """An experiment that is another experiment script with other defaults (lstm-ptb.py, lstm-smnist.py, the
    bias walkthrough): the script `base` (relative to experiments/) loaded as a module, its parser described as
    `description`, named after `prog_file` in usage and how-to-fix messages, and given `defaults`."""
    path = os.path.join(os.path.dirname(os.path.abspath(prog_file)), "..", base)
    module = load_script(path, os.path.splitext(os.path.basename(base))[0].replace("-", "_"))
    module.parser.description = description
    module.parser.set_defaults(**defaults)
    module.parser.prog = os.path.basename(prog_file)
    return module


def interface(module):
    """The interface of every experiment script (load_script), in its order: DATASET, parser, check_flags,
    load_data, model_from_checkpoint, test_metric."""
    return (module.DATASET, module.parser, module.check_flags, module.load_data, module.model_from_checkpoint,
            module.test_metric)


# -- the start of every command -----------------------------------------------------------------------
class Run:
    """One command of an experiment script (start_run): .args, .device, .data, .name, .checkpoint_path, .logger and,
    for a training that continues an interrupted one, .resume (its resumable state; None otherwise)."""

    def __init__(self, args, parser, dataset, device, data):
        self.args, self.parser, self.dataset, self.device, self.data = args, parser, dataset, device, data
        self.name = run_name(dataset, args)
        self.checkpoint_path = runs.checkpoint_path(self.name)
        self.logger = get_logger(f"{runs.log_kind(args.mode)}_{self.name}")
        self.resume = None

    def adaptation(self, model_from_checkpoint):
        """train2: (path, contents, network) of this seed's Adaptation checkpoint, which must be a finished
        run's (common.runs.require_finished_adaptation); the error messages give the command that makes it."""
        path = runs.checkpoint_path(runs.run_name(self.dataset, "hybrid", self.args.seed))
        how = suggested_command(self.parser, self.args, "train1", "hybrid")
        runs.require_finished_adaptation(path, self.args, self.logger, how)
        ckpt = load_checkpoint(path, f"train2 (ratio {self.args.ratio})", how)
        runs.set_parent("adaptation", runs.run_name(self.dataset, "hybrid", self.args.seed), path)
        return path, ckpt, model_from_checkpoint(ckpt, path, self.args, self.device)

    def resumed_model(self, model_from_checkpoint):
        """The network of an interrupted training that continues (its resumable state); None otherwise."""
        if self.resume is None:
            return None
        return model_from_checkpoint(self.resume, self.checkpoint_path, self.args, self.device)

    def retest(self, model_from_checkpoint, test):
        """test1/test2: test(network) of the checkpoint to test again, then the completion record."""
        test(model_from_checkpoint(self.saved(), self.checkpoint_path, self.args, self.device))
        self.finish()

    def saved(self):
        """test1/test2: the contents of the checkpoint to test again."""
        how = suggested_command(self.parser, self.args, self.args.mode.replace("test", "train"))
        ckpt = load_checkpoint(self.checkpoint_path, self.args.mode, how)
        runs.set_parent("trained", self.name, self.checkpoint_path)
        return ckpt

    def finish(self):
        """The completion record: the very last act of a successful command (common.runs.finish_run)."""
        runs.finish_run(self.args, self.name, self.device)


def start_run(parser, check_flags, dataset, load_data, populations, select, iterations_per_epoch=None):
    """What every command does: the flags parsed and checked (the script's check_flags(args), then
    check_before_data with its populations and selection rule), torch's threads, the device, the execution
    of the time loops (set before any model is built, printed once the data are read), the seeds, the data
    (the script's load_data(args, device), which applies --max_batches/--eval_batches: common.quick), the
    folders log/ checkpoint/ traces/, the run's name, checkpoint path and logger (whose first line states a
    quick run's limits), and for train1/train2 the resumable state of an interrupted run (logged: "resuming from ... after
    epoch N", or after iteration N * iterations_per_epoch(args)) or else the guard against replacing a
    finished checkpoint (which --overwrite moves aside only once the data have been read)."""
    args = parser.parse_args()
    check_flags(args)
    runs.refuse_if_in_use(run_name(dataset, args))
    check_before_data(args, parser, dataset, populations, select)
    allow_long_work(args.yes)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args)
    how = execution.from_args(args, device)  # set before any model is built; said once the data are read
    seed_everything(args.seed)
    datadigest.reset()
    data = load_data(args, device)
    print(how)
    ensure_dirs()
    runs.begin(args, dataset, run_name(dataset, args))  # this process's lock, before any file of the run is touched
    run = Run(args, parser, dataset, device, data)
    if quick_line(args):
        run.logger.info(quick_line(args))
    if args.mode.startswith("train"):
        run.resume = resume_or_guard(run.checkpoint_path, args.overwrite)
        why = None if run.resume is None else runs.check_resume(run.resume.get("binding"))
        if why and not args.overwrite:
            raise KitError(f"{runs.resume_path(run.checkpoint_path)} holds an interrupted run that cannot continue "
                           f"under this command: {why}. Run it with its own flags to resume it, or pass --overwrite "
                           "to start afresh (the interrupted state is kept aside)")
        if why:
            set_aside(runs.resume_path(run.checkpoint_path))
            run.logger.info(f"starting afresh (--overwrite): {why}")
            run.resume = resume_or_guard(run.checkpoint_path, args.overwrite)
        if run.resume is not None:
            done = run.resume["epoch"]
            after = f"epoch {done}" if iterations_per_epoch is None else f"iteration {done * iterations_per_epoch(args)}"
            run.logger.info(f"resuming from {runs.resume_path(run.checkpoint_path)} after {after}")
    return run
