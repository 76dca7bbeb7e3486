"""The numbers behind the write-up's statements, from the study's train logs (run.py calls it last).

    python studies/replication/compare.py [--out results/studies/replication]

For every experiment in runs/ (or in a folder of copied logs such as results/studies/replication/, whose
experiment folders hold logs/ instead of log/): per SNN ratio, HSTNN minus ffs and HSTNN minus the better pure network,
each as the mean ± population std over seeds of the per-seed difference (seeds paired: the same seed
trains both), beside the seed std of the runs themselves, and per seed with the mean's 95 % confidence
interval (t, n − 1); against ffs at a matched budget where <experiment>-ffs-matched (epochs) or
<experiment>-ffs-macs (training multiply-accumulates) exists. For the
random-selection ablation: the metric right after Selection (before Restoration) and after Restoration,
Hessian vs random, same seeds.
Every paired difference is a test of a family declared in studies/families.py (one per question and
experiment); Holm's correction runs within each (common/report/inference.py), and the tables show the paired t
test's p, Holm's p and the Holm-adjusted interval beside the raw one.
Only finished runs count: a log with all its test blocks, and a completion record beside it, where one
exists, that says "finished". Writes comparisons.md, comparisons.csv and tests.csv (every test with its family,
raw and adjusted numbers, the set that chose its checkpoints and its verdict), and replaces the write-up's
generated tables and findings (--writeup; the aggregator's summary table of each experiment and the
selection probe's tables too).
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
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
from common.report import writeup  # noqa: E402
from common.report.inference import findings, holm, paired, pval, protocol, verdict  # noqa: E402
from common.report.profile import read_profile_csv  # noqa: E402
from common.runs import unfinished_by_record  # noqa: E402
from studies.families import family  # noqa: E402

RUNS = os.path.join(HERE, "runs")
# folder suffix of ffs at a matched budget -> (its name in the tables, what it matches)
LR = "; on HSTNN's learning-rate schedule: Adaptation's epoch at its rate, the rest at Restoration's"
MATCHED = {"ffs-matched": ("matched epochs", "as many epochs as Adaptation + Restoration"),
           "ffs-macs": ("matched MACs", "as many epochs as make its training multiply-accumulates HSTNN's, "
                                        "results/studies/budget.csv"),
           "ffs-matched-lr": ("matched epochs and rate", "as many epochs as Adaptation + Restoration" + LR),
           "ffs-macs-lr": ("matched MACs and rate", "as many epochs as make its training multiply-accumulates HSTNN's"
                                                    + LR)}
NO_TABLES = ("-tradeoff",) + tuple(f"-{suffix}" for suffix in MATCHED)  # folders of runs read beside an experiment's
NOT_EXPERIMENTS = ("-random-selection",) + NO_TABLES
FIELDS = ("family", "experiment", "ratio", "a", "b", "n", "mean", "sd", "lo", "hi", "p", "m", "rank", "p_holm", "level",
          "lo_holm", "hi_holm", "pos", "neg", "mdd", "protocol", "verdict")
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


def interval(t):
    """'mean [low, high] | p | Holm p | Holm-adjusted [low, high]': the 95 % t interval of the mean paired difference
    (t, n − 1), the paired t test's p, and Holm's within the test's family."""
    if t is None or t["n"] < 2:
        return "NA | | |"
    adj = "–" if math.isnan(t["lo_holm"]) else f"[{t['lo_holm']:+.2f}, {t['hi_holm']:+.2f}]"
    return f"{t['mean']:+.2f} [{t['lo']:+.2f}, {t['hi']:+.2f}] | {pval(t['p'])} | {pval(t['p_holm'])} | {adj}"


def test(name, experiment, ratio, a, b, diffs, logs):
    """One test of family `name` (studies/families.py): the paired statistics, what it compares, and the set that
    chose the checkpoints of the runs behind it (their logs)."""
    family(name)
    t = paired(diffs) or {"n": 0}
    found = sorted({protocol(p) for p in logs if os.path.exists(p)} - {""})
    t.update(family=name, experiment=experiment, ratio=ratio, a=a, b=b,
             protocol=found[0] if len(found) == 1 else (f"mixed ({', '.join(found)})" if found else ""))
    return t


def layout(folder):
    """(dataset, pure non-spiking model, seeds, ratios) from the log names."""
    names = [os.path.basename(p)[len("train_"):-len(".log")] for p in glob.glob(os.path.join(logdir(folder), "train_*.log"))]
    parts = [n.split("_") for n in names]
    ds = parts[0][0]
    pure = "lstm" if any(p[1] == "lstm" for p in parts) else "rnn"
    seeds = sorted({int(p[2]) for p in parts})
    ratios = sorted({float(p[3]) for p in parts if len(p) == 4})
    return ds, pure, seeds, ratios


def compare(runs, name, rows, tests):
    """comparisons.md's section for one experiment, and its tables for the write-up (name -> text). Its tests
    (Holm within each family of this experiment) are appended to `tests`."""
    folder = os.path.join(runs, name)
    ds, pure, seeds, ratios = layout(folder)
    better = min if ds == "ptb" else max  # perplexity: lower is better; accuracy: higher
    sign = -1 if ds == "ptb" else 1       # differences written so that > 0 means HSTNN is better
    log = lambda where, model, s, r=None: os.path.join(logdir(where), f"train_{ds}_{model}_{s}" +
                                                       ("" if r is None else f"_{float(r)}") + ".log")
    pures = {s: [final(folder, ds, m, s) for m in (pure, "snn")] for s in seeds}
    budgets = {suffix: os.path.join(runs, f"{name}-{suffix}") for suffix in MATCHED}
    budgets = {k: v for k, v in budgets.items() if glob.glob(os.path.join(logdir(v), f"train_{ds}_ffs_*.log"))}
    random = os.path.join(runs, f"{name}-random-selection")
    has_random = any(not os.path.islink(p) for p in glob.glob(os.path.join(logdir(random), f"train_{ds}_hybrid_*_*.log")))
    mine, per_ratio = [], {}
    for r in ratios:
        h = {s: final(folder, ds, "hybrid", s, r) for s in seeds}
        hv = {s: v[-1] for s, v in h.items() if v}
        fv = {s: v[-1] for s in seeds if (v := final(folder, ds, "ffs", s, r))}
        pv = {s: better(v[0] for v in pures[s]) for s in seeds if all(pures[s])}
        d_ffs = [sign * (hv[s] - fv[s]) for s in seeds if s in hv and s in fv]
        d_pure = [sign * (hv[s] - pv[s]) for s in seeds if s in hv and s in pv]
        hlogs = [log(folder, "hybrid", s, r) for s in seeds]
        got = per_ratio[r] = dict(hv=hv, fv=fv, d_ffs=d_ffs, d_pure=d_pure)
        got["ffs"] = test(f"replication-{name}-ffs", name, r, "HSTNN", "ffs", d_ffs,
                          hlogs + [log(folder, "ffs", s, r) for s in seeds])
        got["pure"] = test(f"replication-{name}-pure", name, r, "HSTNN", "the better pure network", d_pure,
                           hlogs + [log(folder, m, s) for s in seeds for m in (pure, "snn")])
        mine += [got["ffs"], got["pure"]]
        for suffix, where in budgets.items():
            mv = {s: v[-1] for s in seeds if (v := final(where, ds, "ffs", s, r))}
            if mv:
                d = [sign * (hv[s] - mv[s]) for s in seeds if s in hv and s in mv]
                got[suffix] = dict(mv=mv, d=d, test=test(f"replication-{name}-{suffix}", name, r, "HSTNN",
                                                         f"ffs ({MATCHED[suffix][0]})", d,
                                                         hlogs + [log(where, "ffs", s, r) for s in seeds]))
                mine.append(got[suffix]["test"])
        if has_random:
            q = {s: final(random, ds, "hybrid", s, r) for s in seeds}
            for k, stage in ((1, "selection"), (2, "restoration")):  # the selected network, the restored one
                hk = {s: v[k] for s, v in h.items() if v}
                qk = {s: v[k] for s, v in q.items() if v}
                d = [sign * (hk[s] - qk[s]) for s in seeds if s in hk and s in qk]
                got[stage] = test(f"replication-{name}-random-{stage}", name, r, "Hessian", "random", d,
                                  hlogs + [log(random, "hybrid", s, r) for s in seeds])
                got[stage].update(hk=hk, qk=qk, d=d)
                mine.append(got[stage])
    for fam in dict.fromkeys(t["family"] for t in mine):
        holm([t for t in mine if t["family"] == fam])
    for t in mine:
        t["verdict"] = verdict(t, family(t["family"])[3])[0]
    tests += mine

    seeds_of = lambda d: f"({sum(x > 0 for x in d)}/{len(d)} seeds)"
    lines = [f"### {name} ({'test perplexity, lower is better' if ds == 'ptb' else 'test accuracy %, higher is better'}; "
             f"seeds {', '.join(map(str, seeds))}; differences > 0 mean HSTNN is better; checkpoints chosen on the "
             f"{'validation' if mine and mine[0]['protocol'] == 'val' else 'test'} set)", "",
             f"| ratio | HSTNN | ffs | {pure} | snn | HSTNN − ffs (paired) | HSTNN − better pure (paired) |",
             "|---|---|---|---|---|---|---|"]
    per_seed = ["| ratio | HSTNN − ffs per seed | mean [95 % CI] | p | Holm p | Holm-adjusted CI | "
                "HSTNN − better pure per seed | mean [95 % CI] | p | Holm p | Holm-adjusted CI |", "|---" * 11 + "|"]
    tables = {}
    for r in ratios:
        g = per_ratio[r]
        lines.append(f"| {r} | {ms(g['hv'].values())} | {ms(g['fv'].values())} | "
                     f"{ms([p[0][0] for p in pures.values() if p[0]])} | {ms([p[1][0] for p in pures.values() if p[1]])} | "
                     f"{ms(g['d_ffs'], '+')} {seeds_of(g['d_ffs'])} | {ms(g['d_pure'], '+')} {seeds_of(g['d_pure'])} |")
        rows.append(dict(experiment=name, ratio=r, hstnn=ms(g["hv"].values()), ffs=ms(g["fv"].values()),
                         hstnn_minus_ffs=ms(g["d_ffs"]), hstnn_minus_best_pure=ms(g["d_pure"]),
                         hstnn_minus_ffs_ci95=interval(g["ffs"]), hstnn_minus_best_pure_ci95=interval(g["pure"])))
        per_seed.append(f"| {r} | {', '.join(f'{d:+.2f}' for d in g['d_ffs'])} | {interval(g['ffs'])} | "
                        f"{', '.join(f'{d:+.2f}' for d in g['d_pure'])} | {interval(g['pure'])} |")
    tables[f"replication-{name}-paired"] = "\n".join(lines[2:])
    tables[f"replication-{name}-per-seed"] = "\n".join(per_seed)
    lines += ["", f"Per seed ({', '.join(map(str, seeds))}) and the mean with its 95 % confidence interval (t, n − 1; "
              "n = the seeds with both runs finished), the paired t test's p, Holm's p and interval within the "
              "family (studies/families.py):", ""] + per_seed
    for suffix in MATCHED:
        table = f"replication-{name}-{'matched' if suffix == 'ffs-matched' else suffix}"
        if suffix not in budgets:  # no finished runs at that budget: its table is empty
            tables[table] = ""
            continue
        lines += ["", f"ffs at the matched budget ({name}-{suffix}: {MATCHED[suffix][1]}):", ""]
        start = len(lines)
        lines += [f"| ratio | HSTNN | ffs, {MATCHED[suffix][0]} | HSTNN − ffs per seed | mean [95 % CI] | p | Holm p | "
                  "Holm-adjusted CI |", "|---|---|---|---|---|---|---|---|"]
        for r in ratios:
            g = per_ratio[r].get(suffix)
            if g:
                lines.append(f"| {r} | {ms(per_ratio[r]['hv'].values())} | {ms(g['mv'].values())} | "
                             f"{', '.join(f'{x:+.2f}' for x in g['d'])} | {interval(g['test'])} |")
                rows.append({"experiment": name, "ratio": r, suffix.replace("-", "_"): ms(g["mv"].values()),
                             f"hstnn_minus_{suffix.replace('-', '_')}_ci95": interval(g["test"])})
        tables[table] = "\n".join(lines[start:])
    if has_random:
        lines += ["", f"Random-selection ablation ({name}-random-selection: the same Adaptation checkpoints, counts, "
                  "rule and Restoration; uniform random scores instead of the Hessian importance):", ""]
        start = len(lines)
        lines += ["| ratio | after Selection: Hessian | after Selection: random | Hessian − random (paired) | "
                  "after Restoration: Hessian | after Restoration: random | Hessian − random (paired) |",
                  "|---|---|---|---|---|---|---|"]
        per_seed = ["| ratio | after Selection: Hessian − random per seed | mean [95 % CI] | p | Holm p | Holm-adjusted CI | "
                    "after Restoration: Hessian − random per seed | mean [95 % CI] | p | Holm p | Holm-adjusted CI |",
                    "|---" * 11 + "|"]
        for r in ratios:
            cells, seed_cells = [], []
            for stage in ("selection", "restoration"):
                t = per_ratio[r][stage]
                cells += [ms(t["hk"].values()), ms(t["qk"].values()), f"{ms(t['d'], '+')} {seeds_of(t['d'])}"]
                seed_cells += [", ".join(f"{x:+.2f}" for x in t["d"]), interval(t)]
                rows.append(dict(experiment=name, ratio=r, stage=f"after {stage.capitalize()}",
                                 hessian=ms(t["hk"].values()), random=ms(t["qk"].values()), hessian_minus_random=ms(t["d"]),
                                 hessian_minus_random_ci95=interval(t)))
            lines.append(f"| {r} | " + " | ".join(cells) + " |")
            per_seed.append(f"| {r} | " + " | ".join(seed_cells) + " |")
        tables[f"replication-{name}-random"] = "\n".join(lines[start:])
        tables[f"replication-{name}-random-per-seed"] = "\n".join(per_seed)
        lines += ["", "Per seed and the mean with its 95 % confidence interval (t, n − 1), p, Holm's p and interval:",
                  ""] + per_seed
    tables[f"replication-{name}-findings"] = sentences(name, mine, ds)
    return "\n".join(lines) + "\n", tables


def sentences(name, tests, ds):
    """The generated findings of one experiment: one sentence per family and verdict."""
    unit = " perplexity" if ds == "ptb" else " points"
    test_set = tests and tests[0]["protocol"] == "test"
    out = [f"- Checkpoints of {name} were chosen on the test set: test-set selection, not evidence."] if test_set else []
    words = {"ffs": "HSTNN − ffs at the paper's budgets", "pure": "HSTNN − the better pure network",
             "ffs-matched": "HSTNN − ffs given as many epochs as Adaptation + Restoration",
             "ffs-macs": "HSTNN − ffs given as many training multiply-accumulates",
             "ffs-matched-lr": "HSTNN − ffs given as many epochs, on HSTNN's learning-rate schedule",
             "ffs-macs-lr": "HSTNN − ffs given as many training multiply-accumulates, on HSTNN's learning-rate schedule",
             "random-selection": "Hessian − random right after Selection",
             "random-restoration": "Hessian − random after Restoration"}
    for fam in dict.fromkeys(t["family"] for t in tests):
        what = words[fam[len(f"replication-{name}-"):]] + f" ({name}, > 0: the first better)"
        out.append(findings([(f"ratio {t['ratio']}", t) for t in tests if t["family"] == fam], what, unit=unit))
    return "\n".join(out)


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
    rows, tests, text, tables = [], [], ["# Paired comparisons (mean ± population std over seeds)\n"], {}
    for name in sorted(os.listdir(args.runs)) if os.path.isdir(args.runs) else []:
        folder = os.path.join(args.runs, name)
        if not name.endswith(NOT_EXPERIMENTS) and glob.glob(os.path.join(logdir(folder), "train_*.log")):
            section, found = compare(args.runs, name, rows, tests)
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
    with open(os.path.join(args.out, "tests.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for t in tests:
            w.writerow({k: "" if t.get(k) is None else (f"{t[k]:.10g}" if isinstance(t[k], float) else t[k]) for k in FIELDS})
    print("\n".join(text))
    probe = os.path.join(args.out, "selection-probe.md")  # selection_probe.py's tables, kept when it cannot rerun
    if os.path.exists(probe):
        with open(probe, encoding="utf-8") as f:
            tables["replication-selection-probe"] = "\n".join(f.read().strip().splitlines()[2:])
    cost = cost_table(args.runs)
    if cost:
        tables["replication-cost"] = cost
    if args.writeup:  # the tables that the write-up shows (it need not show every one)
        print(writeup.summary(args.writeup, writeup.fill(args.writeup, tables, only_shown=True)))


if __name__ == "__main__":
    main()
