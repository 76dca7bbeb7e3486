"""Question 1: does a criterion find the neurons the network needs? Every criterion right after Selection,
without Restoration, and each criterion's rank correlation with the oracle.

For every finished Adaptation run of runs/w<width>/ (completion record checked), with the kit's functions:
  traces   Hutchinson traces (--probes probes, drawn after torch.manual_seed(seed)) of the loss on a fixed
           trace batch: the first 100 images of the training part (the run's own Selection used the first
           batch of a shuffled loader instead)
  scores   common.criteria.score_table: hessian, reversed, magnitude, trace, taylor, random draws 0..--draws-1,
           and the oracle: each neuron's loss increase, when it alone is removed, on the 1,000 held-out
           (validation) images, several removals per batched pass (the script's masked_losses). At widths
           in study.ORACLE_NEURONS (or with --oracle-neurons) the oracle scores a stratified random subset:
           that many neurons of every population (snn1, snn2, rnn1, rnn2), drawn from a generator seeded
           with the run's seed (common.criteria.oracle_subset)
  pick     common.selection.select_fc at each ratio (the kit's counts and rule); the shrunk network is then
           tested on the 1,000 test images (which neither the oracle nor the traces saw). The oracle picks
           only where it scored every neuron
  rank     Spearman correlation of each criterion's scores with the oracle's, per population, over the
           neurons the oracle scored; and of the importance from the first half of the probes with that
           from the second
One row per number in runs/no-retraining.csv (width, seed, criterion, ratio, metric, value; criterion "timing":
the wall and CPU seconds of that width and seed; criterion "oracle", metrics scored_<population> and cpu_s: the
neurons it scored and its CPU seconds); each scored neuron's oracle loss increase in runs/oracle-neurons.csv
(width, seed, population, neuron, loss_increase). A (width, seed) already in no-retraining.csv is skipped, so an
interrupted run continues where it stopped.
"""
import argparse
import csv
import os
import runpy
import sys
import time

import numpy as np
import torch
from scipy import stats

from study import DATA, ORACLE_NEURONS, RATIOS, RUNS, SCRIPT, SEEDS, WIDTHS

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from common.criteria import oracle_subset, random_scores, ranking, score_table  # noqa: E402
from common.hessian import hutchinson_traces, importance  # noqa: E402
from common.runs import verify  # noqa: E402
from common.selection import select_fc  # noqa: E402
from common.data.smnist import load_split, loader, split_train_val  # noqa: E402

CRITERIA = ("hessian", "reversed", "magnitude", "trace", "taylor", "oracle")
FIELDS = ("width", "seed", "criterion", "ratio", "metric", "value")
ORACLE_FIELDS = ("width", "seed", "population", "neuron", "loss_increase")


def spearman(a, b):
    """Rank correlation with tied values given their average rank (silent neurons tie); nan if either is constant."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b)[0])


def rows_for(script, path, seed, ratios, draws, probes, data, oracle_neurons=0):
    """The rows of one Adaptation run, and the oracle's {population: {neuron: loss increase}}.
    oracle_neurons: neurons scored per population (0: all)."""
    ckpt = torch.load(path, weights_only=True)
    model = script["model_from_checkpoint"](ckpt, path, None, torch.device("cpu"))
    model.eval()
    images, labels = data["trace"]
    loss = lambda: torch.nn.functional.cross_entropy(model(images)[0], labels)
    torch.manual_seed(seed)
    values = hutchinson_traces(loss(), model.probed_groups(), probes)
    mean = {k: v.float().mean(0) for k, v in values.items()}
    sizes = model.population_sizes()
    scored = oracle_subset(sizes, oracle_neurons, seed) if oracle_neurons else {k: list(range(n)) for k, n in sizes.items()}
    cpu = time.process_time()
    table = score_table(model, loss, mean, seed, 0,
                        heldout_loss=lambda m: script["evaluate"](m, data["val"], "cpu")[1],
                        heldout_losses=lambda masks: script["masked_losses"](model, data["val"], masks, "cpu"),
                        oracle_neurons=scored)
    oracle_cpu = time.process_time() - cpu
    everyone = all(len(scored[k]) == n for k, n in sizes.items())
    scores = {c: ranking(c, table) for c in CRITERIA if c != "oracle" or everyone}
    scores.update({f"random-{d}": random_scores(model.probed_groups(), seed, d) for d in range(draws)})
    acc, test_loss = script["evaluate"](model, data["test"], "cpu")
    rows = [("redundant", "", "test_acc", acc), ("redundant", "", "test_loss", test_loss)]
    rows += [("oracle", "", f"scored_{k}", len(v)) for k, v in scored.items()] + [("oracle", "", "cpu_s", oracle_cpu)]
    for criterion, s in scores.items():
        for r in ratios:
            small = model.shrunk(select_fc({k: v.tolist() for k, v in s.items()}, r))
            acc, test_loss = script["evaluate"](small, data["test"], "cpu")
            rows += [(criterion, r, "test_acc", acc), (criterion, r, "test_loss", test_loss)]
        if not criterion.startswith("random-") or criterion == "random-0":
            for key in s:
                rows.append((criterion, "", f"spearman_oracle_{key}",
                             spearman(s[key][scored[key]].numpy(), table["oracle"][key][scored[key]].numpy())))
    half = probes // 2
    halves = [importance({k: v[part].float().mean(0) for k, v in values.items()}, model.probed_groups())
              for part in (slice(0, half), slice(half, probes))]
    for key in halves[0]:
        rows.append(("hessian", "", f"spearman_probe_halves_{key}", spearman(halves[0][key].numpy(), halves[1][key].numpy())))
    return rows, {k: {c: table["oracle"][k][c].item() for c in v} for k, v in scored.items()}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--widths", default=",".join(map(str, WIDTHS)))
    p.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="at most these seeds (those whose Adaptation is done)")
    p.add_argument("--draws", type=int, default=10, help="random draws per seed")
    p.add_argument("--probes", type=int, default=50, help="Hutchinson probes (the study's Selection uses 50)")
    p.add_argument("--oracle-neurons", type=int, default=None,
                   help="neurons the oracle scores per population, a stratified random subset (0: all); default: "
                        "study.ORACLE_NEURONS for the widths it lists, all neurons at the others")
    p.add_argument("--out", default=os.path.join(RUNS, "no-retraining.csv"))
    p.add_argument("--oracle-out", default=os.path.join(RUNS, "oracle-neurons.csv"),
                   help="each scored neuron's oracle loss increase")
    args = p.parse_args()
    if args.oracle_neurons is not None and args.oracle_neurons < 0:
        sys.exit("error: --oracle-neurons must be 0 (all neurons) or more")
    torch.set_num_threads(1)
    script = runpy.run_path(SCRIPT, run_name="no_retraining")
    train_images, train_labels = load_split(DATA, "train")
    (train_images, train_labels), val = split_train_val(train_images, train_labels, 1000)
    data = {"trace": (train_images[:100].float().unsqueeze(1) / 255.0, train_labels[:100].long()),
            "val": loader(*val, 100, shuffle=False), "test": loader(*load_split(DATA, "test"), 100, shuffle=False)}
    done = set()
    if not os.path.exists(args.oracle_out):
        with open(args.oracle_out, "w", newline="") as f:
            csv.writer(f).writerow(ORACLE_FIELDS)
    if os.path.exists(args.out):
        with open(args.out) as f:
            done = {(r["width"], r["seed"]) for r in csv.DictReader(f)}
    else:
        with open(args.out, "w", newline="") as f:
            csv.writer(f).writerow(FIELDS)
    for width in map(int, args.widths.split(",")):
        for seed in map(int, args.seeds.split(",")):
            folder = os.path.join(RUNS, f"w{width}")
            path = os.path.join(folder, "checkpoint", f"mnist_hybrid_{seed}.t7")
            if (str(width), str(seed)) in done or not os.path.exists(path):
                continue
            _, _, problem = verify(os.path.join(folder, "log", f"train_mnist_hybrid_{seed}.log"))
            if problem:
                print(f"width {width} seed {seed}: skipped, the Adaptation run is not finished ({problem})")
                continue
            start, cpu = time.time(), time.process_time()
            subset = ORACLE_NEURONS.get(width, 0) if args.oracle_neurons is None else args.oracle_neurons
            rows, losses = rows_for(script, path, seed, RATIOS, args.draws, args.probes, data, subset)
            rows += [("timing", "", "wall_s", time.time() - start), ("timing", "", "cpu_s", time.process_time() - cpu)]
            with open(args.oracle_out, "a", newline="") as f:  # first: a (width, seed) in --out is complete (a rerun may repeat these rows)
                csv.writer(f).writerows((width, seed, k, c, v) for k, per in losses.items() for c, v in per.items())
            with open(args.out, "a", newline="") as f:
                csv.writer(f).writerows((width, seed) + tuple(r) for r in rows)
            print(f"width {width} seed {seed}: {len(rows)} numbers in {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
