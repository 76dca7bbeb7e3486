"""The training budget of HSTNN and ffs in epochs and in multiply-accumulates (MACs), for both studies.

    python studies/budget.py [--writeup results/REPLICATION.md]

An Adaptation epoch trains the redundant network (a full population of both types in every layer, twice the
neurons of the final network), so matching ffs to HSTNN in epochs still gives HSTNN more arithmetic. Counted
here from the network shapes: the dense forward MACs of one training sample (S-MNIST: an image, 28 steps;
PTB: a token), with every synapse counted as a MAC (training runs every neuron densely, surrogate gradients
included; the backward pass costs a fixed multiple of the forward one for every network, so the ratios hold
for forward + backward). Per layer l with s_l SNN and r_l sigmoid-RNN neurons and n_in inputs:
n_in * (s_l + r_l) + r_l^2 per step, and the readout once per image (S-MNIST) or the decoder once per token
(PTB, 10,000 words). The Restoration shapes are the kept counts each finished Selection logged
(rnn_layer[i], snn_layer[i]), per seed; ffs has the even per-layer split of fc_shapes.

HSTNN's budget = Adaptation epochs x its MACs + Restoration epochs x the restored network's. The ffs budget
that matches it in MACs is that many ffs epochs (rounded up). Writes results/studies/budget.md and budget.csv; the
MAC-matched runs are compared with HSTNN in each study's own tests (criteria-q3, replication-rnn-ptb-real-ffs-macs).
"""
import argparse
import csv
import glob
import math
import os
import re
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
from common.report import writeup  # noqa: E402
from common.stages import fc_shapes  # noqa: E402

RESULTS = os.path.join(ROOT, "results", "studies")
# dataset -> (logs of the finished Selections, nhid, inputs per step, steps per sample, readout inputs -> outputs
#             once per sample (S-MNIST) or per step (PTB), Adaptation + Restoration epochs, the ffs budgets run
#             (name -> epochs and the folder whose logs say at which ratios, None: every ratio), the folders holding
#             ffs runs at a MAC-matched budget (per learning-rate schedule), the command that would run them)
SETUPS = {
    "S-MNIST (criteria study, width 60)": dict(
        logs="criteria/logs/w60-hessian", nhid=60, ninp=28, steps=28, outputs=10, per_step_readout=False,
        epochs=(15, 8), ffs_runs={"original": (15, None), "matched epochs": (23, None)}, ratios=(0.25, 0.5, 0.75),
        folders={None: "criteria/logs/w60-ffs-macs"}, command="python studies/criteria/mprun-ffs-macs.py"),
    "PTB (replication study, width 30)": dict(
        logs="replication/rnn-ptb-real/logs", nhid=30, ninp=60, steps=1, outputs=10000, per_step_readout=True,
        epochs=(1, 1), ratios=(0.1, 0.3, 0.5, 0.7, 0.9),
        ffs_runs={"original": (1, None), "matched epochs": (2, "replication/rnn-ptb-real-ffs-matched/logs"),
                  "matched epochs, HSTNN's schedule": (2, "replication/rnn-ptb-real-ffs-matched-lr/logs")},
        folders={"own schedule": "replication/rnn-ptb-real-ffs-macs/logs",
                 "HSTNN's schedule": "replication/rnn-ptb-real-ffs-macs-lr/logs"},
        command="python studies/replication/mprun-ptb-ffs-macs.py"),
}


def forward_macs(rnn_shape, snn_shape, ninp, steps, outputs, per_step_readout):
    """Dense forward MACs of one sample through a two-layer hybrid (sigmoid RNN + LIF) and its readout."""
    per_step, inputs = 0, ninp
    for r, s in zip(rnn_shape, snn_shape):
        per_step += inputs * (r + s) + r * r
        inputs = r + s
    readout = inputs * outputs
    return steps * (per_step + (readout if per_step_readout else 0)) + (0 if per_step_readout else readout)


def kept_shapes(log):
    """(rnn_shape, snn_shape) a finished Selection logged, or None."""
    found = {}
    with open(log) as f:
        for line in f:
            m = re.search(r"\b(rnn|snn)_layer\[(\d)\]: (\d+)$", line.strip())
            if m:
                found[(m.group(1), int(m.group(2)))] = int(m.group(3))
    if len(found) != 4:
        return None
    return [found[("rnn", 0)], found[("rnn", 1)]], [found[("snn", 0)], found[("snn", 1)]]


def budget_rows(results):
    rows = []
    for name, s in SETUPS.items():
        macs = lambda shapes: forward_macs(*shapes, s["ninp"], s["steps"], s["outputs"], s["per_step_readout"])
        adaptation = macs(fc_shapes("hybrid", s["nhid"], None))
        ada_epochs, res_epochs = s["epochs"]
        for ratio in s["ratios"]:
            logs = sorted(glob.glob(os.path.join(results, s["logs"], f"train_*_hybrid_*_{ratio}.log")))
            restored = [macs(k) for k in map(kept_shapes, logs) if k]
            if not restored:
                continue
            ffs = macs(fc_shapes("ffs", s["nhid"], ratio))
            hstnn = ada_epochs * adaptation + res_epochs * statistics.fmean(restored)
            ran = lambda folder: bool(glob.glob(os.path.join(results, folder, f"train_*_ffs_*_{ratio}.log")))
            have = {label: ran(folder) for label, folder in s["folders"].items()}
            status = "; ".join(("" if label is None else f"{label}: ") + ("finished" if done else "not run")
                               for label, done in have.items())
            rows.append(dict(dataset=name, ratio=ratio, adaptation_macs=adaptation,
                             restoration_macs=statistics.fmean(restored), restoration_seeds=len(restored),
                             ffs_macs=ffs, hstnn_epochs=ada_epochs + res_epochs, hstnn_macs=hstnn,
                             ffs_runs="; ".join(f"{k} ({e} epochs) {e * ffs / hstnn:.2f}" for k, (e, folder) in
                                                s["ffs_runs"].items() if folder is None or ran(folder)),
                             mac_matched_epochs=math.ceil(hstnn / ffs - 1e-9),
                             mac_matched_runs=status + ("" if all(have.values()) else f": {s['command']}")))
    return rows


def tables(rows):
    table = ["| dataset | ratio | forward MACs per sample: Adaptation | Restoration (mean over seeds) | ffs | "
             "HSTNN epochs | HSTNN MACs per sample (all epochs) | ffs budgets run: share of HSTNN's MACs | "
             "ffs epochs matching HSTNN's MACs | those runs |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['dataset']} | {r['ratio']} | {r['adaptation_macs']:,} | {r['restoration_macs']:,.0f} "
                     f"({r['restoration_seeds']}) | {r['ffs_macs']:,} | {r['hstnn_epochs']} | {r['hstnn_macs']:,.0f} | "
                     f"{r['ffs_runs']} | {r['mac_matched_epochs']} | {r['mac_matched_runs']} |")
    return "\n".join(table)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=RESULTS)
    p.add_argument("--writeup", default=os.path.join(ROOT, "results", "REPLICATION.md"))
    args = p.parse_args()
    rows = budget_rows(args.results)
    table = tables(rows)
    with open(os.path.join(args.results, "budget.md"), "w", encoding="utf-8") as f:
        f.write("# Training budgets in epochs and multiply-accumulates (generated by studies/budget.py)\n\n" + table + "\n")
    with open(os.path.join(args.results, "budget.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["dataset"], lineterminator="\n")
        w.writeheader()
        w.writerows({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows)
    print(table)
    if args.writeup:
        print(writeup.summary(args.writeup, writeup.fill(args.writeup, {"budget": table})))


if __name__ == "__main__":
    main()
