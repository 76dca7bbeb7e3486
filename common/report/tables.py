"""The tables of one experiment: the CSV and LaTeX of the authors' latex-code-gen.py (byte for byte), the
mean ± std summary beside the published numbers, the list of problems, and write_report, which writes all of
them (and the plots and the trade-off) for a list of experiments."""
import math
import os

from common.report.logs import MISSING, METRIC, collect, ratio_label, ratio_str, row_stats
from common.report.published import published, published_mean_std
from common.report.tradeoff import write_tradeoff


def csv_line(label, cells):
    avg, squ, _ = row_stats(cells)
    parts = [label] + [MISSING if c.value is None else str(round(c.value, 2)) for c in cells]
    parts += [MISSING, MISSING] if avg is None else [str(round(avg, 2)), str(round(squ, 2))]
    return ", ".join(parts) + "\n"


def csv_text(res, kind):
    """The content of <ds>-<TYPE>-<kind>.csv (kind ffs or hybrid), without print()'s final newline."""
    exp = res.experiment
    text = "type, " + ", ".join(str(s) for s in exp.seeds) + ", avg, squ\n"
    text += csv_line(exp.rnn_type, res.row(exp.rnn_type))
    for r in exp.ratios:
        text += csv_line(ratio_label(r), res.row(kind, r))
    return text + csv_line("snn", res.row("snn"))


def latex_text(res, bold="hstnn"):
    """The authors' LaTeX table (at least 11 columns as theirs), with every seed. bold="hstnn" bolds every HSTNN
    cell, as the authors did; bold="better" bolds, per seed and ratio, the better of ffs and HSTNN (none on a tie)."""
    exp, raw = res.experiment, (lambda c: MISSING if c.raw is None else c.raw)
    lower = exp.dataset == "ptb"

    def pair(f, h):
        if bold == "hstnn":
            return raw(f) + " & \\textbf{" + raw(h) + "} "
        better = None if f.value is None or h.value is None or f.value == h.value else \
            ("h" if (h.value < f.value) == lower else "f")
        mark = lambda c, side: "\\textbf{" + raw(c) + "}" if better == side else raw(c)
        return mark(f, "f") + " & " + mark(h, "h") + " "
    cols = "|c" * max(11, 1 + 2 * len(exp.seeds)) + "|"
    text = "\\begin{table}[] \n\\begin{tabular}{" + cols + "} \n\\hline \n     "
    text += "".join("& \\multicolumn{2}{c|}{%s}  " % s for s in exp.seeds) + "\\\\ \\hline \n"

    def pure_line(model):
        return model + "".join(" & \\multicolumn{2}{c|}{" + raw(c) + "} " for c in res.row(model)) + " \\\\ \\hline \n"

    text += pure_line(exp.rnn_type)
    for r in exp.ratios:
        text += ratio_label(r) + "".join(" & " + pair(f, h) for f, h in zip(res.row("ffs", r), res.row("hybrid", r))) \
            + " \\\\ \\hline \n"
    text += pure_line("snn")
    return text + "\\end{tabular}\n\\end{table}\n"


# -- the compact table and the list of problems ------------------------------------------------------
def mean_std(cells, total):
    avg, squ, n = row_stats(cells)
    if avg is None:
        return MISSING
    return f"{avg:.2f} ± {math.sqrt(squ):.2f}" + ("" if n == total else f" (n={n})")


def summary_text(res):
    """Markdown: mean ± population std over seeds, ours and (where published) the authors'."""
    exp = res.experiment
    pub = published(exp.dataset, exp.rnn_type)
    n = len(exp.seeds)
    head = f"### {exp.stem} ({exp.name}): {METRIC.get(exp.dataset, 'test accuracy (%)')}, " \
           f"mean ± std over seeds {', '.join(map(str, exp.seeds))}\n\n"
    head += "| type | ffs | HSTNN |" + (" ffs (published) | HSTNN (published) |" if pub else "") + "\n"
    head += "|---|---|---|" + ("---|---|" if pub else "") + "\n"
    rows = []
    for label, ffs, hyb in ([(exp.rnn_type, res.row(exp.rnn_type), res.row(exp.rnn_type))]
                            + [(ratio_label(r), res.row("ffs", r), res.row("hybrid", r)) for r in exp.ratios]
                            + [("snn", res.row("snn"), res.row("snn"))]):
        line = f"| {label} | {mean_std(ffs, n)} | {mean_std(hyb, n)} |"
        if pub:
            line += " " + " | ".join(published_mean_std(pub, k, label) for k in ("ffs", "hybrid")) + " |"
        rows.append(line)
    return head + "\n".join(rows) + "\n"


def problems_text(results):
    lines = [f"- {os.path.join(res.experiment.name, os.path.relpath(c.log, res.experiment.folder))}: {c.problem}"
             for res in results for c in res.problems()]
    partial = []
    for res in results:
        exp = res.experiment
        for model, ratio in sorted({(m, r) for m, r, _ in res.cells}, key=lambda k: (k[0], k[1] or 0)):
            _, _, n = row_stats(res.row(model, ratio))
            if 0 < n < len(exp.seeds):
                what = model if ratio is None else f"{model} {ratio_label(ratio)}"
                partial.append(f"- {exp.name} {what}: avg and squ over {n} of {len(exp.seeds)} seeds")
    if not lines and not partial:
        return "All runs complete.\n"
    text = f"Runs without a result ({len(lines)}), shown as {MISSING}:\n" + "\n".join(lines) + "\n"
    return text + ("\nRows averaged over fewer seeds:\n" + "\n".join(partial) + "\n" if partial else "")


# -- plots ------------------------------------------------------------------------------------------
def plot(res, path_stem):
    """<path_stem>.png and .pdf (ours, and the authors' published numbers in a panel on their own scale) and
    <path_stem>-curves.png (the learning curves of every run): see plots.py."""
    from common.report import plots
    return plots.plot_experiment(res, path_stem) + plots.plot_learning_curves(res, path_stem)


# -- everything for a list of experiments -------------------------------------------------------------
def write_report(experiments, out_dir, plots=True, echo=print, bold="hstnn"):
    """Write every experiment's CSVs, .tex, summary and plots under out_dir; return the Results.
    bold: which cells the .tex bolds (latex_text)."""
    all_results = []
    for exp in experiments:
        res = collect(exp)
        all_results.append(res)
        folder = os.path.join(out_dir, exp.out_subdir)
        os.makedirs(folder, exist_ok=True)
        stem = os.path.join(folder, exp.stem)
        for kind in ("ffs", "hybrid"):
            with open(f"{stem}-{kind}.csv", "w") as fp:
                print(csv_text(res, kind), file=fp)
        latex, summary = latex_text(res, bold), summary_text(res)
        with open(f"{stem}.tex", "w") as fp:
            fp.write(latex)
        with open(f"{stem}-summary.md", "w") as fp:
            fp.write(summary + "\n" + problems_text([res]))
        written = [f"{stem}-ffs.csv", f"{stem}-hybrid.csv", f"{stem}.tex", f"{stem}-summary.md"]
        if plots:
            written += plot(res, stem)
        tradeoff, bad = write_tradeoff(res, stem, plots)
        written += tradeoff
        logs = f"{exp.log_kind}_ logs" + (" (else train_)" if exp.train_fallback else "") + \
            (", legacy: no records" if exp.legacy else "")
        echo(f"== {exp.name}: {exp.stem}, {logs}, seeds {exp.seeds}, "
             f"ratios {[ratio_str(r) for r in exp.ratios]}")
        echo(latex)
        echo(summary)
        if bad:
            echo("Trade-off results that could not be read (left out):\n" + "\n".join(f"- {b}" for b in bad))
        echo(f"wrote {', '.join(os.path.basename(p) for p in written)} in {os.path.abspath(folder)}\n")
    return all_results
