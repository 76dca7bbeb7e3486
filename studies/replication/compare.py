"""The numbers behind the write-up's statements, from the study's train logs (run.py calls it last).

    python studies/replication/compare.py [--out results/studies/replication]

For every experiment in runs/ (or in a folder of copied logs such as results/studies/replication/, whose
experiment folders hold logs/ instead of log/): per SNN ratio, HSTNN minus ffs and HSTNN minus the better pure network,
each as the mean ± population std over seeds of the per-seed difference (seeds paired: the same seed
trains both), beside the seed std of the runs themselves, and per seed with the mean's 95 % confidence
interval (t, n − 1); against ffs at the matched budget where <experiment>-ffs-matched exists. For the
random-selection ablation: the metric right after Selection (before Restoration) and after Restoration,
Hessian vs random, same seeds.
Only finished runs count: a log with all its test blocks, and a completion record beside it, where one
exists, that says "finished". Writes comparisons.md and comparisons.csv, and replaces the write-up's
generated tables of these comparisons (--writeup; the aggregator's summary table of each experiment too).
"""
import argparse
import csv
import glob
import math
import os
import re
import statistics
import sys

from scipy import stats

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
from common.report import writeup  # noqa: E402
from common.report.profile import read_profile_csv  # noqa: E402
from common.runs import unfinished_by_record  # noqa: E402

RUNS = os.path.join(HERE, "runs")
BLOCK = re.compile(r"\| Performance on Test Set \| test loss\s+\S+ \| test (acc|ppl)\s+(\S+)")


def logdir(folder):
    """A run folder's log/, or the logs/ of a folder of copied logs."""
    return os.path.join(folder, "log") if os.path.isdir(os.path.join(folder, "log")) else os.path.join(folder, "logs")


def blocks(path):
    """The test numbers of a log, in order (train2: redundant net, selected net, restored net); none when its
    completion record says the run did not finish."""
    if not os.path.exists(path) or unfinished_by_record(path):
        return []
    with open(path) as f:
        return [float(m.group(2)) for m in map(BLOCK.search, f) if m]


def final(folder, ds, model, seed, ratio=None):
    name = f"{ds}_{model}_{seed}" + ("" if ratio is None else f"_{float(ratio)}")
    found = blocks(os.path.join(logdir(folder), f"train_{name}.log"))
    n = 3 if model == "hybrid" and ratio is not None else 1  # train2 logs hold three blocks when finished
    return found if len(found) >= n else None


def ms(values, sign=""):
    """'mean ± population std' ('+' for sign="+": a difference)."""
    values = [v for v in values if v is not None]
    if not values:
        return "NA"
    return f"{statistics.fmean(values):{sign}.2f} ± {statistics.pstdev(values):.2f}"


def interval(diffs):
    """'mean [low, high]': the 95 % confidence interval of the mean paired difference (t, n − 1)."""
    if len(diffs) < 2:
        return "NA"
    half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    mean = statistics.fmean(diffs)
    return f"{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}]"


def layout(folder):
    """(dataset, pure non-spiking model, seeds, ratios) from the log names."""
    names = [os.path.basename(p)[len("train_"):-len(".log")] for p in glob.glob(os.path.join(logdir(folder), "train_*.log"))]
    parts = [n.split("_") for n in names]
    ds = parts[0][0]
    pure = "lstm" if any(p[1] == "lstm" for p in parts) else "rnn"
    seeds = sorted({int(p[2]) for p in parts})
    ratios = sorted({float(p[3]) for p in parts if len(p) == 4})
    return ds, pure, seeds, ratios


def compare(runs, name, rows):
    """comparisons.md's section for one experiment, and its tables for the write-up (name -> text)."""
    folder = os.path.join(runs, name)
    ds, pure, seeds, ratios = layout(folder)
    better = min if ds == "ptb" else max  # perplexity: lower is better; accuracy: higher
    sign = -1 if ds == "ptb" else 1       # differences written so that > 0 means HSTNN is better
    pures = {s: [final(folder, ds, m, s) for m in (pure, "snn")] for s in seeds}
    lines = [f"### {name} ({'test perplexity, lower is better' if ds == 'ptb' else 'test accuracy %, higher is better'}; "
             f"seeds {', '.join(map(str, seeds))}; differences > 0 mean HSTNN is better)", "",
             f"| ratio | HSTNN | ffs | {pure} | snn | HSTNN − ffs (paired) | HSTNN − better pure (paired) |",
             "|---|---|---|---|---|---|---|"]
    tables = {}
    per_seed = []
    for r in ratios:
        h = {s: final(folder, ds, "hybrid", s, r) for s in seeds}
        f = {s: final(folder, ds, "ffs", s, r) for s in seeds}
        hv = {s: v[-1] for s, v in h.items() if v}
        fv = {s: v[-1] for s, v in f.items() if v}
        pv = {s: better(v[0] for v in pures[s]) for s in seeds if all(pures[s])}
        d_ffs = [sign * (hv[s] - fv[s]) for s in seeds if s in hv and s in fv]
        d_pure = [sign * (hv[s] - pv[s]) for s in seeds if s in hv and s in pv]
        lines.append(f"| {r} | {ms(hv.values())} | {ms(fv.values())} | {ms([p[0][0] for p in pures.values() if p[0]])} | "
                     f"{ms([p[1][0] for p in pures.values() if p[1]])} | {ms(d_ffs, '+')} ({sum(d > 0 for d in d_ffs)}/{len(d_ffs)} seeds) | "
                     f"{ms(d_pure, '+')} ({sum(d > 0 for d in d_pure)}/{len(d_pure)} seeds) |")
        rows.append(dict(experiment=name, ratio=r, hstnn=ms(hv.values()), ffs=ms(fv.values()),
                         hstnn_minus_ffs=ms(d_ffs), hstnn_minus_best_pure=ms(d_pure),
                         hstnn_minus_ffs_ci95=interval(d_ffs), hstnn_minus_best_pure_ci95=interval(d_pure)))
        per_seed.append(f"| {r} | {', '.join(f'{d:+.2f}' for d in d_ffs)} | {interval(d_ffs)} | "
                        f"{', '.join(f'{d:+.2f}' for d in d_pure)} | {interval(d_pure)} |")
    tables[f"replication-{name}-paired"] = "\n".join(lines[2:])
    per_seed = ["| ratio | HSTNN − ffs per seed | mean [95 % CI] | HSTNN − better pure per seed | mean [95 % CI] |",
                "|---|---|---|---|---|"] + per_seed
    tables[f"replication-{name}-per-seed"] = "\n".join(per_seed)
    lines += ["", f"Per seed ({', '.join(map(str, seeds))}) and the mean with its 95 % confidence interval (t, n − 1; "
              "n = the seeds with both runs finished):", ""] + per_seed
    matched = os.path.join(runs, f"{name}-ffs-matched")  # ffs given as many epochs as Adaptation + Restoration
    if glob.glob(os.path.join(logdir(matched), f"train_{ds}_ffs_*.log")):
        lines += ["", f"ffs at the matched budget ({name}-ffs-matched: as many epochs as Adaptation + Restoration):", ""]
        start = len(lines)
        lines += ["| ratio | HSTNN | ffs, matched budget | HSTNN − ffs per seed | mean [95 % CI] |", "|---|---|---|---|---|"]
        for r in ratios:
            hv = {s: v[-1] for s in seeds if (v := final(folder, ds, "hybrid", s, r))}
            mv = {s: v[-1] for s in seeds if (v := final(matched, ds, "ffs", s, r))}
            d = [sign * (hv[s] - mv[s]) for s in seeds if s in hv and s in mv]
            if mv:
                lines.append(f"| {r} | {ms(hv.values())} | {ms(mv.values())} | {', '.join(f'{x:+.2f}' for x in d)} | "
                             f"{interval(d)} |")
                rows.append(dict(experiment=name, ratio=r, ffs_matched=ms(mv.values()),
                                 hstnn_minus_ffs_matched_ci95=interval(d)))
        tables[f"replication-{name}-matched"] = "\n".join(lines[start:])
    random = os.path.join(runs, f"{name}-random-selection")
    if any(not os.path.islink(p) for p in glob.glob(os.path.join(logdir(random), f"train_{ds}_hybrid_*_*.log"))):
        lines += ["", f"Random-selection ablation ({name}-random-selection: the same Adaptation checkpoints, counts, "
                  "rule and Restoration; uniform random scores instead of the Hessian importance):", ""]
        start = len(lines)
        lines += ["| ratio | after Selection: Hessian | after Selection: random | Hessian − random (paired) | "
                  "after Restoration: Hessian | after Restoration: random | Hessian − random (paired) |",
                  "|---|---|---|---|---|---|---|"]
        per_seed = ["| ratio | after Selection: Hessian − random per seed | mean [95 % CI] | "
                    "after Restoration: Hessian − random per seed | mean [95 % CI] |", "|---|---|---|---|---|"]
        for r in ratios:
            h = {s: final(folder, ds, "hybrid", s, r) for s in seeds}
            q = {s: final(random, ds, "hybrid", s, r) for s in seeds}
            cells, seed_cells = [], []
            for k in (1, 2):  # the selected network before Restoration, the restored network
                hv = {s: v[k] for s, v in h.items() if v}
                qv = {s: v[k] for s, v in q.items() if v}
                d = [sign * (hv[s] - qv[s]) for s in seeds if s in hv and s in qv]
                cells += [ms(hv.values()), ms(qv.values()), f"{ms(d, '+')} ({sum(x > 0 for x in d)}/{len(d)} seeds)"]
                seed_cells += [", ".join(f"{x:+.2f}" for x in d), interval(d)]
                rows.append(dict(experiment=name, ratio=r, stage=("after Selection", "after Restoration")[k - 1],
                                 hessian=ms(hv.values()), random=ms(qv.values()), hessian_minus_random=ms(d),
                                 hessian_minus_random_ci95=interval(d)))
            lines.append(f"| {r} | " + " | ".join(cells) + " |")
            per_seed.append(f"| {r} | " + " | ".join(seed_cells) + " |")
        tables[f"replication-{name}-random"] = "\n".join(lines[start:])
        tables[f"replication-{name}-random-per-seed"] = "\n".join(per_seed)
        lines += ["", "Per seed and the mean with its 95 % confidence interval (t, n − 1):", ""] + per_seed
    return "\n".join(lines) + "\n", tables


def cost_table(runs):
    """Jobs, wall and CPU minutes per experiment folder, from the launcher's profile.csv in `runs`: the last
    successful attempt of each job whose finished log is there. None without a profile."""
    last = {(r["experiment"], r["job"]): r for r in read_profile_csv(os.path.join(runs, "profile.csv")) if r["status"] == "ok"}
    if not last:
        return None
    parts = {}
    for (name, job), r in sorted(last.items()):
        if blocks(os.path.join(logdir(os.path.join(runs, name)), f"train_{job.split('_', 1)[1]}.log")):
            part = parts.setdefault(name, [0, 0.0, 0.0])
            part[0] += 1
            part[1] += float(r["wall_s"] or 0)
            part[2] += float(r["cpu_s"] or 0)
    lines = ["| experiment folder | jobs | wall minutes (sum over jobs) | CPU minutes |", "|---|---|---|---|"]
    lines += [f"| {name} | {n} | {wall / 60:.1f} | {cpu / 60:.1f} |" for name, (n, wall, cpu) in sorted(parts.items())]
    return "\n".join(lines)


def summary_table(folder):
    """The aggregator's table (the metric beside the published numbers) from <folder>/*-summary.md, or None."""
    found = sorted(glob.glob(os.path.join(folder, "*-summary.md")))
    if not found:
        return None
    with open(found[0]) as f:
        return "\n".join(line.rstrip("\n") for line in f if line.startswith("|"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(ROOT, "results", "studies", "replication"))
    p.add_argument("--runs", default=RUNS, help="the folder of experiment folders, or of their copied logs (default: runs/ "
                   "of this study)")
    p.add_argument("--writeup", default="", help="a write-up whose generated tables of these comparisons are replaced")
    args = p.parse_args()
    rows, text, tables = [], ["# Paired comparisons (mean ± population std over seeds)\n"], {}
    for name in sorted(os.listdir(args.runs)) if os.path.isdir(args.runs) else []:
        folder = os.path.join(args.runs, name)
        if not name.endswith(("-random-selection", "-ffs-matched")) and glob.glob(os.path.join(logdir(folder), "train_*.log")):
            section, found = compare(args.runs, name, rows)
            text.append(section)
            tables.update(found)
            summary = summary_table(folder) or summary_table(os.path.join(args.out, name))
            if summary:
                tables[f"replication-{name}-summary"] = summary
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "comparisons.md"), "w") as f:
        f.write("\n".join(text))
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(os.path.join(args.out, "comparisons.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    print("\n".join(text))
    cost = cost_table(args.runs)
    if cost:
        tables["replication-cost"] = cost
    if args.writeup:  # the tables that the write-up shows (it need not show every one)
        print(writeup.summary(args.writeup, writeup.fill(args.writeup, tables, only_shown=True)))


if __name__ == "__main__":
    main()
