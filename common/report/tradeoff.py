"""The trade-off against the SNN ratio: cost and robustness read from evaluate.py's JSON beside the logs, the
<stem>-tradeoff.csv and its four plots."""
import json
import math
import os
from dataclasses import dataclass, field

from common.report.logs import METRIC, Results, ratio_str, read_cell, result_name, row_stats


def read_json(path):
    """(object, problem): None and None when the file does not exist."""
    if not os.path.exists(path):
        return None, None
    try:
        with open(path) as f:
            return json.load(f), None
    except (OSError, ValueError) as e:
        return None, f"unreadable ({type(e).__name__})"


def well_formed(obj, kind):
    """Whether obj has the shape of evaluate.py's cost or robust JSON (what the report reads of it)."""
    if not isinstance(obj, dict) or obj.get("kind") != kind:
        return False
    if kind == "cost":
        return isinstance(obj.get("firing_rate"), dict)
    perturbations = obj.get("perturbations")
    return isinstance(perturbations, dict) and all(
        isinstance(p, dict) and isinstance(p.get("values"), list) and isinstance(p.get("strengths"), list)
        and all(isinstance(s, (int, float)) for s in p["strengths"]) for p in perturbations.values())


@dataclass
class Tradeoff:
    results: Results
    cost: dict = field(default_factory=dict)      # (model, ratio, seed) -> evaluate.py's cost JSON
    robust: dict = field(default_factory=dict)    # (model, ratio, seed) -> its robust JSON
    problems: list = field(default_factory=list)  # "path: why"
    convention: str = None                        # the cost convention of every cost JSON (None: none, or mixed)
    memory: str = None                            # their memory term, e.g. "sram 5 pJ" (None: none, or mixed)

    @property
    def keys(self):
        """(row type, model, ratio): the pure RNN, every ratio's ffs and HSTNN, the pure SNN, and the adapted
        (redundant) hybrid when it was evaluated."""
        exp = self.results.experiment
        keys = [(exp.rnn_type, exp.rnn_type, None)] + [(m, m, r) for r in exp.ratios for m in ("ffs", "hybrid")]
        keys.append(("snn", "snn", None))
        if any(k[:2] == ("hybrid", None) for k in list(self.cost) + list(self.robust)):
            keys.append(("adapted", "hybrid", None))
        return keys


def collect_tradeoff(res):
    """The cost and robustness results of an experiment's runs; None when evaluate.py was never run on it."""
    exp = res.experiment
    t = Tradeoff(res)
    models = [(exp.rnn_type, None), ("snn", None), ("hybrid", None)] + \
             [(m, r) for r in exp.ratios for m in ("ffs", "hybrid")]
    for model, ratio in models:
        for seed in exp.seeds:
            for kind, table in (("cost", t.cost), ("robust", t.robust)):
                path = os.path.join(exp.log_dir, f"{kind}_{result_name(exp, model, seed, ratio)}.json")
                obj, problem = read_json(path)
                if obj is not None and not well_formed(obj, kind):
                    obj, problem = None, f"not a {kind} result of evaluate.py"
                if problem:
                    t.problems.append(f"{os.path.join(exp.name, os.path.relpath(path, exp.folder))}: {problem}")
                elif obj is not None:
                    table[(model, ratio, seed)] = obj
    check_cost_settings(t)
    return t if (t.cost or t.robust or t.problems) else None


def check_cost_settings(t):
    """Sets t.convention and t.memory when every cost JSON shares them. Costs counted under different conventions
    (a JSON without one is kit-v1's) are never averaged or compared: t.convention stays None, every cost column
    is NA, and a problem line says which runs to count again; likewise for different memory terms."""
    exp = t.results.experiment
    number = lambda v: f"{v:g}" if isinstance(v, (int, float)) else str(v)
    for attr, setting in (("convention", lambda c: str(c.get("convention", "kit-v1"))),
                          ("memory", lambda c: c.get("memory") and (c["memory"] if c.get("memory_pj") is None
                                                                    else f"{c['memory']} {number(c['memory_pj'])} pJ"))):
        groups = {}
        for (model, ratio, seed), c in sorted(t.cost.items(), key=lambda kv: str(kv[0])):
            groups.setdefault(setting(c), []).append(result_name(exp, model, seed, ratio))
        if len(groups) == 1:
            setattr(t, attr, next(iter(groups)))
        elif len(groups) > 1:
            listed = "; ".join(f"{k or 'none'}: {', '.join(v)}" for k, v in sorted(groups.items(), key=lambda kv: str(kv[0])))
            what = "conventions" if attr == "convention" else "memory terms"
            t.problems.append(f"{exp.name}: cost results made under different {what} ({listed}), never averaged: "
                              f"their {'cost' if attr == 'convention' else 'memory'} columns are NA; count them again "
                              f"with one setting (evaluate.py cost --all --force --{attr} ...)")


def _mean(values):
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(values) / len(values) if values else None


def _std(values):
    m = _mean(values)
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return None if m is None else math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


COST_COLUMNS = ("macs", "acs", "energy_pj", "params", "state_bytes")
MEMORY_COLUMNS = ("weight_reads", "state_accesses", "energy_memory_pj", "energy_with_memory_pj")
BY_CONVENTION = ("macs", "acs", "energy_pj", "energy_pj_std") + MEMORY_COLUMNS  # CSV headers name the convention


def tradeoff_rows(t):
    """One dict per row type and ratio: the test metric (from the logs) and the means over seeds of the cost
    and robustness numbers (population std for the metric and the energy)."""
    exp = t.results.experiment
    rows = []
    for label, model, ratio in t.keys:
        if label == "adapted":
            cells = [read_cell(exp, "hybrid", s) for s in exp.seeds]
        else:
            cells = t.results.row(model, ratio)
        avg, squ, n = row_stats(cells, t.results.refused(model, ratio) if label != "adapted" else False)
        costs = [t.cost[k] for k in ((model, ratio, s) for s in exp.seeds) if k in t.cost]
        counted = costs if t.convention is not None else []  # mixed conventions: no cost number at all
        robust = [t.robust[k] for k in ((model, ratio, s) for s in exp.seeds) if k in t.robust]
        row = {"type": label, "ratio": "" if ratio is None else ratio_str(ratio), "metric_mean": avg,
               "metric_std": None if squ is None else math.sqrt(squ), "n_seeds": n,
               "n_cost": len(costs), "n_robust": len(robust)}
        for key in COST_COLUMNS:
            row[key] = _mean([c.get(key) for c in counted])
        row["energy_pj_std"] = _std([c.get("energy_pj") for c in counted]) if counted else None
        if t.memory and t.convention:
            row.update({key: _mean([c.get(key) for c in counted]) for key in MEMORY_COLUMNS})
        for layer in sorted({k for c in costs for k in c.get("firing_rate", {})}):
            row[f"fr_{layer}"] = _mean([c["firing_rate"].get(layer) for c in costs])
        by_column = {}
        for r in robust:
            for kind, p in r.get("perturbations", {}).items():
                for strength, value in zip(p.get("strengths", []), p.get("values", [])):
                    by_column.setdefault(f"{kind}@{strength:g}", []).append(value)
                by_column.setdefault(f"{kind}_auc", []).append(p.get("auc"))
        row.update({column: _mean(values) for column, values in by_column.items()})
        rows.append(row)
    return rows


def tradeoff_csv(rows, convention=None, memory=None):
    """Comma-separated, one header line; empty cells where a number is missing. The headers of the counted
    columns name the cost convention (and memory term): energy_pj[standard], energy_memory_pj[standard, sram 5 pJ]."""
    columns = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    rates = sorted(k for k in columns if k.startswith("fr_"))  # cost, firing rates, then robustness
    columns = [k for k in columns if "@" not in k and not k.endswith("_auc") and k not in rates] + rates + \
              [k for k in columns if "@" in k or k.endswith("_auc")]
    fmt = lambda v: "" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v))
    tag = lambda c: c if c not in BY_CONVENTION else \
        f"{c}[{convention or 'mixed'}" + (f"; {memory}]" if c in MEMORY_COLUMNS else "]")
    return "\n".join([",".join(tag(c) for c in columns)] +
                     [",".join(fmt(row.get(c)) for c in columns) for row in rows]) + "\n"


def pareto_front(points, lower_is_better):
    """The points (energy, metric) that no other point beats on both (less or equal energy, a metric at least
    as good, one of them strictly), sorted by energy."""
    good = (lambda a, b: a <= b) if lower_is_better else (lambda a, b: a >= b)
    front = [p for p in points if not any(q != p and q[0] <= p[0] and good(q[1], p[1]) and
                                          (q[0] < p[0] or q[1] != p[1]) for q in points)]
    return sorted(set(front))


def plot_tradeoff(t, rows, stem):
    """Four PNGs: the metric, the energy and the robustness (AUC per perturbation) against the SNN ratio for ffs
    and HSTNN with the pure RNN and SNN as horizontal references, and the metric-energy plane with the Pareto
    front of every evaluated model."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exp = t.results.experiment
    metric = METRIC.get(exp.dataset, "test accuracy (%)")
    lower = exp.dataset == "ptb"
    base = exp.rnn_type.upper()
    styles = {"ffs": ("ffs (hybrid from scratch)", "C0", "o"), "hybrid": ("HSTNN", "C1", "s")}
    refs = {exp.rnn_type: (f"pure {base}", "C2", "-."), "snn": ("pure SNN", "C3", ":")}
    title = f"{exp.stem} ({exp.name}), mean over seeds; cost: {t.convention or 'NA (mixed conventions)'} convention"

    def against_ratio(ax, column, err=None):
        for kind, (label, color, marker) in styles.items():
            pts = [(float(r["ratio"]), r[column], r.get(err) if err else None) for r in rows
                   if r["type"] == kind and r.get(column) is not None]
            if pts:
                ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] or 0 for p in pts] if err else None,
                            color=color, marker=marker, capsize=3, label=label)
        for r in rows:
            if r["type"] in refs and r.get(column) is not None:
                label, color, style = refs[r["type"]]
                ax.axhline(r[column], color=color, linestyle=style, label=label)
        ax.set_xlabel("SNN ratio")
        ax.grid(alpha=0.3)

    paths = []

    def legend(ax):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(f"{stem}-tradeoff-{name}.png", dpi=150)
        plt.close(fig)
        paths.append(f"{stem}-tradeoff-{name}.png")

    for name, column, err, ylabel in (("metric", "metric_mean", "metric_std", metric),
                                      ("energy", "energy_pj", "energy_pj_std", "energy per inference (pJ)")):
        fig, ax = plt.subplots(figsize=(7, 4))
        against_ratio(ax, column, err)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        legend(ax)
        save(fig, name)

    kinds = sorted({k[:-4] for r in rows for k in r if k.endswith("_auc")})
    fig, axes = plt.subplots(1, max(1, len(kinds)), figsize=(4.2 * max(1, len(kinds)), 3.8), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        against_ratio(ax, f"{kind}_auc")
        ax.set_title(f"{kind}: mean metric over the strengths", fontsize=8)
        ax.set_ylabel(metric, fontsize=8)
    legend(axes[0][0])
    fig.suptitle(title, fontsize=9)
    save(fig, "robustness")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    points = [(r["energy_pj"], r["metric_mean"]) for r in rows if r["energy_pj"] is not None and r["metric_mean"] is not None]
    for kind, (label, color, marker) in styles.items():
        mine = [r for r in rows if r["type"] == kind and r["energy_pj"] is not None and r["metric_mean"] is not None]
        ax.scatter([r["energy_pj"] for r in mine], [r["metric_mean"] for r in mine], color=color, marker=marker, label=label)
        for r in mine:
            ax.annotate(r["ratio"], (r["energy_pj"], r["metric_mean"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    for r in rows:
        if r["type"] in list(refs) + ["adapted"] and r["energy_pj"] is not None and r["metric_mean"] is not None:
            label, color, _ = refs.get(r["type"], ("adapted hybrid (before selection)", "C4", None))
            ax.scatter([r["energy_pj"]], [r["metric_mean"]], color=color, marker="*", s=120, label=label)
    front = pareto_front(points, lower)
    if front:
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="k", alpha=0.5, linestyle="--",
                label="Pareto front")
        ax.scatter([p[0] for p in front], [p[1] for p in front], facecolors="none", edgecolors="k", s=90)
    if any(p[0] > 0 for p in points):
        ax.set_xscale("log")
    ax.set_xlabel("energy per inference (pJ, log scale)")
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    legend(ax)
    save(fig, "pareto")
    return paths


def write_tradeoff(res, stem, plots=True):
    """<stem>-tradeoff.csv (and the four plots) when evaluate.py results exist; (written paths, problems)."""
    t = collect_tradeoff(res)
    if t is None:
        return [], []
    rows = tradeoff_rows(t)
    with open(f"{stem}-tradeoff.csv", "w") as fp:
        fp.write(tradeoff_csv(rows, t.convention, t.memory))
    written = [f"{stem}-tradeoff.csv"]
    if plots and (t.cost or t.robust):
        from common.report.plots import plot_firing_rates
        written += plot_tradeoff(t, rows, stem) + plot_firing_rates(res.experiment, rows, stem)
    return written, t.problems
