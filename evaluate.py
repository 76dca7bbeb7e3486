"""Cost and robustness of trained checkpoints: the two other axes of HSTNN's accuracy / robustness / cost
trade-off. It reuses the experiment script's own data loading, model rebuilding and metric: the interface
every script offers (common.cli.load_script).

    python evaluate.py cost   --experiment experiments/rnn-ptb-650-0.5-0.6 --model hybrid --seed 1111 --ratio 0.5
    python evaluate.py robust --experiment experiments/rnn-smnist-800-0.5-0.6 --all
    python evaluate.py both   --experiment experiments/rcnn-nmnist-128-0.25-0.3-0.3 --all --channels 8,16,24 --nwin 5

Any other flag goes to the experiment script (its data and size flags: --data, --batch_size, --nwin, --dt,
--device ...); paths that exist from here are used as they are, others are relative to the experiment folder,
as for the scripts. Pass the flags the models were tested with (PTB: --bptt and --batch_size change the result,
its SNN state restarting every chunk); a recomputed metric that differs from the log is reported. --all evaluates every finished checkpoint in <experiment>/checkpoint (skipping those whose
result is newer than the checkpoint, unless --force). Results, next to the test logs:
    <experiment>/log/cost_<name>.json     MACs, ACs, energy, firing rates, parameters and state per inference
                                          (both name the checkpoint they measured and its SHA-256)
    <experiment>/log/robust_<name>.json   the metric under each perturbation and strength, its degradation and "AUC"
Robustness, per perturbation: the metric at each strength; its degradation, the metric at each strength minus
the clean metric (for perplexity a rise is a loss, for accuracy a fall), and its mean over the strengths above
0; and "auc", the area under the metric-vs-strength curve (trapezoids) divided by the strength range: the mean
METRIC over the tested range, not a loss, so it mostly repeats the clean number.
Progress goes to stderr; --eval_batches N (a script flag) evaluates on the first N test batches only, for a
first try. Ctrl-C stops with one line; the results already written are kept. A folder of runs without its
script (demo.py's rnn-smnist/) names it with --script.
The counting rules and perturbations are in common/cost.py and common/perturb.py (and docs/cost-conventions.md):
--convention standard (default, the SNN literature's) or kit-v1 (the kit's first rule); --arithmetic fp32 (default),
int32 or int8; --memory sram|sram-fit|dram adds memory accesses, --memory_model event a membrane read and write per AC.
"""
import argparse
import glob
import json
import os
import re
import sys
import time

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, ROOT)
import torch  # noqa: E402

from common import cost, perturb, runs  # noqa: E402
from common.cli import load_script  # noqa: E402
from common.datadigest import file_sha256  # noqa: E402
from common.report.logs import read_result  # noqa: E402
from common.training import KitError, load_checkpoint, pick_device, run_main  # noqa: E402

CHECKPOINT = re.compile(r"^([A-Za-z0-9]+)_(rnn|lstm|snn|ffs|hybrid)_(\d+)(?:_(\d*\.?\d+(?:[eE][-+]?\d+)?))?\.t7$")


# -- what evaluate.py knows of each experiment beyond the script's interface -------------------------------
class Adapter:
    """An experiment script's data, model rebuilding and test metric (its load_data, model_from_checkpoint,
    test_metric), with what one inference is (`per`), the metric's name and direction, the perturbations
    that apply and where input noise goes."""
    per, metric_name = "sample", "test acc"
    higher_is_better = True
    kinds = perturb.FC_KINDS
    rate_readout = False

    def __init__(self, script, args, device):
        self.script, self.args, self.device = script, args, device
        self.data = script.load_data(args, device)

    def load(self, ckpt, path):
        return self.script.model_from_checkpoint(ckpt, path, self.args, self.device)

    def metric(self, model):
        return self.script.test_metric(model, self.data, self.args)

    def input_hook(self, model, kind, strength, gen):
        """A pre-hook perturbing the model's input (the conv and S-MNIST networks take the raw input)."""
        if kind == "input_noise":
            fn = lambda x: perturb.gaussian(x, strength, 1.0, gen)
        else:
            fn = lambda x: perturb.EVENT_FNS[kind](x, strength, gen)
        return model.register_forward_pre_hook(lambda module, a: (fn(a[0]),) + tuple(a[1:]))


class PTB(Adapter):
    per, metric_name, higher_is_better = "token", "test ppl", False

    def input_hook(self, model, kind, strength, gen):
        """Noise on the word embeddings, relative to the embedding table's std."""
        scale = model.encoder.weight.detach().std().item()
        return model.encoder.register_forward_hook(lambda m, a, out: perturb.gaussian(out, strength, scale, gen))


class SMNIST(Adapter):
    rate_readout = True


class EventCamera(Adapter):
    kinds = perturb.EVENT_KINDS


ADAPTERS = {"ptb": PTB, "mnist": SMNIST, "dvsGesture": EventCamera, "nmnist": EventCamera}  # by the script's DATASET


def experiment_script(folder, script=None):
    """The experiment script (`script`, else the one of `folder`) as a module (its main not run), and its adapter
    class."""
    if script is not None and not os.path.isfile(script):
        raise KitError(f"--script {script}: no such file")
    scripts = [script] if script else \
        [p for p in sorted(glob.glob(os.path.join(folder, "*.py"))) if not os.path.basename(p).startswith("mprun")]
    if len(scripts) != 1:
        raise KitError(f"{folder}: expected one experiment script (besides mprun-*.py), found "
                       f"{[os.path.basename(p) for p in scripts] or 'none'}; name it with --script")
    script = load_script(scripts[0], "hstnn_evaluate")
    kind = ADAPTERS.get(getattr(script, "DATASET", None))
    if kind is None:
        raise KitError(f"{scripts[0]} is not one of the kit's experiment scripts (PTB, S-MNIST, DVS Gesture, N-MNIST)")
    return script, kind


# -- the two evaluations ---------------------------------------------------------------------------------
def evaluate_cost(adapter, model, args):
    counter = cost.Counter(args.convention)
    with cost.counting(model, counter):
        metric = adapter.metric(model)
    out = cost.report(counter, model, *energies(args), adapter.rate_readout, adapter.per, args.memory,
                      args.memory_pj, args.memory_model)
    return dict(metric=metric, **out)


def evaluate_robust(adapter, model, strengths, seed, step=lambda text: None):
    """The clean metric and, per perturbation, the metric at each strength, its degradation (the metric minus
    the clean one) with its mean over the strengths above 0, and the AUC (perturb.auc: the mean metric over the
    strength range). step(text) is told each evaluation before it starts."""
    todo = [(kind, s) for kind in adapter.kinds for s in strengths[kind]]
    step(f"clean (1/{len(todo) + 1})")
    clean = adapter.metric(model)
    results = {}
    for kind in adapter.kinds:
        values = []
        for s in strengths[kind]:
            step(f"{kind} {s:g} ({todo.index((kind, s)) + 2}/{len(todo) + 1})")
            gen = perturb.generator(seed, kind, s)
            if kind == "weight_noise":
                saved = {k: v.clone() for k, v in model.state_dict().items()}
                perturb.add_weight_noise(model, s, gen)
                try:
                    values.append(adapter.metric(model))
                finally:
                    model.load_state_dict(saved)
            else:
                handle = adapter.input_hook(model, kind, s, gen)
                try:
                    values.append(adapter.metric(model))
                except ValueError as e:
                    raise KitError(f"{kind}: {e}")
                finally:
                    handle.remove()
        if values:
            degradation = [v - clean for v in values]
            above = [d for s, d in zip(strengths[kind], degradation) if s > 0]
            results[kind] = {"strengths": list(strengths[kind]), "values": values, "degradation": degradation,
                             "mean_degradation": sum(above) / len(above) if above else None,
                             "auc": perturb.auc(strengths[kind], values)}
    return dict(clean=clean, seed=seed, perturbations=results, definitions=ROBUST_DEFINITIONS)


ROBUST_DEFINITIONS = {  # written into every robust_<name>.json
    "values": "the metric at each strength (strength 0: the clean metric)",
    "degradation": "the metric at each strength minus the clean metric",
    "mean_degradation": "the mean of the degradation over the strengths above 0",
    "auc": "the area under the metric-vs-strength curve (trapezoids) divided by the strength range: the mean "
           "metric over the tested range, in the metric's unit (not a loss: it mostly repeats the clean metric)"}


def robust_lines(name, result, metric_name):
    """What evaluate.py prints of a robustness result: one line per perturbation."""
    fmt = lambda values: ", ".join(f"{v:.4g}" for v in values)
    signed = lambda values: ", ".join(f"{v:+.4g}" for v in values)
    lines = [f"{name}: clean {metric_name} {result['clean']:.4g}"]
    for kind, p in result["perturbations"].items():
        mean = "" if p["mean_degradation"] is None else f", mean {p['mean_degradation']:+.4g} over the strengths above 0"
        lines.append(f"  {kind} at {fmt(p['strengths'])}: {metric_name} {fmt(p['values'])}; minus clean "
                     f"{signed(p['degradation'])}{mean}; AUC {p['auc']:.4g} (the mean {metric_name} over the range)")
    return lines


def logged_metric(name):
    """The metric of log/test_<name>.log (else train_<name>.log) as logged, or None."""
    for kind in ("test", "train"):
        raw, _ = read_result(os.path.join("log", f"{kind}_{name}.log"))
        if raw is not None:
            return raw
    return None


def check_against_log(name, metric, raw, eval_batches=None):
    """Warn when the recomputed metric is not the logged one (up to the log's rounding): the script flags
    differ from the run's (PTB: --bptt and --batch_size change the result; conv: --nwin, --dt ...), or
    --eval_batches evaluates a part of the test data only."""
    if raw is None:
        return
    decimals = len(raw.split(".")[1]) if "." in raw else 0
    if abs(metric - float(raw)) > 0.5 * 10 ** -decimals + 1e-6 * abs(metric):
        why = "pass the script flags it was trained with (e.g. --bptt, --batch_size, --nwin, --dt, --channels)"
        if eval_batches is not None:
            why = f"--eval_batches {eval_batches} evaluates the first {eval_batches} test batches only; or " + why
        print(f"warning: {name}: recomputed {metric:.6g}, but its log says {raw}; {why}", file=sys.stderr)


def energies(args):
    """(MAC, AC) energies in pJ: --mac_pj / --ac_pj, else those of --arithmetic."""
    mac, ac = cost.ARITHMETIC[args.arithmetic]
    return (mac if args.mac_pj is None else args.mac_pj), (ac if args.ac_pj is None else args.ac_pj)


def same_cost_setting(path, args):
    """Whether the cost JSON at path was counted as args asks (convention, energies, memory term)."""
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError):
        return False
    mac_pj, ac_pj = energies(args)
    memory, memory_pj = None, None
    if args.memory is not None:
        memory = cost.memory_name(args.memory, args.memory_model)
        memory_pj = None if args.memory == "sram-fit" else args.memory_pj or cost.MEMORY_PJ[args.memory]
    return (old.get("convention", "kit-v1"), old.get("mac_pj"), old.get("ac_pj"), old.get("memory"), old.get("memory_pj")) \
        == (cost.convention_name(args.convention, mac_pj, ac_pj), mac_pj, ac_pj, memory, memory_pj)


STARTED = time.monotonic()


def say(text):
    """A progress line on stderr, with the time since the start."""
    elapsed = int(time.monotonic() - STARTED)
    print(f"[{elapsed // 60:d}:{elapsed % 60:02d}] {text}", file=sys.stderr, flush=True)


def write_json(path, obj):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


# -- command line ----------------------------------------------------------------------------------------
def strength_list(text):
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"strengths must be non-negative, got {text!r}")
    return values


def make_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    p.add_argument("what", choices=("cost", "robust", "both"))
    p.add_argument("--experiment", required=True, help="experiment folder (path, or name under experiments/)")
    p.add_argument("--script", help="the experiment script, for a folder of runs without one (demo.py's "
                                    "rnn-smnist/: experiments/rnn-smnist-800-0.5-0.6/rnn-smnist.py)")
    p.add_argument("--all", action="store_true", help="every finished checkpoint of the experiment")
    p.add_argument("--model", choices=("rnn", "lstm", "snn", "ffs", "hybrid"), help="one checkpoint: its model")
    p.add_argument("--seed", type=int, default=1111, help="one checkpoint: its seed; also seeds the perturbations")
    p.add_argument("--ratio", type=float, help="one checkpoint: its SNN ratio (ffs; hybrid after Restoration; "
                                                "hybrid without --ratio is the adapted, redundant network)")
    p.add_argument("--force", action="store_true", help="with --all: redo results newer than their checkpoint")
    p.add_argument("--arithmetic", choices=sorted(cost.ARITHMETIC), default="fp32",
                   help="energies of a MAC and an AC at 45 nm: " + "; ".join(
                       f"{k} {m:g} and {a:g} pJ" for k, (m, a) in cost.ARITHMETIC.items()))
    p.add_argument("--mac_pj", type=float, help="energy of one MAC, pJ (overrides --arithmetic's)")
    p.add_argument("--ac_pj", type=float, help="energy of one accumulate (AC), pJ (overrides --arithmetic's)")
    p.add_argument("--convention", choices=cost.CONVENTIONS, default="standard",
                   help="what costs a MAC or an AC: the SNN literature's rule (standard) or the kit's first one "
                        "(kit-v1, to reproduce earlier results); see docs/cost-conventions.md")
    p.add_argument("--memory", choices=cost.MEMORY_LEVELS, help="also estimate weight and state memory accesses, "
                   "per 32-bit access: sram 5 pJ (8 KB), dram 640 pJ, sram-fit an SRAM the size of the model's "
                   "weights (5 pJ at 8 KB, 10 at 32 KB, 50 at 1 MB), in keys of their own beside the arithmetic energy")
    p.add_argument("--memory_pj", type=float, help="with --memory sram or dram: energy of one 32-bit access, pJ")
    p.add_argument("--memory_model", choices=cost.MEMORY_MODELS, default="step",
                   help="with --memory: step (a weight read per synaptic op, state read and written per step) or "
                        "event (also a membrane read and write per synaptic event, i.e. per AC)")
    for kind, values in perturb.DEFAULTS.items():
        p.add_argument(f"--{kind}", type=strength_list, default=values,
                       help=f"strengths (comma-separated; empty: skip), default {','.join(map(str, values))}")
    return p


def checkpoints(folder, dataset, args):
    """[(name, model, seed, ratio)] to evaluate."""
    if not args.all:
        if args.model is None:
            raise KitError("name a checkpoint with --model (and --seed, --ratio), or pass --all")
        if args.model == "ffs" and args.ratio is None:
            raise KitError("--model ffs needs --ratio")
        if args.model != "hybrid" and args.model != "ffs" and args.ratio is not None:
            raise KitError(f"--model {args.model} has no ratio")
        ratio = None if args.ratio is None else float(args.ratio)
        name = f"{dataset}_{args.model}_{args.seed}" + ("" if ratio is None else f"_{ratio}")
        return [(name, args.model, args.seed, ratio)]
    found = []
    for path in sorted(glob.glob(os.path.join(folder, "checkpoint", "*.t7"))):
        m = CHECKPOINT.match(os.path.basename(path))
        if m and m.group(1) == dataset:
            ratio = None if m.group(4) is None else float(m.group(4))
            found.append((os.path.basename(path)[:-3], m.group(2), int(m.group(3)), ratio))
    if not found:
        raise KitError(f"no checkpoint/{dataset}_*.t7 in {folder}: train some models first")
    return found


def main(argv=None):
    args, rest = make_parser().parse_known_args(argv)
    folder = next((f for f in (args.experiment, os.path.join(ROOT, "experiments", args.experiment))
                   if os.path.isdir(f)), None)
    if folder is None:
        raise KitError(f"no experiment folder {args.experiment!r}")
    folder = os.path.abspath(folder)
    script, Kind = experiment_script(folder, args.script and os.path.abspath(args.script))
    script_args = script.parser.parse_args(rest + ["--mode", "test1"])
    if script_args.data and os.path.exists(script_args.data):
        script_args.data = os.path.abspath(script_args.data)
    script_args.seed = args.seed
    script.check_flags(script_args)
    if args.ratio is not None and not 0 < args.ratio < 1:
        raise KitError(f"--ratio must lie strictly between 0 and 1 (got {args.ratio})")
    if not all(e > 0 for e in energies(args)):
        raise KitError(f"--mac_pj and --ac_pj must be positive energies (got {args.mac_pj} and {args.ac_pj})")
    if args.memory_pj is not None and (args.memory in (None, "sram-fit") or not args.memory_pj > 0):
        raise KitError(f"--memory_pj needs --memory sram or dram and a positive energy (got {args.memory_pj})")
    if args.memory_model != "step" and args.memory is None:
        raise KitError("--memory_model needs --memory")
    old_cwd = os.getcwd()
    os.chdir(folder)  # the scripts' relative paths (data defaults, checkpoint/, log/) start here
    try:
        if script_args.threads:
            torch.set_num_threads(script_args.threads)
        device = pick_device(script_args)
        todo = checkpoints(folder, script.DATASET, args)
        say(f"reading the data of {os.path.basename(folder)} ({len(todo)} checkpoint{'s' * (len(todo) > 1)} to "
            f"consider)")
        adapter = Kind(script, script_args, device)
        kinds = ("cost", "robust") if args.what == "both" else (args.what,)
        strengths = {k: getattr(args, k) for k in perturb.DEFAULTS}
        for number, (name, model_name, seed, ratio) in enumerate(todo, 1):
            counter = f"[{number}/{len(todo)}] {name}"
            path = os.path.join("checkpoint", f"{name}.t7")
            if os.path.exists(os.path.join("checkpoint", f"{name}.resume.t7")):
                print(f"skip {name}: training unfinished ({name}.resume.t7 present)")
                continue
            if args.all:  # every result of a sweep comes from a run whose completion record verifies
                _, _, problem = runs.verify(runs.log_path(name, "train"), check_log=False)
                if problem:
                    print(f"skip {name}: {problem}")
                    continue
            outputs = {k: os.path.join("log", f"{k}_{name}.json") for k in kinds}
            if args.all and not args.force:
                outputs = {k: p for k, p in outputs.items() if not (os.path.exists(p) and os.path.exists(path)
                                                                    and os.path.getmtime(p) >= os.path.getmtime(path)
                                                                    and (k != "cost" or same_cost_setting(p, args)))}
                if not outputs:
                    print(f"skip {name}: results up to date")
                    continue
            say(f"{counter}: loading the checkpoint")
            ckpt = load_checkpoint(path, f"evaluate.py {args.what}", f"the experiment script, --model {model_name}")
            model = adapter.load(ckpt, path)
            model.eval()
            model.fast = True
            torch.manual_seed(seed)
            head = dict(experiment=os.path.basename(folder), dataset=script.DATASET, name=name, model=model_name,
                        seed=seed, ratio=ratio, checkpoint=path, checkpoint_sha256=file_sha256(path),
                        metric_name=Kind.metric_name,
                        higher_is_better=Kind.higher_is_better, logged_metric=logged_metric(name), flags=rest)
            os.makedirs("log", exist_ok=True)
            if "cost" in outputs:
                say(f"{counter}: cost (one pass over the test data, counting)")
                result = dict(head, kind="cost", **evaluate_cost(adapter, model, args))
                if os.path.exists(outputs["cost"]) and not same_cost_setting(outputs["cost"], args):
                    print(f"{name}: its cost result counted under another setting is replaced (now: {result['convention']}"
                          f"{'' if args.memory is None else ', memory ' + result['memory']})")
                write_json(outputs["cost"], result)
                check_against_log(name, result["metric"], head["logged_metric"], script_args.eval_batches)
                print(f"{name}: {Kind.metric_name} {result['metric']:.4g}, per {Kind.per} ({result['convention']} "
                      f"convention): {result['macs']:.4g} MACs, "
                      f"{result['acs']:.4g} ACs, {result['energy_pj'] / 1e6:.4g} uJ, firing rates "
                      f"{ {k: round(v, 4) for k, v in result['firing_rate'].items()} }"
                      + ("" if args.memory is None else f", memory ({result['memory']}) {result['energy_memory_pj'] / 1e6:.4g} uJ")
                      + f" -> {outputs['cost']}")
            if "robust" in outputs:
                result = dict(head, kind="robust", **evaluate_robust(adapter, model, strengths, seed,
                                                                     lambda text: say(f"{counter}: robust, {text}")))
                write_json(outputs["robust"], result)
                if "cost" not in outputs:
                    check_against_log(name, result["clean"], head["logged_metric"], script_args.eval_batches)
                print("\n".join(robust_lines(name, result, Kind.metric_name)) + f"\n  -> {outputs['robust']}")
        say("done")
    finally:
        os.chdir(old_cwd)


if __name__ == "__main__":
    run_main(main, interrupted="the results written so far are kept; the checkpoint being evaluated has none")
