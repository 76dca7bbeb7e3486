"""Does the Hessian selection pick important neurons? A check without retraining (run.py calls it).

For each S-MNIST RNN Adaptation checkpoint of the study (runs/rnn-smnist/checkpoint/mnist_hybrid_<seed>.t7)
and each ratio, the redundant network is shrunk to the neurons that a score keeps and tested at once
(no Restoration), with the kit's own selection rule (common.selection.select_fc: global ranking per type
across both layers, the authors' swap), for these scores:
  hessian    the study's importance (traces/<run>_importance.csv): trace x ||w||^2 / numel
  reversed   minus the importance (keeps the least important)
  trace      the Hessian trace alone;  magnitude  ||w||^2 / numel alone
  random     uniform scores, 20 draws (mean over draws)
and the same scores ranked within each layer with the kept count split evenly between the layers
("balanced"), which separates the ranking from how the global rule shares the neurons out between layers.
It also reports how reproducible the importance is: the Spearman correlation, per population, between
the importances from the two halves of the Hutchinson probes (per-probe values in traces/*.npz), and,
with --probes N (the paper's 300), recomputes the importance with N probes on the first --probe-images
training images as a "hessian-N" score, to tell estimator noise (scale) from a defect.
Writes selection-probe.md beside the study's tables.
"""
import argparse
import csv
import glob
import os
import runpy
import statistics
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
from common.hessian import hutchinson_traces, importance  # noqa: E402
from common.selection import select_fc  # noqa: E402
from common.data.smnist import load_split, loader  # noqa: E402

RUN = os.path.join(HERE, "runs", "rnn-smnist")
KEYS = ("rnn1", "rnn2", "snn1", "snn2")


def read_scores(path):
    rows = list(csv.DictReader(open(path)))
    out = {k: {} for k in ("importance", "trace", "magnitude", "kept")}
    for key in KEYS:
        part = [r for r in rows if r["param"] == key]
        imp = np.array([float(r["importance"]) for r in part])
        tr = np.array([float(r["trace"]) for r in part])
        out["importance"][key], out["trace"][key] = imp, tr
        out["magnitude"][key] = np.where(tr != 0, imp / np.where(tr != 0, tr, 1), 0.0)
        out["kept"][key] = sorted(int(r["neuron"]) for r in part if r["kept"] == "1")
    return out


def select_balanced(scores, ratio):
    """The global rule's counts, split evenly between the two layers, best first within each layer."""
    keep = {}
    for kind, fraction in (("rnn", 1.0 - ratio), ("snn", ratio)):
        n = round((len(scores[f"{kind}1"]) + len(scores[f"{kind}2"])) * fraction)
        for layer, count in ((1, n // 2), (2, n - n // 2)):
            s = np.asarray(scores[f"{kind}{layer}"])
            keep[f"{kind}{layer}"] = sorted(np.argsort(-s, kind="stable")[:count].tolist())
    return keep


def spearman(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(ROOT, "results", "studies", "replication"))
    p.add_argument("--ratios", default="0.25,0.5,0.75")
    p.add_argument("--draws", type=int, default=20)
    p.add_argument("--probes", type=int, default=300, help="probes of the recomputed importance (0: skip)")
    p.add_argument("--probe-images", type=int, default=100, help="training images of the recomputed importance")
    args = p.parse_args()
    seeds = sorted(int(os.path.basename(c).split("_")[2][:-3]) for c in glob.glob(os.path.join(RUN, "checkpoint", "mnist_hybrid_*.t7"))
                   if os.path.basename(c).count("_") == 2)
    if not seeds:  # the runs are not on this machine: keep the committed table rather than write one of NAs
        print(f"selection_probe.py: no Adaptation checkpoints in {RUN}; {os.path.join(args.out, 'selection-probe.md')} "
              "left as it is (run studies/replication/run.py to recreate them)")
        return
    torch.set_num_threads(1)
    script = runpy.run_path(os.path.join(ROOT, "experiments", "rnn-smnist-800-0.5-0.6", "rnn-smnist.py"), run_name="probe")
    test = loader(*load_split(os.path.join(HERE, "data"), "test"), 100, shuffle=False)
    ratios = [float(r) for r in args.ratios.split(",")]
    rules = ("hessian", "reversed", "trace", "magnitude", "random") + ((f"hessian-{args.probes}",) if args.probes else ())
    images, labels = load_split(os.path.join(HERE, "data"), "train")
    images, labels = images[:args.probe_images].float() / 255.0, labels[:args.probe_images].long()
    acc = {(rule, how, r): [] for rule in rules for how in ("global", "balanced") for r in ratios}
    full, corr, corr_n = [], {k: [] for k in KEYS}, {k: [] for k in KEYS}
    for seed in seeds:
        path = os.path.join(RUN, "checkpoint", f"mnist_hybrid_{seed}.t7")
        ckpt = torch.load(path, weights_only=True)
        model = script["model_from_checkpoint"](ckpt, path, None, torch.device("cpu"))
        full.append(script["evaluate"](model, test, "cpu")[0])
        trace_file = glob.glob(os.path.join(RUN, "traces", f"trace_mnist_hybrid_{seed}_*.npz"))
        if trace_file:
            with np.load(trace_file[0], allow_pickle=False) as f:
                for k in KEYS:
                    half = f[k].shape[0] // 2
                    corr[k].append(spearman(f[k][:half].mean(0), f[k][half:].mean(0)))
        better = None
        if args.probes:
            torch.manual_seed(seed)
            model.eval()
            model.fast = False  # second order through the step-by-step definition, as the kit's Selection
            values = hutchinson_traces(torch.nn.functional.cross_entropy(model(images)[0], labels),
                                       model.probed_groups(), args.probes)
            model.fast = True
            better = {k: v.numpy() for k, v in importance({k: v.float().mean(0) for k, v in values.items()},
                                                          model.probed_groups()).items()}
            for k in KEYS:
                half = values[k].shape[0] // 2
                corr_n[k].append(spearman(values[k][:half].mean(0).numpy(), values[k][half:].mean(0).numpy()))
        for r in ratios:
            csv_path = os.path.join(RUN, "traces", f"mnist_hybrid_{seed}_{r}_importance.csv")
            if not os.path.exists(csv_path):
                continue
            sc = read_scores(csv_path)
            assert select_fc({k: sc["importance"][k].tolist() for k in KEYS}, r) == sc["kept"], "not the run's pick"
            gen = np.random.default_rng(seed)
            score_sets = {"hessian": [sc["importance"]], "reversed": [{k: -v for k, v in sc["importance"].items()}],
                          "trace": [sc["trace"]], "magnitude": [sc["magnitude"]],
                          "random": [{k: gen.random(len(sc["trace"][k])) for k in KEYS} for _ in range(args.draws)]}
            if better is not None:
                score_sets[f"hessian-{args.probes}"] = [better]
            for rule, sets in score_sets.items():
                for how, select in (("global", lambda s, r: select_fc({k: v.tolist() for k, v in s.items()}, r)),
                                    ("balanced", select_balanced)):
                    values = [script["evaluate"](model.shrunk(select(s, r)), test, "cpu")[0] for s in sets]
                    acc[(rule, how, r)].append(statistics.fmean(values))
    ms = lambda v: f"{statistics.fmean(v):.1f} ± {statistics.pstdev(v):.1f}" if v else "NA"
    lines = ["# Does the Hessian selection pick important neurons? (S-MNIST RNN, no Restoration)", "",
             f"Test accuracy (%) of the redundant network shrunk to the kept neurons, before any retraining; mean ± "
             f"population std over seeds {', '.join(map(str, seeds))} (random: the mean of {args.draws} draws per "
             f"seed). The redundant network itself: {ms(full)}.", ""]
    for how, title in (("global", "The kit's rule (global ranking per type across both layers, as the authors)"),
                       ("balanced", "Kept counts split evenly between the layers, ranked within each layer")):
        lines += [f"**{title}**", "", "| ratio | " + " | ".join(rules) + " |", "|---" * (len(rules) + 1) + "|"]
        lines += [f"| {r} | " + " | ".join(ms(acc[(rule, how, r)]) for rule in rules) + " |" for r in ratios]
        lines.append("")
    lines += ["Reproducibility of the importance: Spearman correlation between the per-neuron importances from "
              "the first and the second half of the Hutchinson probes (mean ± std over seeds): "
              + ", ".join(f"{k} {ms(v)}" if v else f"{k} NA" for k, v in corr.items()).replace(" ± ", "±")
              + (f"; recomputed with {args.probes} probes on {args.probe_images} images: " + ", ".join(
                  f"{k} {ms(v)}" for k, v in corr_n.items()).replace(" ± ", "±") if args.probes else ""), ""]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "selection-probe.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
