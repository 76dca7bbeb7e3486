"""Every table, plot and number of the selection-criteria study, from the logs and records that run.py copies
to results/studies/criteria/logs/ and from no-retraining.csv.

Only finished runs count: the log ends with its final test block and, where a completion record
(log/train_<name>.json) exists, it says "finished". Statistics: per-seed paired differences (the criteria of
a seed share one Adaptation), mean and 95 % confidence interval (t with n - 1 degrees of freedom), the number
of seeds and how many favour each side; every ratio on its own (the ratios of a seed share one Adaptation, so
they are not independent and are never pooled); the minimum detectable difference at 80 % power
(two-sided 5 % paired t test: (t_0.975 + t_0.8) * sd / sqrt(n)). random = the mean of a seed's random draws.
"""
import argparse
import csv
import math
import os
import re
import statistics
import sys
from collections import defaultdict

from scipy import stats

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
from common.report import writeup  # noqa: E402
from common.report.profile import read_profile_csv  # noqa: E402
from common.runs import unfinished_by_record  # noqa: E402

RATIOS = (0.25, 0.5, 0.75)
Q2 = ("hessian", "random", "taylor", "magnitude", "trace", "reversed")
IMPROVING = set()  # the finished runs whose best validation epoch was their last
TEST_LINE = re.compile(r"^\| Performance on Test Set \| test loss ([-\d.naif]+) \| test acc ([-\d.naif]+)$")


def final_accuracy(log):
    """The final test accuracy of a finished run, else None."""
    lines = [l.rstrip("\n") for l in open(log) if l.strip()]
    if len(lines) < 3 or not lines[-1].startswith("====") or lines[-3] != lines[-1]:
        return None
    m = TEST_LINE.match(lines[-2].split(" - ")[-1] if " - " in lines[-2] else lines[-2])
    if not m:
        return None
    return None if unfinished_by_record(log) else float(m.group(2))


def still_improving(log):
    """True when the run's best validation accuracy came at its last epoch (it had not levelled off)."""
    accs = [float(m.group(1)) for m in (re.search(r"\| end of epoch +\d+ .*\| valid acc ([\d.]+)%", l) for l in open(log)) if m]
    return bool(accs) and max(accs) == accs[-1] and accs.index(max(accs)) == len(accs) - 1


def read_runs(logs):
    """(folder, model, seed, ratio) -> final test accuracy of every finished run."""
    out = {}
    for folder in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
        where = os.path.join(logs, folder, "log") if os.path.isdir(os.path.join(logs, folder, "log")) else \
            os.path.join(logs, folder)  # a run folder (its log/) or a folder of copied logs
        for f in sorted(os.listdir(where)) if os.path.isdir(where) else []:
            m = re.match(r"^train_mnist_(hybrid|ffs)_(\d+)(?:_([\d.]+))?\.log$", f)
            if m:
                acc = final_accuracy(os.path.join(where, f))
                if acc is not None:
                    out[(folder, m.group(1), int(m.group(2)), float(m.group(3)) if m.group(3) else None)] = acc
                    if still_improving(os.path.join(where, f)):
                        IMPROVING.add((folder, m.group(1), int(m.group(2)), float(m.group(3)) if m.group(3) else None))
    return out


def paired(diffs):
    """n, mean, CI half-width, sd, number > 0, number < 0, minimum detectable difference (80 % power)."""
    n = len(diffs)
    if n == 0:
        return None
    mean = statistics.fmean(diffs)
    if n == 1:
        return dict(n=1, mean=mean, half=math.nan, sd=math.nan, pos=int(mean > 0), neg=int(mean < 0), mdd=math.nan)
    sd = statistics.stdev(diffs)
    t = stats.t.ppf(0.975, n - 1)
    return dict(n=n, mean=mean, half=t * sd / math.sqrt(n), sd=sd, pos=sum(d > 0 for d in diffs),
                neg=sum(d < 0 for d in diffs), mdd=(t + stats.t.ppf(0.8, n - 1)) * sd / math.sqrt(n))


def fmt(p):
    """'difference [95 % CI] | seeds better / worse of n | MDD' cells."""
    if p is None:
        return "no finished pair | |"
    ci = "" if math.isnan(p["half"]) else f" [{p['mean'] - p['half']:+.2f}, {p['mean'] + p['half']:+.2f}]"
    mdd = "n/a" if math.isnan(p["mdd"]) else f"{p['mdd']:.2f}"
    return f"{p['mean']:+.2f}{ci} | {p['pos']}+ / {p['neg']}- of {p['n']} | {mdd}"


def verdict(p, what):
    """Words bound to the interval."""
    if p is None or math.isnan(p["half"]):
        return "untested (fewer than 2 seeds)"
    lo, hi = p["mean"] - p["half"], p["mean"] + p["half"]
    if lo > 0:
        return f"{what} better by {lo:.2f} to {hi:.2f} points"
    if hi < 0:
        return f"{what} worse by {-hi:.2f} to {-lo:.2f} points"
    return f"no difference larger than {max(-lo, hi):.2f} points detected"


def q2(runs):
    """Per criterion and ratio: per-seed accuracy (random: the mean of the finished draws)."""
    acc = defaultdict(dict)  # (criterion, ratio) -> seed -> accuracy
    draws = defaultdict(list)
    for (folder, model, seed, ratio), a in runs.items():
        if model != "hybrid" or ratio is None or not folder.startswith("w60-"):
            continue
        criterion = folder[4:]
        if criterion.startswith("random-"):
            draws[(ratio, seed)].append(a)
        else:
            acc[(criterion, ratio)][seed] = a
    for (ratio, seed), values in draws.items():
        acc[("random", ratio)][seed] = statistics.fmean(values)
    return acc, draws


def table_q2(acc, draws):
    lines = ["## Question 2: criteria after Restoration (S-MNIST RNN, width 60, --protocol val)", "",
             "Test accuracy (%) of the restored network, one Adaptation per seed shared by every criterion. "
             "Paired difference = Hessian − criterion, per seed; CI: 95 %, t with n − 1; MDD: minimum detectable "
             "difference at 80 % power. random: the mean of the seed's finished draws (draws per seed: "
             + ", ".join(f"{r}: {sorted(set(len(v) for (rr, _), v in draws.items() if rr == r))}" for r in RATIOS)
             + ").", ""]
    table = ["| ratio | criterion | accuracy, mean ± sd (n) | Hessian − criterion [95 % CI] | seeds Hessian better / worse | MDD |",
             "|---|---|---|---|---|---|"]
    rows = []
    for r in RATIOS:
        for c in Q2:
            seeds = acc.get((c, r), {})
            v = list(seeds.values())
            ms = f"{statistics.fmean(v):.2f} ± {statistics.stdev(v):.2f} ({len(v)})" if len(v) > 1 else \
                (f"{v[0]:.2f} (1)" if v else "none finished")
            if c == "hessian":
                table.append(f"| {r} | hessian (reference) | {ms} | | | |")
                continue
            common = sorted(set(seeds) & set(acc.get(("hessian", r), {})))
            p = paired([acc[("hessian", r)][s] - seeds[s] for s in common])
            table.append(f"| {r} | {c} | {ms} | {fmt(p)} |")
            rows.append(dict(question=2, ratio=r, a="hessian", b=c, **(p or {"n": 0}), verdict=verdict(p, "Hessian")))
    return lines + table + [""], rows, {"criteria-q2": "\n".join(table)}


def table_q3(runs, acc):
    ffs = {name: defaultdict(dict) for name in ("original", "matched")}
    for (folder, model, seed, ratio), a in runs.items():
        if model == "ffs" and folder in ("w60", "w60-ffs-matched"):
            ffs["original" if folder == "w60" else "matched"][ratio][seed] = a
    lines = ["## Question 3: HSTNN against a hybrid trained from scratch (ffs), width 60", "",
             "ffs has the final shape from the start. Original budget: as many epochs as Adaptation; matched: as "
             "many as Adaptation + Restoration (epochs, not FLOPs: Adaptation runs twice the neurons). Paired by "
             "seed (the same seed, not the same network). Difference = HSTNN (Hessian) − other.", ""]
    table = ["| ratio | comparison | other: accuracy, mean ± sd (n) | difference [95 % CI] | seeds HSTNN better / worse | MDD |",
             "|---|---|---|---|---|---|"]
    rows = []
    for r in RATIOS:
        hs = acc.get(("hessian", r), {})
        for label, other in (("HSTNN − ffs (original budget)", ffs["original"][r]),
                             ("HSTNN − ffs (matched epochs)", ffs["matched"][r]),
                             ("HSTNN with random selection − ffs (matched)", None)):
            base = hs if other is not None else acc.get(("random", r), {})
            other = other if other is not None else ffs["matched"][r]
            v = list(other.values())
            ms = f"{statistics.fmean(v):.2f} ± {statistics.stdev(v):.2f} ({len(v)})" if len(v) > 1 else "n < 2"
            common = sorted(set(base) & set(other))
            p = paired([base[s] - other[s] for s in common])
            table.append(f"| {r} | {label} | {ms} | {fmt(p)} |")
            rows.append(dict(question=3, ratio=r, a=label.split(" − ")[0], b=label.split(" − ")[1], **(p or {"n": 0}),
                             verdict=verdict(p, "HSTNN")))
        common = sorted(set(ffs["matched"][r]) & set(ffs["original"][r]))
        p = paired([ffs["matched"][r][s] - ffs["original"][r][s] for s in common])
        table.append(f"| {r} | ffs matched − ffs original | | {fmt(p)} |")
        rows.append(dict(question=3, ratio=r, a="ffs matched", b="ffs original", **(p or {"n": 0}),
                         verdict=verdict(p, "the longer ffs")))
    table.append("")
    for label, keys in (("ffs, original budget", [k for k in runs if k[0] == "w60" and k[1] == "ffs"]),
                        ("ffs, matched epochs", [k for k in runs if k[0] == "w60-ffs-matched"]),
                        ("HSTNN Restoration (Hessian)", [k for k in runs if k[0] == "w60-hessian"])):
        table.append(f"- {label}: {sum(k in IMPROVING for k in keys)} of {len(keys)} finished runs had their best "
                     "validation accuracy at their last epoch (still improving when stopped).")
    return lines + table + [""], rows, {"criteria-q3": "\n".join(table)}


def table_q1(path):
    if not os.path.exists(path):
        return ["## Question 1: no retraining", "", "Not run yet (no no-retraining.csv).", ""], [], {}, {}
    data = defaultdict(dict)  # (width, criterion, ratio, metric) -> seed -> value
    with open(path) as f:
        for r in csv.DictReader(f):
            data[(int(r["width"]), r["criterion"], r["ratio"], r["metric"])][int(r["seed"])] = float(r["value"])
    widths = sorted({k[0] for k in data})
    for w in widths:  # random: the mean of the seed's draws
        for ratio in ("0.25", "0.5", "0.75"):
            per_seed = defaultdict(list)
            for (ww, c, rr, m), seeds in data.items():
                if ww == w and c.startswith("random-") and rr == ratio and m == "test_acc":
                    for s, v in seeds.items():
                        per_seed[s].append(v)
            data[(w, "random", ratio, "test_acc")] = {s: statistics.fmean(v) for s, v in per_seed.items()}
    crit = ("hessian", "random", "reversed", "magnitude", "trace", "taylor", "oracle")
    lines = ["## Question 1: every criterion right after Selection, no retraining (S-MNIST RNN)", "",
             "Test accuracy (%) of the redundant network shrunk to the kept neurons, before any retraining: mean ± "
             "sd over seeds (n). random: the mean of the seed's draws. The oracle is each neuron's loss increase "
             "when it alone is removed, measured on the 1,000 held-out (validation) images; accuracies are on the "
             "1,000 test images.", ""]
    accuracy = ["| width | ratio | redundant | " + " | ".join(crit) + " |", "|---" * (len(crit) + 3) + "|"]
    ms = lambda v: f"{statistics.fmean(v):.1f} ± {statistics.stdev(v):.1f} ({len(v)})" if len(v) > 1 else \
        (f"{v[0]:.1f} (1)" if v else "–")
    for w in widths:
        for ratio in ("0.25", "0.5", "0.75"):
            red = list(data.get((w, "redundant", "", "test_acc"), {}).values())
            accuracy.append(f"| {w} | {ratio} | {ms(red)} | " + " | ".join(
                ms(list(data.get((w, c, ratio, "test_acc"), {}).values())) for c in crit) + " |")
    rows, pairs = [], {}
    long = ["", "Paired differences per seed, no retraining: Hessian − criterion (test accuracy points).", "",
            "| width | ratio | criterion | difference [95 % CI] | seeds Hessian better / worse | MDD |",
            "|---|---|---|---|---|---|"]
    for w in widths:
        for ratio in ("0.25", "0.5", "0.75"):
            hs = data.get((w, "hessian", ratio, "test_acc"), {})
            for c in ("random", "reversed", "magnitude", "trace", "taylor", "oracle"):
                other = data.get((w, c, ratio, "test_acc"), {})
                p = pairs[(w, ratio, c)] = paired([hs[s] - other[s] for s in sorted(set(hs) & set(other))])
                long.append(f"| {w} | {ratio} | {c} | {fmt(p)} |")
                rows.append(dict(question=1, width=w, ratio=float(ratio), a="hessian", b=c, **(p or {"n": 0}),
                                 verdict=verdict(p, "Hessian")))
    short = lambda p: "–" if p is None or math.isnan(p["half"]) else \
        f"{p['mean']:+.2f} [{p['mean'] - p['half']:+.2f}, {p['mean'] + p['half']:+.2f}] ({p['pos']}+ / {p['neg']}-)"
    compact = ["| width | ratio | Hessian − random [95 % CI] (better / worse) | Hessian − reversed | Hessian − oracle's pick |",
               "|---|---|---|---|---|"]
    for w in widths:
        for ratio in ("0.25", "0.5", "0.75"):
            compact.append(f"| {w} | {ratio} | " + " | ".join(short(pairs[(w, ratio, c)])
                                                              for c in ("random", "reversed", "oracle")) + " |")
    pops = ("snn1", "snn2", "rnn1", "rnn2")
    spear = {}
    spearman = ["| width | hessian | trace | magnitude | taylor | random | probe halves (hessian) |", "|---|---|---|---|---|---|---|"]
    for w in widths:
        cells = []
        for c, metric in (("hessian", "spearman_oracle_"), ("trace", "spearman_oracle_"),
                          ("magnitude", "spearman_oracle_"), ("taylor", "spearman_oracle_"),
                          ("random-0", "spearman_oracle_"), ("hessian", "spearman_probe_halves_")):
            seeds = set.intersection(*[set(data.get((w, c, "", metric + k), {})) for k in pops])
            per_seed = [[data[(w, c, "", metric + k)][s] for k in pops] for s in sorted(seeds)]
            v = [statistics.fmean(x for x in xs if not math.isnan(x)) for xs in per_seed  # nan: a constant population
                 if any(not math.isnan(x) for x in xs)]
            p = paired(v)
            spear[(w, c, metric)] = p
            cells.append("–" if p is None else (f"{p['mean']:.2f} (1)" if p["n"] == 1 else
                                               f"{p['mean']:.2f} [{p['mean'] - p['half']:.2f}, {p['mean'] + p['half']:.2f}] ({p['n']})"))
        spearman.append(f"| {w} | " + " | ".join(cells) + " |")
    lines += accuracy + long + ["", "Spearman rank correlation with the oracle (per population, then the mean of the four "
                                "populations per seed; mean and 95 % CI over seeds). 'probe halves': the importance from "
                                "the first half of the Hutchinson probes against that from the second (how reproducible "
                                "the Hessian score is).", ""] + spearman
    writeup = {"criteria-q1-accuracy": "\n".join(accuracy), "criteria-q1-paired": "\n".join(compact),
               "criteria-q1-spearman": "\n".join(spearman)}
    return lines + [""], rows, spear, writeup


def table_cost(out, logs):
    """CPU and wall minutes per part: the launcher's profile (the last successful attempt of each job whose
    run counts) and no-retraining.csv's timing rows."""
    parts = defaultdict(lambda: [0, 0.0, 0.0])  # part -> jobs, wall s, cpu s
    last = {(r["experiment"], r["job"]): r for r in read_profile_csv(os.path.join(out, "profile.csv")) if r["status"] == "ok"}
    for (folder, job), r in last.items():
        if not os.path.exists(os.path.join(logs, folder, f"train_{job.split('_', 1)[1]}.log")):
            continue  # not a counted run (unfinished, or replaced since)
        if r["mode"] == "train2":
            part = "Q2: Selection + Restoration, every criterion (width 60)"
        elif r["model"] == "ffs":
            part = "Q3: ffs, both budgets (width 60)"
        else:
            part = f"Adaptation, width {folder[1:]}"
        parts[part][0] += 1
        parts[part][1] += float(r["wall_s"] or 0)
        parts[part][2] += float(r["cpu_s"] or 0)
    path = os.path.join(out, "no-retraining.csv")
    if os.path.exists(path):
        with open(path) as f:
            for r in csv.DictReader(f):
                if r["criterion"] == "timing":
                    part = parts[f"Q1: no retraining, width {r['width']}"]
                    part[0] += r["metric"] == "wall_s"
                    part[1 if r["metric"] == "wall_s" else 2] += float(r["value"])
    lines = ["## Cost", "", "One job at a time on a shared 2-core machine, each job on one thread under `nice`; wall "
             "time includes waiting for the CPU. Jobs interrupted and resumed or rerun are counted once (their last, "
             "successful attempt).", ""]
    table = ["| part | jobs (Q1: seeds) | wall minutes | CPU minutes |", "|---|---|---|---|"]
    for part in sorted(parts):
        n, wall, cpu = parts[part]
        table.append(f"| {part} | {n} | {wall / 60:.1f} | {cpu / 60:.1f} |")
    total = [sum(v[i] for v in parts.values()) for i in range(3)]
    table.append(f"| all | {total[0]} | {total[1] / 60:.1f} | {total[2] / 60:.1f} |")
    return lines + table + [""], {"criteria-cost": "\n".join(table)}


def plot(acc, spear, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    color = {c: f"C{i}" for i, c in enumerate(Q2)}
    for i, c in enumerate(Q2):
        xs, ys, es = [], [], []
        for j, r in enumerate(RATIOS):
            v = list(acc.get((c, r), {}).values())
            if len(v) > 1:
                xs.append(j + (i - 2.5) * 0.1)
                ys.append(statistics.fmean(v))
                es.append(stats.t.ppf(0.975, len(v) - 1) * statistics.stdev(v) / math.sqrt(len(v)))
        axes[0].errorbar(xs, ys, yerr=es, fmt="o", capsize=3, label=c, color=color[c])
    axes[0].set_xticks(range(len(RATIOS)), [str(r) for r in RATIOS])
    axes[0].set_xlabel("SNN ratio")
    axes[0].set_ylabel("test accuracy after Restoration (%)")
    axes[0].set_title("Q2: criteria (mean, 95 % CI)")
    axes[0].legend(fontsize=8)
    for c, label in (("hessian", "hessian"), ("trace", "trace"), ("magnitude", "magnitude"), ("taylor", "taylor"),
                     ("random-0", "random")):
        pts = sorted((w, p) for (w, cc, m), p in spear.items() if cc == c and m == "spearman_oracle_" and p)
        if pts:
            axes[1].errorbar([w for w, _ in pts], [p["mean"] for _, p in pts],
                             yerr=[0 if math.isnan(p["half"]) else p["half"] for _, p in pts], marker="o", capsize=3,
                             label=label, color=color[label])
    axes[1].set_xscale("log", base=2)
    widths = sorted({w for (w, _, _) in spear})
    axes[1].set_xticks(widths, [str(w) for w in widths])
    axes[1].minorticks_off()
    axes[1].set_xlabel("neurons per layer and type (Adaptation)")
    axes[1].set_ylabel("Spearman with the oracle")
    axes[1].set_title("Q1: agreement with leave-one-out")
    axes[1].axhline(0, color="grey", lw=0.5)
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "criteria.png"), dpi=120)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(ROOT, "results", "studies", "criteria"))
    p.add_argument("--logs", default=None, help="folder of per-run-folder logs (default: OUT/logs)")
    p.add_argument("--writeup", default=os.path.join(ROOT, "results", "REPLICATION.md"),
                   help="the write-up whose generated tables are replaced ('' to leave it alone)")
    args = p.parse_args()
    logs = args.logs or os.path.join(args.out, "logs")
    runs = read_runs(logs)
    acc, draws = q2(runs)
    l2, r2, b2 = table_q2(acc, draws)
    l3, r3, b3 = table_q3(runs, acc)
    l1, r1, spear, b1 = table_q1(os.path.join(args.out, "no-retraining.csv"))
    cost, b4 = table_cost(args.out, logs)
    os.makedirs(args.out, exist_ok=True)
    text = ["# The selection-criteria study: tables", "",
            f"Finished runs counted: {len(runs)}. Generated by studies/criteria/analysis.py from logs/ and "
            "no-retraining.csv.", ""] + l1 + l2 + l3 + cost
    with open(os.path.join(args.out, "tables.md"), "w") as f:
        f.write("\n".join(text) + "\n")
    fields = ("question", "width", "ratio", "a", "b", "n", "mean", "half", "sd", "pos", "neg", "mdd", "verdict")
    with open(os.path.join(args.out, "paired-differences.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for row in r1 + r2 + r3:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    plot(acc, spear, args.out)
    print("\n".join(text))
    if args.writeup:
        print(writeup.summary(args.writeup, writeup.fill(args.writeup, {**b1, **b2, **b3, **b4})))


if __name__ == "__main__":
    main()
