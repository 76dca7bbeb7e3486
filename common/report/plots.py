"""The aggregator's figures: our numbers beside the authors' published ones (each on its own scale), the
learning curves of every run from its train log, and the firing rates per layer from evaluate.py's cost results."""
import math
import os
import re

from common.report.logs import METRIC, ratio_str, result_name, row_stats
from common.report.published import published

END_OF_EPOCH = re.compile(r"^\| end of epoch\s+(\d+) \|.*\| (\w+) (acc|ppl)\s+(\S+?)%?\s*$")
STYLES = {"ffs": ("ffs (hybrid from scratch)", "C0", "o"), "hybrid": ("HSTNN", "C1", "s")}
NO_RUNS = "no finished runs"


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def seeds_text(n):
    return "1 seed" if n == 1 else f"{n} seeds"


def save(fig, paths):
    """PNG and PDF without a creation date or software version: the same numbers give the same bytes."""
    fig.savefig(paths[0], dpi=150, bbox_inches="tight", metadata={"Software": None})
    for p in paths[1:]:
        fig.savefig(p, bbox_inches="tight", metadata={"Creator": None, "Producer": None, "CreationDate": None}
                    if p.endswith(".pdf") else {"Software": None})
    pyplot().close(fig)
    return paths


def say_empty(ax, text=NO_RUNS):
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=11, color="0.4")


# -- the metric against the SNN ratio: ours, and the authors' published numbers ----------------------------------
def draw_against_ratio(ax, points, refs):
    """points: {kind: [(ratio, mean, std)]} for ffs and HSTNN; refs: [(label, color, linestyle, value)]."""
    for kind, pts in points.items():
        label, color, marker = STYLES[kind]
        if pts:
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], color=color,
                        marker=marker, capsize=3, label=label)
    for label, color, style, value in refs:
        ax.axhline(value, color=color, linestyle=style, label=label)
    ax.set_xlabel("SNN ratio")
    ax.grid(alpha=0.3)


def experiment_figure(res):
    """The figure of plot_experiment (not saved): ours on the left; where the authors published this table,
    their numbers on the right on a scale of their own (at S-MNIST they sit at 98-99 %, far above ours)."""

    plt = pyplot()
    exp = res.experiment
    pub = published(exp.dataset, exp.rnn_type)
    fig, axes = plt.subplots(1, 2 if pub else 1, figsize=(12.5 if pub else 8, 4.2), squeeze=False)
    ours = axes[0][0]
    metric = METRIC.get(exp.dataset, "test accuracy (%)")
    pure = ((exp.rnn_type, f"pure {exp.rnn_type.upper()}", "C2", "-."), ("snn", "pure SNN", "C3", ":"))

    points = {}
    for kind in STYLES:
        stats = [(r, row_stats(res.row(kind, r), res.refused(kind, r))) for r in exp.ratios]
        points[kind] = [(r, avg, math.sqrt(squ)) for r, (avg, squ, _) in stats if avg is not None]
    refs = [(label, color, style, row_stats(res.row(model), res.refused(model))[0]) for model, label, color, style in pure]
    refs = [r for r in refs if r[3] is not None]
    draw_against_ratio(ours, points, refs)
    if not refs and not any(points.values()):
        say_empty(ours)
        ours.set_yticks([])
        if exp.ratios:
            ours.set_xlim(min(exp.ratios) - 0.05, max(exp.ratios) + 0.05)
    ours.set_ylabel(metric)
    ours.set_title("ours: " + ("1 seed" if len(exp.seeds) == 1 else f"mean ± std over {seeds_text(len(exp.seeds))}")
                   + ("" if pub else " (the authors published no numbers for this table)"), fontsize=9)

    if pub:
        theirs = axes[0][1]
        n = len(next(iter(pub["ffs"].values()))[0])
        points = {kind: sorted((float(label), avg, math.sqrt(squ)) for label, (_, avg, squ) in pub[kind].items()
                               if label not in ("rnn", "snn")) for kind in STYLES}
        refs = [(label, color, style, pub["ffs"][key][1])
                for (_, label, color, style), key in zip(pure, ("rnn", "snn"))]
        draw_against_ratio(theirs, points, refs)
        theirs.set_ylabel(metric)
        theirs.set_title(f"published by the authors: mean ± std over {seeds_text(n)} (own scale)", fontsize=9)
    labels = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            labels.setdefault(label, handle)
    if labels:
        fig.legend(list(labels.values()), list(labels), fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(f"{exp.stem} ({exp.name})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_experiment(res, path_stem):
    """<path_stem>.png and .pdf: the metric against the SNN ratio for ffs and HSTNN, the pure networks as
    horizontal lines; the authors' published numbers in a panel of their own."""
    return save(experiment_figure(res), [path_stem + ".png", path_stem + ".pdf"])


# -- learning curves -----------------------------------------------------------------------------------------
def read_curve(path):
    """([(epoch, value)], what) from the "| end of epoch" lines of a train log, what being e.g. "valid perplexity" or
    "test accuracy (%)"; ([], None) without any. Epochs logged again (a resumed or repeated run appends to the same
    log) replace the earlier ones from that epoch on."""
    points, what = [], None
    try:
        with open(path, errors="replace") as f:
            lines = list(f)
    except OSError:
        return [], None
    for m in filter(None, map(END_OF_EPOCH.match, lines)):
        try:
            epoch, value = int(m.group(1)), float(m.group(4))
        except ValueError:
            continue
        while points and points[-1][0] >= epoch:
            points.pop()
        points.append((epoch, value))
        what = f"{m.group(2)} " + ("accuracy (%)" if m.group(3) == "acc" else "perplexity")
    return points, what


def learning_curves(exp):
    """{(model, ratio, seed): (points, what)} of every train log of the experiment that logged epochs."""

    keys = [(exp.rnn_type, None), ("snn", None), ("hybrid", None)] + \
           [(m, r) for r in exp.ratios for m in ("ffs", "hybrid")]
    curves = {}
    for model, ratio in keys:
        for seed in exp.seeds:
            path = os.path.join(exp.log_dir, f"train_{result_name(exp, model, seed, ratio)}.log")
            points, what = read_curve(path)
            if points:
                curves[(model, ratio, seed)] = (points, what)
    return curves


def curves_figure(exp, curves):
    """Three panels sharing the y axis: the pure networks and Adaptation; ffs; HSTNN's Restoration. One line per
    run, coloured by model (first panel) or by SNN ratio."""

    plt = pyplot()
    from matplotlib.ticker import MaxNLocator
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), sharey=True)
    colors = plt.get_cmap("viridis")
    shade = {r: colors(i / max(1, len(exp.ratios) - 1) * 0.9) for i, r in enumerate(exp.ratios)}
    panels = [("pure networks and Adaptation", [(exp.rnn_type, None, f"pure {exp.rnn_type.upper()}", "C2"),
                                                ("snn", None, "pure SNN", "C3"),
                                                ("hybrid", None, "Adaptation (redundant hybrid)", "C4")]),
              ("ffs (hybrid from scratch), by SNN ratio", [("ffs", r, f"ratio {ratio_str(r)}", shade[r]) for r in exp.ratios]),
              ("HSTNN Restoration (after Selection), by SNN ratio",
               [("hybrid", r, f"ratio {ratio_str(r)}", shade[r]) for r in exp.ratios])]
    whats = sorted({what for _, what in curves.values()})
    for ax, (title, lines) in zip(axes, panels):
        last = 0
        for model, ratio, label, color in lines:
            runs = [curves[(model, ratio, s)][0] for s in exp.seeds if (model, ratio, s) in curves]
            for i, points in enumerate(runs):  # one legend entry per model or ratio, not per seed
                ax.plot([p[0] for p in points], [p[1] for p in points], color=color, linewidth=1, alpha=0.85,
                        marker="o" if len(points) < 30 else None, markersize=2.5, label=None if i else label)
                last = max(last, points[-1][0])
        if last:
            ax.legend(fontsize=7)
            if last < 10:
                ax.set_xlim(0.5, last + 0.5)
        else:
            say_empty(ax, "no epochs logged")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("evaluation (every --test_interval iterations)" if exp.dataset == "dvsGesture" else "epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(" / ".join(whats) or "metric")
    if exp.dataset == "ptb" and curves:
        axes[0].set_yscale("log")
    fig.suptitle(f"{exp.stem} ({exp.name}): learning curves, every run ({seeds_text(len(exp.seeds))}, "
                 "one line per seed), from the train logs", fontsize=10)
    fig.tight_layout()
    return fig


def plot_learning_curves(res, path_stem):
    """<path_stem>-curves.png: the per-epoch selection metric of every run, so under-training shows."""
    exp = res.experiment
    return save(curves_figure(exp, learning_curves(exp)), [path_stem + "-curves.png"])


# -- firing rates per layer --------------------------------------------------------------------------------------
def firing_rate_figure(exp, rows):
    """One panel per spiking layer: the mean firing rate against the SNN ratio for ffs and HSTNN, the pure SNN and
    the adapted hybrid as horizontal lines; None when no cost result holds a firing rate."""
    layers = sorted({k[3:] for row in rows for k, v in row.items() if k.startswith("fr_") and isinstance(v, (int, float))})
    if not layers:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(layers), figsize=(4.5 * len(layers) + 1.5, 3.8), squeeze=False, sharey=True)
    refs = {"snn": ("pure SNN", "C3", ":"), "adapted": ("adapted hybrid (before selection)", "C4", "--")}
    for ax, layer in zip(axes[0], layers):
        key = f"fr_{layer}"
        value = lambda row: row.get(key) if isinstance(row.get(key), (int, float)) else None
        points = {kind: [(float(r["ratio"]), value(r), 0) for r in rows if r["type"] == kind and value(r) is not None]
                  for kind in STYLES}
        lines = [refs[r["type"]] + (value(r),) for r in rows if r["type"] in refs and value(r) is not None]
        draw_against_ratio(ax, points, lines)
        ax.set_title(layer, fontsize=9)
        ax.set_ylim(bottom=0)
    axes[0][0].set_ylabel("firing rate (spikes per neuron and step)")
    labels = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            labels.setdefault(label, handle)
    fig.legend(list(labels.values()), list(labels), fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(f"{exp.stem} ({exp.name}): firing rate per layer (evaluate.py cost), mean over seeds", fontsize=10)
    fig.tight_layout()
    return fig


def plot_firing_rates(exp, rows, stem):
    """<stem>-tradeoff-firing-rates.png beside the other trade-off plots; [] when there is nothing to draw."""
    fig = firing_rate_figure(exp, rows)
    return [] if fig is None else save(fig, [f"{stem}-tradeoff-firing-rates.png"])
