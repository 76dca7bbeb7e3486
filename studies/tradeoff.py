"""The paper's trade-off, per seed with intervals: accuracy (perplexity) beside inference cost and robustness for
every SNN ratio, and the trade-off claims' own verdict rows.

    python studies/tradeoff.py [--writeup results/REPLICATION.md]

Reads, beside each study's committed train logs, evaluate.py's cost_<name>.json (the `standard` convention;
with --memory also the memory term) and robust_<name>.json (the kit's perturbations: the metric averaged over
each perturbation's strengths, "auc"). Per setup (SETUPS) and model, per seed: the test metric (from the
completion record or the log), the MACs, ACs, energy and energy with memory per inference, and each
perturbation's AUC. The tests (Holm within the setup's family of studies/families.py), differences written so
that > 0 favours the first named side:
  slope        per seed, the least-squares slope of HSTNN's energy (and metric) against the SNN ratio
  vs ffs       HSTNN − ffs at each ratio: metric, energy, each robustness AUC
  vs random    (S-MNIST) the Hessian pick − the random pick after Restoration: metric and energy
On the Pareto front: HSTNN at a ratio is "beyond" ffs when its metric is better (supported) and its energy is not
detected higher; "behind" when ffs is better and not more expensive; else "on" it (no dominance detected).
Writes results/studies/tradeoff.md, tradeoff-tests.csv, tradeoff-verdicts.csv and tradeoff-pareto.png; where no
cost record exists it lists the evaluate.py commands that would produce them.
"""
import argparse
import csv
import math
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
from common.report import writeup  # noqa: E402
from common.report.inference import cells, CELL_HEADER, holm, paired, verdict  # noqa: E402
from common.report.tradeoff import read_json, well_formed  # noqa: E402
from common.runs import read_record  # noqa: E402
from studies.families import family  # noqa: E402

RESULTS = os.path.join(ROOT, "results", "studies")
# setup -> dataset prefix of the run names, whether lower metric is better, the family, and per model:
# (folder of committed logs under RESULTS, the model name in the run names, with or without ratio); repeats: per
# model, the folder of the study's first runs of the same flags (named by `first`), whose test numbers these repeat
SETUPS = {
    "S-MNIST, criteria study, width 60": dict(
        ds="mnist", lower=False, family="tradeoff-smnist", ratios=(0.25, 0.5, 0.75),
        models={"HSTNN": ("criteria/logs/tradeoff-w60-hessian", "hybrid", True),
                "random pick": ("criteria/logs/tradeoff-w60-random-0", "hybrid", True),
                "ffs": ("criteria/logs/tradeoff-w60", "ffs", True), "pure RNN": ("criteria/logs/tradeoff-w60", "rnn", False),
                "pure SNN": ("criteria/logs/tradeoff-w60", "snn", False)},
        repeats={"HSTNN": "criteria/logs/w60-hessian", "random pick": "criteria/logs/w60-random-0",
                 "ffs": "criteria/logs/w60"}, first="questions 2 and 3",
        run="`python studies/criteria/mprun-tradeoff.py`, then for each of its folders `python evaluate.py both "
            "--experiment studies/criteria/runs/<folder> --all --memory sram --threads 1 "
            "--script experiments/rnn-smnist-800-0.5-0.6/rnn-smnist.py --data studies/criteria/data`"),
    "PTB, replication study, width 30": dict(
        ds="ptb", lower=True, family="tradeoff-ptb", ratios=(0.1, 0.3, 0.5, 0.7, 0.9),
        models={"HSTNN": ("replication/rnn-ptb-real-tradeoff/logs", "hybrid", True),
                "ffs": ("replication/rnn-ptb-real-tradeoff/logs", "ffs", True),
                "pure RNN": ("replication/rnn-ptb-real-tradeoff/logs", "rnn", False),
                "pure SNN": ("replication/rnn-ptb-real-tradeoff/logs", "snn", False)},
        repeats={m: "replication/rnn-ptb-real/logs" for m in ("HSTNN", "ffs", "pure RNN", "pure SNN")},
        first="mprun-rnn-ptb.py",
        run="`python studies/replication/mprun-ptb-tradeoff.py`, then `python evaluate.py both --experiment "
            "studies/replication/runs/rnn-ptb-real-tradeoff --all --memory sram --threads 1 --script "
            "experiments/rnn-ptb-650-0.5-0.6/rnn-ptb.py --data studies/replication/data/penn-treebank --bptt 35 --batch_size 40` (the flags the models were tested "
            "with)"),
}
COST = ("macs", "acs", "energy_pj", "energy_with_memory_pj")
VERDICT_FIELDS = ("claim", "evidence", "protocol", "seeds", "verdict", "numbers")


def stem(setup, name, seed, ratio):
    """The run name in the file names: <dataset>_<model>_<seed>[_<ratio>]."""
    return f"{setup['ds']}_{name}_{seed}" + (f"_{ratio}" if ratio is not None else "")


def records(results, setup, seeds):
    """((model, ratio, seed) -> {metric, cost numbers, auc_<perturbation>}, problems): every finished run whose cost
    or robust JSON measured the checkpoint its completion record names (same SHA-256); the metric is the record's."""
    out, problems = {}, []
    for model, (folder, name, with_ratio) in setup["models"].items():
        for ratio in setup["ratios"] if with_ratio else (None,):
            for seed in seeds:
                run = stem(setup, name, seed, ratio)
                cost, _ = read_json(os.path.join(results, folder, f"cost_{run}.json"))
                robust, _ = read_json(os.path.join(results, folder, f"robust_{run}.json"))
                cost = cost if well_formed(cost, "cost") and cost.get("rule", cost.get("convention")) == "standard" else None
                robust = robust if well_formed(robust, "robust") else None
                if cost is None and robust is None:
                    continue
                record, problem = read_record(os.path.join(results, folder, f"train_{run}.log"))
                trained = ((record or {}).get("checkpoint") or {}).get("sha256")
                unbound = [k for k, v in (("cost", cost), ("robust", robust))
                           if v and (trained is None or v.get("checkpoint_sha256") != trained)]
                if problem or unbound:
                    problems.append(f"{folder}/train_{run}: " + (problem or f"its {' and '.join(unbound)} record measured "
                                                                  "another checkpoint than the run's") + ": left out")
                    continue
                row = {k: cost.get(k) for k in COST} if cost else {}
                row["convention"] = (cost or {}).get("convention")
                row["metric"] = record["value"]
                for kind, p in (robust or {}).get("perturbations", {}).items():
                    row[f"auc_{kind}"] = p["auc"]
                out[(model, ratio, seed)] = row
    return out, problems


def repeated(results, setup, recs):
    """How many of the runs behind `recs` repeat, to the printed digit, the test number of the study's first run of
    the same flags and seed (setup["repeats"]): (repeated, compared)."""
    same = compared = 0
    for (model, ratio, seed), row in recs.items():
        folder = setup.get("repeats", {}).get(model)
        if folder is None:
            continue
        run = stem(setup, setup["models"][model][1], seed, ratio)
        first, _ = read_record(os.path.join(results, folder, f"train_{run}.log"))
        if first is not None:
            compared += 1
            same += first["value"] == row["metric"]
    return same, compared


def slope(xs, ys):
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def tradeoff_tests(setup, recs, seeds):
    """The setup's tests, Holm-adjusted within its family."""
    fam, sign = setup["family"], -1 if setup["lower"] else 1
    family(fam)
    tests = []

    def add(what, a, b, ratio, diffs, claimed):
        t = paired(diffs) or {"n": 0}
        t.update(family=fam, what=what, a=a, b=b, ratio=ratio, claimed=claimed)
        tests.append(t)

    ratios = setup["ratios"]
    for column, claimed in (("energy_pj", -1), ("metric", -sign)):  # the paper: more SNN, cheaper and less accurate
        per_seed = [slope(ratios, [recs[("HSTNN", r, s)][column] for r in ratios]) for s in seeds
                    if all(recs.get(("HSTNN", r, s), {}).get(column) is not None for r in ratios)]
        add(f"slope of HSTNN's {column} against the SNN ratio", "HSTNN", "ratio", None, per_seed, claimed)
    columns = ["metric", "energy_pj"] + sorted({k for v in recs.values() for k in v if k.startswith("auc_")})
    for other, (_, _, with_ratio) in setup["models"].items():
        if other == "HSTNN":
            continue
        for r in ratios:
            key = lambda s: (other, r if with_ratio else None, s)
            for column in columns:
                s_ = [s for s in seeds if recs.get(("HSTNN", r, s), {}).get(column) is not None
                      and recs.get(key(s), {}).get(column) is not None]
                k = sign if column != "energy_pj" else 1
                add(column, "HSTNN", other, r, [k * (recs[("HSTNN", r, s)][column] - recs[key(s)][column]) for s in s_],
                    +1 if column != "energy_pj" else -1)
    holm(tests)
    for t in tests:
        t["verdict"] = verdict(t, t["claimed"])[0] if t["n"] else "untested"
    return tests


def pareto_words(tests, ratio, other):
    """'beyond' / 'behind' / 'on' the front, for HSTNN against `other` at `ratio`."""
    get = lambda c: next((t for t in tests if t["ratio"] == ratio and t["b"] == other and t["what"] == c), None)
    metric, energy = get("metric"), get("energy_pj")
    if not metric or not energy or not metric["n"] or not energy["n"]:
        return "untested"
    better, costlier = verdict(metric)[0], verdict(energy, -1)[0]
    if better == "supported" and costlier != "contradicted":
        return "beyond"
    if better == "contradicted" and costlier != "supported":
        return "behind"
    return "on (no dominance detected)"


def seeds_of(results, setup):
    """The seeds whose train logs are committed in any of the setup's folders."""
    found = set()
    for folder, _, _ in setup["models"].values():
        where = os.path.join(results, folder)
        for f in os.listdir(where) if os.path.isdir(where) else []:
            if f.startswith("train_") and f.endswith(".log") and f.count("_") >= 3:
                found.add(int(f[:-4].split("_")[3]))
    return sorted(found)


def interval(values):
    p = paired([v for v in values if v is not None])
    return "–" if p is None else f"{p['mean']:.4g}" if p["n"] < 2 else f"{p['mean']:.4g} [{p['lo']:.4g}, {p['hi']:.4g}]"


def setup_tables(name, setup, recs, tests, missing, problems, repeats):
    """The per-model table (mean [95 % t interval] over seeds), the tests, what is missing or left out, and how many
    runs repeat the study's first runs."""
    aucs = sorted({k for v in recs.values() for k in v if k.startswith("auc_")})
    columns = ("metric",) + COST + tuple(aucs)
    header = ["model", "ratio", "seeds", "metric", "MACs", "ACs", "energy (pJ)", "energy with memory (pJ)"] + \
        [f"robustness: {k[4:]} (mean metric over strengths)" for k in aucs]
    per = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for model, (_, _, with_ratio) in setup["models"].items():
        for r in setup["ratios"] if with_ratio else (None,):
            rows = [v for (m, rr, _), v in recs.items() if m == model and rr == r]
            per.append(f"| {model} | {'' if r is None else r} | {len(rows)} | " +
                       " | ".join(interval([x.get(c) for x in rows]) for c in columns) + " |")
    out = [f"**{name}** (mean [95 % t interval] over seeds; the metric is each run's test number)\n\n" + "\n".join(per)]
    if repeats[1]:
        out.append(f"{repeats[0]} of the {repeats[1]} runs evaluated here repeat the test number of the study's first run "
                   f"of the same flags and seed ({setup['first']})" + (": the same runs, trained again with their "
                   "checkpoints kept." if repeats[0] == repeats[1] else "."))
    if tests:
        out.append(f"| test | ratio | {CELL_HEADER} |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(
            f"| {t['a']} − {t['b']}: {t['what']} | {'' if t['ratio'] is None else t['ratio']} | {cells(t, 4)} |"
            for t in tests))
    if problems:
        out.append("Left out: " + "; ".join(problems) + ".")
    if missing:
        out.append(f"Missing: no cost or robustness record of {', '.join(missing)}. To produce them: {setup['run']} "
                   "(the checkpoints are not committed); the study's `run.py --aggregate-only` then copies the "
                   "cost_*.json and robust_*.json beside the committed logs.")
    return out


def said(t):
    """The verdict cell by the one rule: the word, and for 'not detected' the largest difference the interval allows."""
    word, largest = verdict(t, t["claimed"])
    return word if largest is None else f"{word}, no difference larger than {largest:.4g}"


def setup_verdicts(name, setup, tests, missing):
    """The trade-off claims' verdict rows for one setup."""
    untested = "untested: no cost or robustness record of " + ", ".join(missing) if missing else "untested"
    row = lambda claim, verdict, **kw: dict(dict(claim=claim, evidence=name, protocol="validation set" if tests else "",
                                                 seeds="", numbers=""), verdict=verdict, **kw)
    find = lambda what, b=None, ratio=None: next((t for t in tests if t["what"] == what and t["n"] and
                                                  (b is None or (t["b"], t["ratio"]) == (b, ratio))), None)
    rows = []
    energy = find("slope of HSTNN's energy_pj against the SNN ratio")
    metric = find("slope of HSTNN's metric against the SNN ratio")
    for claim, t in (("raising the SNN ratio lowers the inference energy (slope of HSTNN's energy against the ratio)", energy),
                     ("… at a cost in accuracy (slope of HSTNN's metric against the ratio; energy saved per point: the "
                      "ratio of the two slopes)", metric)):
        numbers = f"{t['mean']:+.4g} [{t['lo_holm']:+.4g}, {t['hi_holm']:+.4g}]" if t else ""
        rows.append(row(claim, said(t), seeds=t["n"], numbers=numbers) if t else dict(row(claim, untested), protocol=""))
    if energy and metric and metric["mean"]:
        rows[-1]["numbers"] += f"; energy per point of metric: {energy['mean'] / metric['mean']:+.4g} pJ"
    others = [o for o in setup["models"] if o not in ("HSTNN", "random pick")]
    fronts = "; ".join(f"ratio {r}: " + ", ".join(f"{pareto_words(tests, r, o)} {o}" for o in others) for r in setup["ratios"])
    rows.append(row("HSTNN is on or beyond the Pareto front (metric against energy) of ffs and the pure networks",
                    fronts if tests else untested))
    if "random pick" in setup["models"]:
        verdict_of = lambda what, r: (find(what, "random pick", r) or {}).get("verdict", "untested")
        moved = "; ".join(f"ratio {r}: metric {verdict_of('metric', r)}, energy {verdict_of('energy_pj', r)}"
                          for r in setup["ratios"])
        rows.append(row("the Hessian pick moves a network along the front (against the random pick: better metric, "
                        "lower energy)", moved if tests else untested))
    return rows


def summarize(results):
    """(tradeoff.md's text, the verdict rows, every test, the records per setup)."""
    tables, verdict_rows, all_tests, points = [], [], [], {}
    for name, setup in SETUPS.items():
        seeds = seeds_of(results, setup)
        recs, problems = records(results, setup, seeds)
        points[name] = recs
        names = sorted({str(v["convention"]) for v in recs.values() if v.get("convention")})
        if len(names) > 1:  # costs counted under different arithmetic or memory settings are never averaged
            for v in recs.values():
                v.update({k: None for k in COST})
            tables.append(f"{name}: cost records under different conventions ({'; '.join(names)}): cost columns left "
                          "empty; count them again with one setting (evaluate.py cost --all --force ...).")
        missing = sorted(m for m in setup["models"] if not any(k[0] == m for k in recs))
        tests = tradeoff_tests(setup, recs, seeds) if recs else []
        all_tests += [dict(t, setup=name) for t in tests]
        tables += setup_tables(name, setup, recs, tests, missing, problems, repeated(results, setup, recs))
        verdict_rows += setup_verdicts(name, setup, tests, missing)
    return "\n\n".join(tables), verdict_rows, all_tests, points


def plot(points, path):
    """Metric against energy, mean with 95 % t intervals on both axes, per model and ratio."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(points), figsize=(6 * len(points), 4.5), squeeze=False)
    for ax, (name, recs) in zip(axes[0], points.items()):
        for i, model in enumerate(sorted({k[0] for k in recs})):
            for ratio in sorted({k[1] for k in recs if k[0] == model}, key=lambda r: -1 if r is None else r):
                rows = [v for k, v in recs.items() if k[:2] == (model, ratio) and v.get("energy_pj") is not None]
                e, m = paired([v["energy_pj"] for v in rows]), paired([v["metric"] for v in rows])
                if not e:
                    continue
                half = lambda p: 0 if math.isnan(p["half"]) else p["half"]
                ax.errorbar(e["mean"], m["mean"], xerr=half(e), yerr=half(m), fmt="o", color=f"C{i}", capsize=3,
                            label=model if ratio == min((k[1] for k in recs if k[0] == model), key=lambda r: r or 0) else None)
                if ratio is not None:
                    ax.annotate(str(ratio), (e["mean"], m["mean"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
        if not ax.lines and not ax.collections:
            ax.text(0.5, 0.5, "no cost records yet", ha="center", va="center", transform=ax.transAxes, color="0.4")
        ax.set_xlabel("energy per inference (pJ, standard convention)")
        ax.set_ylabel("test metric")
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata={"Software": None})
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=RESULTS)
    p.add_argument("--writeup", default=os.path.join(ROOT, "results", "REPLICATION.md"))
    args = p.parse_args()
    text, verdict_rows, tests, points = summarize(args.results)
    with open(os.path.join(args.results, "tradeoff.md"), "w", encoding="utf-8") as f:
        f.write("# The trade-off: metric, cost and robustness per SNN ratio (generated by studies/tradeoff.py)\n\n" +
                text + "\n")
    test_fields = ("setup", "family", "a", "b", "what", "ratio", "n", "mean", "lo", "hi", "p", "p_holm", "lo_holm",
                   "hi_holm", "verdict")
    for name, rows, fields in (("tradeoff-verdicts.csv", verdict_rows, VERDICT_FIELDS), ("tradeoff-tests.csv", tests, test_fields)):
        with open(os.path.join(args.results, name), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
            w.writeheader()
            w.writerows({k: f"{v:.10g}" if isinstance(v, float) else "" if v is None else v for k, v in r.items()}
                        for r in rows)
    if any(any(v.get("energy_pj") is not None for v in recs.values()) for recs in points.values()):
        plot(points, os.path.join(args.results, "tradeoff-pareto.png"))
    print(text)
    if args.writeup:
        print(writeup.summary(args.writeup, writeup.fill(args.writeup, {"tradeoff": text})))


if __name__ == "__main__":
    main()
