"""The tables of one experiment: the CSV and LaTeX of the authors' latex-code-gen.py (byte for byte), the
mean ± std summary beside the published numbers, the list of problems, and write_report, which writes all of
them (and the plots and the trade-off) for a list of experiments."""
import csv
import io
import math
import os

from common.report.logs import MISSING, METRIC, collect, ratio_label, ratio_str, row_stats
from common.report.published import published, published_mean_std
from common.report.tradeoff import write_tradeoff


def csv_line(label, cells, refused=False):
    avg, squ, _ = row_stats(cells, refused)
    parts = [label] + [c.shown if c.value is None else str(round(c.value, 2)) for c in cells]
    parts += [MISSING, MISSING] if avg is None else [str(round(avg, 2)), str(round(squ, 2))]
    return ", ".join(parts) + "\n"


def csv_text(res, kind):
    """The content of <ds>-<TYPE>-<kind>.csv (kind ffs or hybrid), without print()'s final newline."""
    exp = res.experiment
    text = "type, " + ", ".join(str(s) for s in exp.seeds) + ", avg, squ\n"
    text += csv_line(exp.rnn_type, res.row(exp.rnn_type), res.refused(exp.rnn_type))
    for r in exp.ratios:
        text += csv_line(ratio_label(r), res.row(kind, r), res.refused(kind, r))
    return text + csv_line("snn", res.row("snn"), res.refused("snn"))


def notes_rows(res):
    """One row per marked cell, refused average and table note: (table, type, seed, shown, marker, note)."""
    exp, marks = res.experiment, res.markers()
    rows = []
    keys = [(exp.rnn_type, None, ("ffs", "hybrid"))] + [(m, r, (m,)) for r in exp.ratios for m in ("ffs", "hybrid")] \
        + [("snn", None, ("ffs", "hybrid"))]
    for model, ratio, tables in keys:
        label = model if ratio is None else ratio_label(ratio)
        for table in tables:
            for seed, c in zip(exp.seeds, res.row(model, ratio)):
                rows += [(table, label, str(seed), c.shown, marks[n], n) for n in c.notes]
            rows += [(table, label, "avg", MISSING, marks[n], n) for n in res.row_notes.get((model, ratio), [])]
    return rows + [("", "", "", "", "", n) for n in res.notes]


def notes_csv(res):
    """<ds>-<TYPE>-notes.csv: what the markers of the tables say (None for a table without any, whose CSVs are
    then exactly the authors')."""
    rows = notes_rows(res)
    if not rows:
        return None
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(("table", "type", "seed", "cell", "marker", "note"))
    w.writerows(rows)
    return out.getvalue()


def latex_escape(text):
    for a, b in (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("$", "\\$"), ("#", "\\#"),
                 ("_", "\\_"), ("{", "\\{"), ("}", "\\}"), ("~", "\\textasciitilde{}"), ("^", "\\^{}")):
        text = text.replace(a, b)
    return text


def latex_text(res, bold="hstnn"):
    """The authors' LaTeX table (at least 11 columns as theirs), with every seed. bold="hstnn" bolds every HSTNN
    cell, as the authors did; bold="better" bolds, per seed and ratio, the better of ffs and HSTNN (none on a tie)."""
    exp, marks = res.experiment, res.markers()
    lower = exp.dataset == "ptb"

    def sup(notes):
        return "$^{" + ",".join(marks[n] for n in notes) + "}$" if notes else ""

    raw = lambda c: c.shown + sup(c.notes)

    def pair(f, h):
        if bold == "hstnn":
            return raw(f) + " & \\textbf{" + h.shown + "}" + sup(h.notes) + " "
        better = None if f.value is None or h.value is None or f.value == h.value else \
            ("h" if (h.value < f.value) == lower else "f")
        mark = lambda c, side: "\\textbf{" + c.shown + "}" + sup(c.notes) if better == side else raw(c)
        return mark(f, "f") + " & " + mark(h, "h") + " "
    cols = "|c" * max(11, 1 + 2 * len(exp.seeds)) + "|"
    text = "\\begin{table}[] \n\\begin{tabular}{" + cols + "} \n\\hline \n     "
    text += "".join("& \\multicolumn{2}{c|}{%s}  " % s for s in exp.seeds) + "\\\\ \\hline \n"

    def pure_line(model):
        return model + sup(res.row_notes.get((model, None), [])) + "".join(" & \\multicolumn{2}{c|}{" + raw(c) + "} " for c in res.row(model)) + " \\\\ \\hline \n"

    text += pure_line(exp.rnn_type)
    for r in exp.ratios:
        row_notes = res.row_notes.get(("ffs", r), []) + res.row_notes.get(("hybrid", r), [])
        text += ratio_label(r) + sup(list(dict.fromkeys(row_notes))) + "".join(" & " + pair(f, h) for f, h in zip(res.row("ffs", r), res.row("hybrid", r))) \
            + " \\\\ \\hline \n"
    text += pure_line("snn")
    text += "\\end{tabular}\n"
    notes = [f"$^{{{letter}}}$ {latex_escape(note)}" for note, letter in marks.items()]
    if not exp.legacy:  # a legacy tree's table stays the authors' (its notes are in the summary and notes CSV)
        notes += [latex_escape(note) for note in res.notes]
    if notes:
        text += "\\par\\footnotesize\n" + "".join(line + "\\\\\n" for line in notes)
    return text + "\\end{table}\n"


# -- the compact table and the list of problems ------------------------------------------------------
def mean_std(cells, total, refused=None, marks=None):
    """mean ± std over the seeds with a number (n= when fewer than total; diverged runs left out and said so),
    NA when there is none or the average is refused, then the markers of the cells and the row."""
    avg, squ, n = row_stats(cells, bool(refused))
    notes = [x for c in cells for x in c.notes] + (refused or [])
    sup = " [" + ",".join(dict.fromkeys(marks[x] for x in notes)) + "]" if notes and marks else ""
    diverged = sum(1 for c in cells if c.diverged)
    if avg is None:
        text = "div" if diverged and not n and not refused else MISSING
    else:
        text = f"{avg:.2f} ± {math.sqrt(squ):.2f}"
        if n < total or diverged:
            text += f" (n={n}" + (f"; {diverged} diverged, left out" if diverged else "") + ")"
    return text + sup


def summary_text(res):
    """Markdown: mean ± population std over seeds, ours and (where published) the authors'."""
    exp = res.experiment
    pub = published(exp.dataset, exp.rnn_type)
    n = len(exp.seeds)
    head = f"### {exp.stem} ({exp.name}): {METRIC.get(exp.dataset, 'test accuracy (%)')}, " \
           f"mean ± std over seeds {', '.join(map(str, exp.seeds))}\n\n"
    head += "| type | ffs | HSTNN |" + (" ffs (published) | HSTNN (published) |" if pub else "") + "\n"
    head += "|---|---|---|" + ("---|---|" if pub else "") + "\n"
    rows, marks = [], res.markers()
    keys = [(exp.rnn_type, (exp.rnn_type, None), (exp.rnn_type, None))] + \
        [(ratio_label(r), ("ffs", r), ("hybrid", r)) for r in exp.ratios] + [("snn", ("snn", None), ("snn", None))]
    for label, ffs, hyb in keys:
        line = f"| {label} | {mean_std(res.row(*ffs), n, res.row_notes.get(ffs), marks)} | " \
               f"{mean_std(res.row(*hyb), n, res.row_notes.get(hyb), marks)} |"
        if pub:
            line += " " + " | ".join(published_mean_std(pub, k, label) for k in ("ffs", "hybrid")) + " |"
        rows.append(line)
    text = head + "\n".join(rows) + "\n"
    notes = [f"- [{letter}] {note}" for note, letter in marks.items()] + [f"- {note}" for note in res.notes]
    return text + ("\nNotes:\n" + "\n".join(notes) + "\n" if notes else "")


def problems_text(results):
    where = lambda res, c: os.path.join(res.experiment.name, os.path.relpath(c.log, res.experiment.folder))
    lines = [f"- {where(res, c)}: {c.problem}" for res in results for c in res.problems() if not c.diverged]
    diverged = [f"- {where(res, c)}: {c.problem}" for res in results for c in res.problems() if c.diverged]
    partial = []
    for res in results:
        exp = res.experiment
        for model, ratio in sorted({(m, r) for m, r, _ in res.cells}, key=lambda k: (k[0], k[1] or 0)):
            _, _, n = row_stats(res.row(model, ratio))
            what = model if ratio is None else f"{model} {ratio_label(ratio)}"
            if res.refused(model, ratio):
                partial.append(f"- {exp.name} {what}: {'; '.join(res.row_notes[(model, ratio)])}")
            elif 0 < n < len(exp.seeds):
                partial.append(f"- {exp.name} {what}: avg and squ over {n} of {len(exp.seeds)} seeds")
    if not lines and not partial and not diverged:
        return "All runs complete.\n"
    text = f"Runs without a result ({len(lines)}), shown as {MISSING}:\n" + "\n".join(lines) + "\n" if lines else ""
    if diverged:
        text += ("\n" if text else "") + f"Runs that diverged ({len(diverged)}), shown as div and left out of the " \
            "averages:\n" + "\n".join(diverged) + "\n"
    return text + ("\nRows averaged over fewer seeds, or not averaged:\n" + "\n".join(partial) + "\n" if partial else "")


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
        notes = notes_csv(res)
        if notes is not None:
            with open(f"{stem}-notes.csv", "w") as fp:
                fp.write(notes)
            written.append(f"{stem}-notes.csv")
        elif os.path.exists(f"{stem}-notes.csv"):  # the notes of an earlier, marked table
            os.remove(f"{stem}-notes.csv")
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
