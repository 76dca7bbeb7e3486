"""Every table, plot, test and generated sentence of the selection-criteria study, from the logs and records that
run.py copies to results/studies/criteria/logs/, from no-retraining.csv and (the oracle's cost) bench/ORACLE.json.

Only finished runs count: the log ends with its final test block and, where a completion record
(log/train_<name>.json) exists, it says "finished". Statistics (common/report/inference.py): per-seed paired
differences (the criteria of a seed share one Adaptation), mean, 95 % t interval, two-sided paired t p, the
seeds on each side, the minimum detectable difference at 80 % power; every ratio on its own (the ratios of a
seed share one Adaptation and are never pooled); Holm's correction within each family of studies/families.py,
with the Holm-adjusted interval; one verdict rule on the adjusted interval. random = the mean of a seed's draws.
"""
import argparse
import csv
import json
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
from common.report.inference import CELL_HEADER, cells, findings, holm, paired, protocol, verdict  # noqa: E402
from common.report.profile import read_profile_csv  # noqa: E402
from common.runs import unfinished_by_record  # noqa: E402
from studies.families import family  # noqa: E402

RATIOS = (0.25, 0.5, 0.75)
Q2 = ("hessian", "random", "taylor", "magnitude", "trace", "reversed")
Q1 = ("random", "reversed", "magnitude", "trace", "taylor", "oracle")
POPULATIONS = ("rnn1", "rnn2", "snn1", "snn2")
IMPROVING = set()  # the finished runs whose best validation epoch was their last
PROTOCOL = {}      # (folder, model, seed, ratio) -> the set that chose the run's checkpoint ("val" / "test")
TEST_LINE = re.compile(r"^\| Performance on Test Set \| test loss ([-\d.naif]+) \| test acc ([-\d.naif]+)$")
FIELDS = ("family", "question", "width", "ratio", "a", "b", "n", "mean", "sd", "lo", "hi", "p", "m", "rank",
          "p_holm", "level", "lo_holm", "hi_holm", "pos", "neg", "mdd", "protocol", "verdict")


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
    """(folder, model, seed, ratio) -> final test accuracy of every finished run (ratio None: Adaptation)."""
    out = {}
    for folder in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
        where = os.path.join(logs, folder, "log") if os.path.isdir(os.path.join(logs, folder, "log")) else \
            os.path.join(logs, folder)  # a run folder (its log/) or a folder of copied logs
        for f in sorted(os.listdir(where)) if os.path.isdir(where) else []:
            m = re.match(r"^train_mnist_(hybrid|ffs)_(\d+)(?:_([\d.]+))?\.log$", f)
            if m:
                acc = final_accuracy(os.path.join(where, f))
                if acc is not None:
                    key = (folder, m.group(1), int(m.group(2)), float(m.group(3)) if m.group(3) else None)
                    out[key] = acc
                    PROTOCOL[key] = protocol(os.path.join(where, f))
                    if still_improving(os.path.join(where, f)):
                        IMPROVING.add(key)
    return out


def protocols(keys):
    """'val', 'test' or 'mixed (...)' for the runs behind a test ('' when none is known)."""
    found = sorted({PROTOCOL[k] for k in keys if k in PROTOCOL})
    return found[0] if len(found) == 1 else (f"mixed ({', '.join(found)})" if found else "")


def test(name, question, a, b, diffs, keys, width=None, ratio=None):
    """One test of family `name` (declared in studies/families.py): the paired statistics and what it compares."""
    family(name)
    t = paired(diffs) or {"n": 0}
    t.update(family=name, question=question, width=width, ratio=ratio, a=a, b=b, protocol=protocols(keys))
    return t


def ms(v, digits=2):
    return f"{statistics.fmean(v):.{digits}f} ± {statistics.stdev(v):.{digits}f} ({len(v)})" if len(v) > 1 else \
        (f"{v[0]:.{digits}f} (1)" if v else "none finished")


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


def tests_q2(runs, acc):
    out = []
    for r in RATIOS:
        hs = acc.get(("hessian", r), {})
        for c in Q2[1:]:
            other = acc.get((c, r), {})
            common = sorted(set(hs) & set(other))
            folders = [f"w60-{c}"] if c != "random" else [f"w60-random-{d}" for d in range(3)]
            keys = [(f, "hybrid", s, r) for f in folders + ["w60-hessian"] for s in common]
            out.append(test("criteria-q2", 2, "hessian", c, [hs[s] - other[s] for s in common], keys, 60, r))
    return out


def table_q2(acc, draws, tests):
    lines = ["## Question 2: criteria after Restoration (S-MNIST RNN, width 60, --protocol val)", "",
             "Test accuracy (%) of the restored network, one Adaptation per seed shared by every criterion. "
             "Paired difference = Hessian − criterion, per seed; 95 % t interval; p: paired t test; Holm: within the "
             "family criteria-q2; MDD: minimum detectable difference at 80 % power. random: the mean of the seed's "
             "finished draws (draws per seed: "
             + ", ".join(f"{r}: {sorted(set(len(v) for (rr, _), v in draws.items() if rr == r))}" for r in RATIOS)
             + ").", ""]
    table = [f"| ratio | criterion | accuracy, mean ± sd (n) | Hessian − criterion: {CELL_HEADER} |",
             "|---|---|---|---|---|---|---|---|---|"]
    by = {(t["ratio"], t["b"]): t for t in tests}
    for r in RATIOS:
        for c in Q2:
            ms_ = ms(list(acc.get((c, r), {}).values()))
            table.append(f"| {r} | hessian (reference) | {ms_} | | | | | | |" if c == "hessian" else
                         f"| {r} | {c} | {ms_} | {cells(by.get((r, c)))} |")
    return lines + table + [""], {"criteria-q2": "\n".join(table)}


WIDE, WIDE_CRITERIA = 800, ("hessian", "random-0", "reversed")  # question 2 at the paper's width, ratio 0.5


def q2_wide(runs):
    """Question 2 at width 800: criterion -> seed -> accuracy after Restoration at ratio 0.5."""
    acc = defaultdict(dict)
    for (folder, model, seed, ratio), a in runs.items():
        if model == "hybrid" and ratio == 0.5 and folder.startswith(f"w{WIDE}-"):
            acc[folder[len(f"w{WIDE}-"):]][seed] = a
    return acc


def tests_q2_wide(acc):
    hs, out = acc.get("hessian", {}), []
    for c in WIDE_CRITERIA[1:]:
        common = sorted(set(hs) & set(acc.get(c, {})))
        if len(common) < 2:  # no paired test before two seeds have both
            continue
        keys = [(f, "hybrid", s, 0.5) for f in (f"w{WIDE}-{c}", f"w{WIDE}-hessian") for s in common]
        out.append(test("criteria-q2-w800", 2, "hessian", c, [hs[s] - acc[c][s] for s in common], keys, WIDE, 0.5))
    return out


def table_q2_wide(acc, tests):
    table = [f"| criterion | accuracy, mean ± sd (n) | Hessian − criterion: {CELL_HEADER} |",
             "|---|---|---|---|---|---|---|---|"]
    by = {t["b"]: t for t in tests}
    for c in WIDE_CRITERIA:
        row = ms(list(acc.get(c, {}).values()))
        table.append(f"| hessian (reference) | {row} | | | | | | |" if c == "hessian" else f"| {c} | {row} | {cells(by.get(c))} |")
    lines = [f"## Question 2 at width {WIDE} (the paper's width), ratio 0.5", "",
             "As question 2, at 800 neurons per type and layer; random: draw 0 only; Holm within criteria-q2-w800.", ""]
    return lines + table + [""], {"criteria-q2-w800": "\n".join(table)}


Q3_FFS = {"w60": "original", "w60-ffs-matched": "matched", "w60-ffs-macs": "macs"}  # folder -> ffs budget
Q3_NAMES = {"original": "ffs (original budget)", "matched": "ffs (matched epochs)", "macs": "ffs (matched MACs)"}
Q3_BUDGET = {name: budget for budget, name in Q3_NAMES.items()}


def q3_ffs(runs):
    ffs = {name: defaultdict(dict) for name in Q3_FFS.values()}
    for (folder, model, seed, ratio), a in runs.items():
        if model == "ffs" and folder in Q3_FFS:
            ffs[Q3_FFS[folder]][ratio][seed] = a
    return ffs


def tests_q3(runs, acc):
    ffs = q3_ffs(runs)
    randoms = ("w60-random-0", "w60-random-1", "w60-random-2")
    out = []
    for r in RATIOS:
        hessian, random = acc.get(("hessian", r), {}), acc.get(("random", r), {})
        pairs = [("HSTNN", "original", hessian, ("w60-hessian", "w60")),
                 ("HSTNN", "matched", hessian, ("w60-hessian", "w60-ffs-matched")),
                 ("HSTNN with random selection", "matched", random, randoms + ("w60-ffs-matched",)),
                 ("ffs (matched epochs)", "original", ffs["matched"][r], ("w60-ffs-matched", "w60"))]
        if ffs["macs"][r]:  # once its runs exist (mprun-ffs-macs.py)
            pairs += [("HSTNN", "macs", hessian, ("w60-hessian", "w60-ffs-macs")),
                      ("HSTNN with random selection", "macs", random, randoms + ("w60-ffs-macs",))]
        for a, budget, base, folders in pairs:
            other = ffs[budget][r]
            common = sorted(set(base) & set(other))
            keys = [(f, m, s, r) for f in folders for m in ("hybrid", "ffs") for s in common]
            out.append(test("criteria-q3", 3, a, Q3_NAMES[budget], [base[s] - other[s] for s in common], keys, 60, r))
    return out


def table_q3(runs, tests):
    ffs = q3_ffs(runs)
    lines = ["## Question 3: HSTNN against a hybrid trained from scratch (ffs), width 60", "",
             "ffs has the final shape from the start. Original budget: as many epochs as Adaptation; matched epochs: "
             "as many as Adaptation + Restoration; matched MACs: as many epochs as make its training "
             "multiply-accumulates HSTNN's (the budget table). Paired by seed (the same seed, not the same network). "
             "Difference = first − second; Holm within criteria-q3.", ""]
    table = [f"| ratio | comparison | second: accuracy, mean ± sd (n) | {CELL_HEADER} |",
             "|---|---|---|---|---|---|---|---|---|"]
    for t in tests:
        other = ffs[Q3_BUDGET[t["b"]]][t["ratio"]]
        table.append(f"| {t['ratio']} | {t['a']} − {t['b']} | {ms(list(other.values()))} | {cells(t)} |")
    table.append("")
    for label, keys in (("ffs, original budget", [k for k in runs if k[0] == "w60" and k[1] == "ffs"]),
                        ("ffs, matched epochs", [k for k in runs if k[0] == "w60-ffs-matched"]),
                        ("ffs, matched MACs", [k for k in runs if k[0] == "w60-ffs-macs"]),
                        ("HSTNN Restoration (Hessian)", [k for k in runs if k[0] == "w60-hessian"])):
        table.append(f"- {label}: {sum(k in IMPROVING for k in keys)} of {len(keys)} finished runs had their best "
                     "validation accuracy at their last epoch (still improving when stopped).")
    return lines + table + [""], {"criteria-q3": "\n".join(table)}


def read_q1(path):
    """(width, criterion, ratio, metric) -> seed -> value, with 'random' the mean of a seed's draws."""
    data = defaultdict(dict)
    with open(path) as f:
        for r in csv.DictReader(f):
            data[(int(r["width"]), r["criterion"], r["ratio"], r["metric"])][int(r["seed"])] = float(r["value"])
    for w in sorted({k[0] for k in data}):
        for ratio in map(str, RATIOS):
            per_seed = defaultdict(list)
            for (ww, c, rr, m), seeds in list(data.items()):
                if ww == w and c.startswith("random-") and rr == ratio and m == "test_acc":
                    for s, v in seeds.items():
                        per_seed[s].append(v)
            data[(w, "random", ratio, "test_acc")] = {s: statistics.fmean(v) for s, v in per_seed.items()}
    return data


def spearman_per_seed(data, w, criterion, metric, pops=POPULATIONS):
    """Per seed, the mean over `pops` of a Spearman correlation (a constant population, nan, left out)."""
    seeds = set.intersection(*[set(data.get((w, criterion, "", metric + k), {})) for k in pops])
    per_seed = [[data[(w, criterion, "", metric + k)][s] for k in pops] for s in sorted(seeds)]
    return [statistics.fmean(x for x in xs if not math.isnan(x)) for xs in per_seed if any(not math.isnan(x) for x in xs)]


def q1_family(criterion):
    return "criteria-q1-random" if criterion == "random" else "criteria-q1-criteria"


def tests_q1(data, adaptation_protocol):
    """Every Q1 test: Hessian − each criterion and the oracle's pick − random per width and ratio (test accuracy
    right after Selection), and the Hessian importance's Spearman correlation with the oracle against 0."""
    acc = lambda w, c, ratio: data.get((w, c, str(ratio), "test_acc"), {})
    out = []
    for w in sorted({k[0] for k in data}):
        for ratio in RATIOS:
            hs = acc(w, "hessian", ratio)
            for c in Q1:
                other = acc(w, c, ratio)
                diffs = [hs[s] - other[s] for s in sorted(set(hs) & set(other))]
                out.append(test(q1_family(c), 1, "hessian", c, diffs, [], w, ratio))
            oracle, random = acc(w, "oracle", ratio), acc(w, "random", ratio)
            out.append(test("criteria-q1-oracle-pick", 1, "oracle", "random",
                            [oracle[s] - random[s] for s in sorted(set(oracle) & set(random))], [], w, ratio))
        out.append(test("criteria-q1-agreement", 1, "Spearman(hessian, oracle)", "0",
                        spearman_per_seed(data, w, "hessian", "spearman_oracle_"), [], w))
        for pop in POPULATIONS:
            values = [v for v in data.get((w, "hessian", "", "spearman_oracle_" + pop), {}).values() if not math.isnan(v)]
            out.append(test("criteria-q1-agreement-by-population", 1, f"Spearman(hessian, oracle), {pop}", "0", values,
                            [], w))
    for t in out:  # the checkpoints right after Selection are the Adaptation's
        t["protocol"] = adaptation_protocol.get(t["width"], "")
    return out


def table_q1(data, tests):
    widths = sorted({k[0] for k in data})
    crit = ("hessian", "random", "reversed", "magnitude", "trace", "taylor", "oracle")
    lines = ["## Question 1: every criterion right after Selection, no retraining (S-MNIST RNN)", "",
             "Test accuracy (%) of the redundant network shrunk to the kept neurons, before any retraining: mean ± "
             "sd over seeds (n). random: the mean of the seed's draws. The oracle is each neuron's loss increase "
             "when it alone is removed, measured on the 1,000 held-out (validation) images; accuracies are on the "
             "1,000 test images.", ""]
    accuracy = ["| width | ratio | redundant | " + " | ".join(crit) + " |", "|---" * (len(crit) + 3) + "|"]
    for w in widths:
        for ratio in map(str, RATIOS):
            red = list(data.get((w, "redundant", "", "test_acc"), {}).values())
            cells_ = [ms(list(data.get((w, c, ratio, "test_acc"), {}).values()), 1) for c in crit]
            accuracy.append(f"| {w} | {ratio} | {ms(red, 1)} | " + " | ".join(c.replace("none finished", "–") for c in cells_) + " |")
    by = {(t["family"], t["width"], t["ratio"], t["b"], t["a"]): t for t in tests}
    long = ["", "Paired differences per seed, no retraining: Hessian − criterion (test accuracy points); Holm within "
            "criteria-q1-random (random) and criteria-q1-criteria (the others).", "",
            f"| width | ratio | criterion | {CELL_HEADER} |", "|---|---|---|---|---|---|---|---|---|"]
    compact = [f"| width | ratio | comparison | {CELL_HEADER} |", "|---|---|---|---|---|---|---|---|---|"]
    for w in widths:
        for ratio in RATIOS:
            for c in Q1:
                t = by[(q1_family(c), w, ratio, c, "hessian")]
                long.append(f"| {w} | {ratio} | {c} | {cells(t)} |")
                if c in ("random", "reversed", "oracle"):
                    compact.append(f"| {w} | {ratio} | Hessian − {c if c != 'oracle' else 'oracle pick'} | {cells(t)} |")
    oracle = [f"| width | ratio | oracle pick − random: {CELL_HEADER} |", "|---|---|---|---|---|---|---|---|"]
    for w in widths:
        for ratio in RATIOS:
            oracle.append(f"| {w} | {ratio} | {cells(by[('criteria-q1-oracle-pick', w, ratio, 'random', 'oracle')])} |")
    spear = {}
    spearman = ["| width | hessian | trace | magnitude | taylor | random | probe halves (hessian) |",
                "|---|---|---|---|---|---|---|"]
    for w in widths:
        row = []
        for c, metric in (("hessian", "spearman_oracle_"), ("trace", "spearman_oracle_"),
                          ("magnitude", "spearman_oracle_"), ("taylor", "spearman_oracle_"),
                          ("random-0", "spearman_oracle_"), ("hessian", "spearman_probe_halves_")):
            p = spear[(w, c, metric)] = paired(spearman_per_seed(data, w, c, metric))
            row.append("–" if p is None else (f"{p['mean']:.2f} (1)" if p["n"] == 1 else
                                              f"{p['mean']:.2f} [{p['lo']:.2f}, {p['hi']:.2f}] ({p['n']})"))
        spearman.append(f"| {w} | " + " | ".join(row) + " |")
    agreement = ["| width | population | Spearman(hessian, oracle): mean [95 % CI] | p | Holm p | Holm-adjusted CI | "
                 "positive / negative of n |", "|---|---|---|---|---|---|---|"]
    for w in widths:
        for pop, name, a in [("mean of the four", "criteria-q1-agreement", "Spearman(hessian, oracle)")] + \
                [(k, "criteria-q1-agreement-by-population", f"Spearman(hessian, oracle), {k}") for k in POPULATIONS]:
            t = by.get((name, w, None, "0", a))
            c = cells(t).split(" | ")
            agreement.append(f"| {w} | {pop} | " + " | ".join(c[:5]) + " |")
    lines += accuracy + long + ["", "The oracle's own pick against random, right after Selection (Holm within "
                                "criteria-q1-oracle-pick):", ""] + oracle + \
        ["", "Spearman rank correlation with the oracle (per population, then the mean of the four populations per "
         "seed; mean and 95 % CI over seeds). 'probe halves': the importance from the first half of the Hutchinson "
         "probes against that from the second (how reproducible the Hessian score is).", ""] + spearman + \
        ["", "The Hessian importance's agreement with the oracle per population (Holm within "
         "criteria-q1-agreement and criteria-q1-agreement-by-population):", ""] + agreement
    blocks = {"criteria-q1-accuracy": "\n".join(accuracy), "criteria-q1-paired": "\n".join(compact),
              "criteria-q1-spearman": "\n".join(spearman), "criteria-q1-agreement": "\n".join(agreement),
              "criteria-q1-oracle": "\n".join(oracle)}
    return lines + [""], spear, blocks


def table_cost(out, logs):
    """CPU and wall minutes per part from the launcher's profile: every attempt (failed, interrupted and resumed
    ones included) of each job whose run counts; and no-retraining.csv's timing rows."""
    parts = defaultdict(lambda: [set(), 0, 0.0, 0.0])  # part -> jobs, attempts, wall s, cpu s
    for r in read_profile_csv(os.path.join(out, "profile.csv")):
        folder, job = r["experiment"], r["job"]
        if not os.path.exists(os.path.join(logs, folder, f"train_{job.split('_', 1)[1]}.log")):
            continue  # not a counted run (unfinished, or replaced since)
        width = folder.split("-")[0][1:]
        if folder.startswith("tradeoff-"):
            part = "Trade-off: the width-60 runs again, checkpoints kept (mprun-tradeoff.py), width 60"
        elif r["mode"] == "train2":
            part = f"Q2: Selection + Restoration, every criterion run there, width {width}"
        elif folder == "w60-ffs-macs":
            part = "Q3: ffs at the matched-MAC budget, width 60"
        elif r["model"] == "ffs":
            part = "Q3: ffs at the original and matched-epoch budgets, width 60"
        else:
            part = f"Adaptation, width {width}"
        p = parts[part]
        p[0].add((folder, job))
        p[1] += 1
        p[2] += float(r["wall_s"] or 0)
        p[3] += float(r["cpu_s"] or 0)
    path = os.path.join(out, "no-retraining.csv")
    if os.path.exists(path):
        with open(path) as f:
            for r in csv.DictReader(f):
                if r["criterion"] == "timing":
                    p = parts[f"Q1: no retraining, width {r['width']}"]
                    if r["metric"] == "wall_s":
                        p[0].add(r["seed"])
                        p[1] += 1
                    p[2 if r["metric"] == "wall_s" else 3] += float(r["value"])
    lines = ["## Cost", "", "One job at a time on a shared 2-core machine (2-core CPU, no GPU), each job on one thread under "
             "`nice`; wall time includes waiting for the CPU. Every attempt of a counted job is summed (failed, "
             "interrupted and resumed attempts included).", ""]
    table = ["| part | jobs (Q1: seeds) | attempts | wall minutes | CPU minutes |", "|---|---|---|---|---|"]
    order = lambda part: (part.split(",")[0], int(re.sub(r"\D", "", part.split("width")[-1]) or 0))
    for part in sorted(parts, key=order):
        jobs, n, wall, cpu = parts[part]
        table.append(f"| {part} | {len(jobs)} | {n} | {wall / 60:.1f} | {cpu / 60:.1f} |")
    total = [sum(len(v[0]) for v in parts.values())] + [sum(v[i] for v in parts.values()) for i in (1, 2, 3)]
    table.append(f"| all | {total[0]} | {total[1]} | {total[2] / 60:.1f} | {total[3] / 60:.1f} |")
    return lines + table + [""], {"criteria-cost": "\n".join(table)}


def table_oracle_cost(data, bench):
    """The oracle's CPU seconds per scored neuron: the study's own (no-retraining.csv: its score_table CPU time over
    the neurons it scored, per seed, batched) and bench/oracle.py's one-at-a-time and batched paths (`bench`, its
    JSON, when there)."""
    measured = {}
    if os.path.exists(bench):
        with open(bench) as f:
            rows = json.load(f)["rows"]
        for w in sorted({r["width"] for r in rows}):
            mine = [r for r in rows if r["width"] == w]
            n = sum(r["neurons"] for r in mine)
            measured[w] = [sum(r[k] * r["neurons"] for r in mine) / n for k in ("one_at_a_time_s", "batched_s")]
    table = ["| width | seeds | neurons scored per seed | study: CPU s per scored neuron, mean [min, max] over seeds | "
             "bench: one at a time (s) | bench: batched (s) | bench: speed-up |", "|---|---|---|---|---|---|---|"]
    for w in sorted({k[0] for k in data} | set(measured)):
        cpu = data.get((w, "oracle", "", "cpu_s"), {})
        scored = {s: sum(data.get((w, "oracle", "", f"scored_{k}"), {}).get(s, 0) for k in POPULATIONS) for s in cpu}
        per = [cpu[s] / scored[s] for s in cpu if scored[s]]
        study = f"{statistics.fmean(per):.3f} [{min(per):.3f}, {max(per):.3f}]" if per else "–"
        counts = sorted({int(v) for v in scored.values()})
        one, batched = measured.get(w, (None, None))
        bench_cells = [f"{one:.3f}", f"{batched:.3f}", f"{one / batched:.2f}×"] if one else ["–"] * 3
        table.append(f"| {w} | {len(per)} | {', '.join(map(str, counts)) or '–'} | {study} | " + " | ".join(bench_cells) + " |")
    return ["## The oracle's cost", ""] + table + [""], {"criteria-oracle-cost": "\n".join(table)}


def sentences(tests):
    """The write-up's generated findings, one block per question: every sentence filled from the tests."""
    def pick(name, **match):
        return [t for t in tests if t["family"] == name and all(t.get(k) == v for k, v in match.items())]
    label = lambda t: f"width {t['width']}, ratio {t['ratio']}" if t["ratio"] is not None else f"width {t['width']}"
    q1 = [findings([(f"width {t['width']}", t) for t in pick("criteria-q1-agreement")],
                   "Spearman(Hessian importance, oracle), mean of the four populations")]
    for pop in POPULATIONS:
        q1.append(findings([(label(t), t) for t in pick("criteria-q1-agreement-by-population") if t["a"].endswith(pop)],
                           f"Spearman(Hessian importance, oracle) in population {pop}"))
    for c in ("random", "reversed", "oracle"):
        q1.append(findings([(label(t), t) for t in pick(q1_family(c), b=c)],
                           f"Hessian pick − {c if c != 'oracle' else 'the oracle pick'} right after Selection (points)"))
    q1.append(findings([(label(t), t) for t in pick("criteria-q1-oracle-pick")],
                       "the oracle's own pick − random right after Selection (points)"))
    q2 = [findings([(f"ratio {t['ratio']}", t) for t in pick("criteria-q2", b=c)],
                   f"Hessian − {c} after Restoration (points)") for c in Q2[1:]]
    q2 += [findings([(f"width {t['width']}, ratio {t['ratio']}", t) for t in pick("criteria-q2-w800", b=c)],
                    f"Hessian − {c} after Restoration at width {WIDE} (points)") for c in WIDE_CRITERIA[1:]]
    q3 = [findings([(f"ratio {t['ratio']}", t) for t in pick("criteria-q3", a=a, b=b)], f"{a} − {b} (points)")
          for a, b in dict.fromkeys((t["a"], t["b"]) for t in pick("criteria-q3"))]
    return {"criteria-q1-findings": "\n".join(q1), "criteria-q2-findings": "\n".join(q2),
            "criteria-q3-findings": "\n".join(q3)}


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
    fig.savefig(os.path.join(out, "criteria.png"), dpi=120, metadata={"Software": None})
    plt.close(fig)


def csv_value(v):
    return "" if v is None else (f"{v:.10g}" if isinstance(v, float) else str(v))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(ROOT, "results", "studies", "criteria"))
    p.add_argument("--logs", default=None, help="folder of per-run-folder logs (default: OUT/logs)")
    p.add_argument("--writeup", default=os.path.join(ROOT, "results", "REPLICATION.md"),
                   help="the write-up whose generated tables are replaced ('' to leave it alone)")
    p.add_argument("--oracle-bench", default=os.path.join(ROOT, "bench", "ORACLE.json"),
                   help="bench/oracle.py's measurement of the oracle's two paths (optional)")
    args = p.parse_args()
    logs = args.logs or os.path.join(args.out, "logs")
    runs = read_runs(logs)
    acc, draws = q2(runs)
    adaptation = {int(k[0][1:]): PROTOCOL[k] for k in runs if k[1] == "hybrid" and k[3] is None and re.fullmatch(r"w\d+", k[0])}
    q1_path = os.path.join(args.out, "no-retraining.csv")
    data = read_q1(q1_path) if os.path.exists(q1_path) else {}
    t1 = tests_q1(data, adaptation)
    wide = q2_wide(runs)
    t2, t2w, t3 = tests_q2(runs, acc), tests_q2_wide(wide), tests_q3(runs, acc)
    tests = t1 + t2 + t2w + t3
    for name in dict.fromkeys(t["family"] for t in tests):
        holm([t for t in tests if t["family"] == name])
    for t in tests:
        t["verdict"] = verdict(t, family(t["family"])[3])[0]
    l1, spear, b1 = table_q1(data, t1) if data else (["## Question 1", "", "Not run yet (no no-retraining.csv).", ""], {}, {})
    l2, b2 = table_q2(acc, draws, t2)
    l2w, b2w = table_q2_wide(wide, t2w)
    l3, b3 = table_q3(runs, t3)
    cost, b4 = table_cost(args.out, logs)
    oracle_cost, b5 = table_oracle_cost(data, args.oracle_bench)
    os.makedirs(args.out, exist_ok=True)
    text = ["# The selection-criteria study: tables", "",
            f"Finished runs counted: {len(runs)}. Tests: {len(tests)} in {len(set(t['family'] for t in tests))} families "
            "(studies/families.py), Holm within each. Generated by studies/criteria/analysis.py from logs/, "
            "no-retraining.csv and bench/ORACLE.json.", ""] + l1 + l2 + l2w + l3 + cost + oracle_cost
    with open(os.path.join(args.out, "tables.md"), "w") as f:
        f.write("\n".join(text) + "\n")
    with open(os.path.join(args.out, "paired-differences.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for t in tests:
            w.writerow({k: csv_value(t.get(k)) for k in FIELDS})
    if spear:
        plot(acc, spear, args.out)
    print("\n".join(text))
    if args.writeup:
        blocks = {**b1, **b2, **b2w, **b3, **b4, **b5, **sentences(tests)}
        print(writeup.summary(args.writeup, writeup.fill(args.writeup, blocks)))


if __name__ == "__main__":
    main()
