"""The leave-one-out oracle's cost per scored neuron: one neuron at a time (model.shrunk, the definition) against
several removals in one batched forward pass (common.criteria.masked_copies), on the S-MNIST hybrid.

    python bench/oracle.py [--widths 240,800] [--neurons 16] [--images 1000] [--out bench/ORACLE]
                                                          # writes <out>.md and <out>.json

For each width an untrained hybrid (seeded) and random images stand in for a trained network and the held-out
digits: both paths do the same dense arithmetic whatever the weights and pixels. Both score the same neurons (a
stratified random subset, --neurons per population) in one process on one CPU thread, one population at a time;
the table gives CPU seconds per scored neuron (each call's unmasked reference pass included) and the ratio. The
batched losses are checked equal to the one-at-a-time ones before any time is reported.
"""
import argparse
import json
import os
import platform
import runpy
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from common.criteria import oracle, oracle_subset  # noqa: E402

SCRIPT = os.path.join(ROOT, "experiments", "rnn-smnist-800-0.5-0.6", "rnn-smnist.py")
BATCH = 100  # the study's --batch_size


def measure(script, width, per_population, images, seed=1111):
    torch.manual_seed(seed)
    model = script["SMNISTModel"]([width, width], [width, width]).eval()
    x = torch.rand(images, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    y = torch.randint(0, 10, (images,), generator=torch.Generator().manual_seed(seed + 1))
    batches = [(x[i:i + BATCH], y[i:i + BATCH]) for i in range(0, images, BATCH)]
    heldout_loss = lambda m: script["evaluate"](m, batches, "cpu")[1]
    heldout_losses = lambda masks: script["masked_losses"](model, batches, masks, "cpu")
    subset = oracle_subset(model.population_sizes(), per_population, seed)
    rows = []
    for key, neurons in subset.items():
        seconds, values = {}, {}
        for path, batched in (("one at a time", None), ("batched", heldout_losses)):
            cpu = time.process_time()
            values[path] = oracle(model, heldout_loss, {key: neurons}, batched)[key][neurons]
            seconds[path] = (time.process_time() - cpu) / len(neurons)
        gap = float((values["batched"] - values["one at a time"]).abs().max())
        if gap > 1e-4:
            sys.exit(f"error: width {width} {key}: the batched losses differ from the definition's by {gap:.2e}")
        rows.append(dict(width=width, population=key, neurons=len(neurons), one_at_a_time_s=seconds["one at a time"],
                         batched_s=seconds["batched"], max_abs_difference=gap))
        print(f"width {width} {key}: {seconds['one at a time']:.3f} s -> {seconds['batched']:.3f} s per neuron "
              f"(max |difference| {gap:.1e})", flush=True)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--widths", default="240,800", help="neurons per type and layer, comma-separated")
    p.add_argument("--neurons", type=int, default=16, help="neurons scored per population (one batched chunk: 16)")
    p.add_argument("--images", type=int, default=1000, help="held-out images (the study's --val_size)")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "ORACLE"))
    args = p.parse_args()
    try:
        widths = [int(w) for w in args.widths.split(",")]
    except ValueError:
        sys.exit(f"error: --widths must be comma-separated integers, got {args.widths!r}")
    if min(widths) < 1 or args.neurons < 1 or args.images < 1:
        sys.exit("error: --widths, --neurons and --images must be positive")
    torch.set_num_threads(1)
    script = runpy.run_path(SCRIPT, run_name="bench")
    rows = [r for w in widths for r in measure(script, w, args.neurons, args.images)]
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, one thread, no GPU used"
    lines = ["# The oracle per scored neuron: one at a time against batched", "",
             f"`python bench/oracle.py --widths {args.widths} --neurons {args.neurons} --images {args.images}` "
             f"({machine}). CPU seconds per scored neuron, on {args.images} images in batches of {BATCH}.", "",
             "| width | population | neurons | one at a time (s) | batched (s) | speed-up |", "|---|---|---|---|---|---|"]
    for w in widths:
        mine = [r for r in rows if r["width"] == w]
        n = sum(r["neurons"] for r in mine)
        per_neuron = lambda k: sum(r[k] * r["neurons"] for r in mine) / n  # every scored neuron weighs the same
        everyone = dict(population="all", neurons=n, one_at_a_time_s=per_neuron("one_at_a_time_s"),
                        batched_s=per_neuron("batched_s"))
        for r in mine + [everyone]:
            lines.append(f"| {w} | {r['population']} | {r['neurons']} | {r['one_at_a_time_s']:.3f} | {r['batched_s']:.3f} "
                         f"| {r['one_at_a_time_s'] / r['batched_s']:.2f}× |")
    with open(args.out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(args.out + ".json", "w") as f:
        json.dump(dict(machine=machine, widths=widths, neurons=args.neurons, images=args.images, rows=rows), f, indent=1)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
