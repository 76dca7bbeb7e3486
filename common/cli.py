"""Command-line flags shared by every experiment script, and the run names derived from them."""
import argparse

from common.criteria import CRITERIA
from common.training import KitError

MODES = ("train1", "test1", "train2", "test2")


def experiment_parser(description, models=("rnn", "snn", "ffs", "hybrid")):
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", type=str, help="dataset location")
    p.add_argument("--model", type=str, default="hybrid", choices=models,
                   help="rnn/lstm: pure non-spiking; snn: pure spiking; ffs: hybrid trained from scratch at --ratio; "
                        "hybrid: HSTNN (train1 = Adaptation of the redundant network, train2 = Selection + Restoration)")
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
    p.add_argument("--overwrite", action="store_true",
                   help="retrain even if the checkpoint exists (the old checkpoint is kept aside, never deleted)")
    p.add_argument("--device", type=str, default="auto", choices=("auto", "cpu", "cuda"), help="where to run")
    p.add_argument("--gpu", type=str, default=None, help="GPU index (sets CUDA_VISIBLE_DEVICES unless already set)")
    p.add_argument("--cuda", action="store_true", help="accepted for compatibility with the original scripts; see --device")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--definition", action="store_true",
                   help="run the step-by-step definition of the neurons in every stage (same as --execution definition)")
    p.add_argument("--execution", type=str, default=None, choices=("definition", "torch", "triton"),
                   help="how the time loops run: definition (step by step), torch (layer-major), triton (layer-major "
                        "with fused LIF kernels; CUDA only). Default: triton on CUDA with Triton installed, else torch")
    return p


def check_args(args):
    if args.mode in ("train2", "test2") and args.model != "hybrid":
        raise KitError(f"--mode {args.mode} is the Selection/Restoration stage of --model hybrid only (got --model {args.model})")
    if (args.model == "ffs" or args.mode in ("train2", "test2")) and not 0 < args.ratio < 1:
        raise KitError(f"--ratio must lie strictly between 0 and 1 (got {args.ratio})")


def run_name(dataset, args):
    """<ds>_<model>_<seed>, plus _<ratio> for ffs and for the restored hybrid (train2/test2)."""
    name = f"{dataset}_{args.model}_{args.seed}"
    if args.model == "ffs" or args.mode in ("train2", "test2"):
        name += f"_{float(args.ratio)}"
    return name
