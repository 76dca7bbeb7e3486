"""latex-code-gen.py and common/report/ on synthetic logs: the authors' CSV byte for byte, LaTeX layout,
missing/unfinished/garbled runs, discovery, plots and the profile table. The synthetic logs have no completion
records, as the authors' own logs: they are read with --legacy-logs (tests/test_faults.py covers records)."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from common.report import logs as R, published as P  # noqa: E402
from conftest import aggregate  # noqa: E402


def final_block(dataset, value):
    if dataset == "ptb":
        return "=" * 89 + f"\n| Performance on Test Set | test loss  4.63 | test ppl {value:>8}\n" + "=" * 89 + "\n"
    if dataset == "dvsGesture":
        return "=" * 83 + f"\n| Performance on Test Set | test acc {value}\n" + "=" * 83 + "\n"
    return "=" * 83 + f"\n| Performance on Test Set | test loss 0.04000 | test acc {value}\n" + "=" * 83 + "\n"


def write_log(folder, kind, name, body):
    os.makedirs(os.path.join(folder, "log"), exist_ok=True)
    with open(os.path.join(folder, "log", f"{kind}_{name}.log"), "w") as f:
        f.write("| end of epoch   1 | time: 31.00s | valid loss  5.00 | valid ppl   150.00\n" + body)


def logged(dataset, value):
    """The number as the script would log it: DVS accuracies are k/288 printed with 5 decimals."""
    if dataset == "ptb":
        return f"{value:.2f}"
    if dataset == "dvsGesture":
        k = next(k for k in range(289) if round(k * 100 / 288, 2) == value)
        return f"{k * 100 / 288:.5f}"
    return f"{value:.5f}"


def logs_from_published(folder, dataset, kind):
    pub = P.published(dataset)
    for table in ("ffs", "hybrid"):
        seeds = [int(s) for s in P.PUBLISHED_CSV[(dataset, table)].split("\n")[0].split(", ")[1:-2]]
        for label, (values, _, _) in pub[table].items():
            for seed, v in zip(seeds, values):
                name = f"{dataset}_{label}_{seed}" if label in ("rnn", "snn") else f"{dataset}_{table}_{seed}_{float(label)}"
                write_log(folder, kind, name, final_block(dataset, logged(dataset, v)))


@pytest.mark.parametrize("folder, dataset, kind", [("rnn-ptb-650-0.5-0.6", "ptb", "test"),
                                                    ("rnn-smnist-800-0.5-0.6", "mnist", "test"),
                                                    ("cnn-dvs-ges-0.5-0.6", "dvsGesture", "train")])
def test_published_csvs_are_reproduced_byte_for_byte(tmp_path, folder, dataset, kind):
    exp = tmp_path / folder
    logs_from_published(str(exp), dataset, kind)
    assert aggregate("--legacy-logs", "--experiment", exp, "--out", tmp_path / "out", "--no-plots",
                     "--profile-csv", tmp_path / "none.csv") == 0
    for table in ("ffs", "hybrid"):
        written = (tmp_path / "out" / f"{dataset}-RNN-{table}.csv").read_bytes()
        assert written == (P.PUBLISHED_CSV[(dataset, table)] + "\n").encode()  # print(csv, file=fp)


def original_csv_rules(label, values):
    """The authors' compute_avg_squ, written out again: rounded cells, mean of the unrounded values,
    population variance."""
    avg = sum(values) / len(values)
    squ = sum((v - avg) ** 2 for v in values) / len(values)
    return ", ".join([label] + [str(round(v, 2)) for v in values] + [str(round(avg, 2)), str(round(squ, 2))]) + "\n"


def make_ptb(folder, seeds=(1111, 2222), ratios=(0.1, 0.5)):
    values = {}
    for i, seed in enumerate(seeds):
        for model, ratio, base in [("rnn", None, 103.071), ("snn", None, 122.734)] + \
                                  [(m, r, b) for r in ratios for m, b in (("ffs", 101.0 + r), ("hybrid", 97.3 + r))]:
            v = round(base + 0.617 * i + (ratio or 0), 2)
            name = f"ptb_{model}_{seed}" + ("" if ratio is None else f"_{float(ratio)}")
            write_log(folder, "test", name, final_block("ptb", f"{v:.2f}"))
            values[(model, ratio, seed)] = v
    return values


def test_csv_rules_and_latex_layout(tmp_path):
    exp = tmp_path / "rnn-ptb-650-0.5-0.6"
    seeds = (1111, 2222, 3333, 4444)
    v = make_ptb(str(exp), seeds)
    assert aggregate("--legacy-logs", "--experiment", exp, "--out", tmp_path / "out", "--no-plots") == 0
    expected = "type, 1111, 2222, 3333, 4444, avg, squ\n" + original_csv_rules("rnn", [v[("rnn", None, s)] for s in seeds])
    expected += original_csv_rules("0.1", [v[("ffs", 0.1, s)] for s in seeds])
    expected += original_csv_rules("0.50", [v[("ffs", 0.5, s)] for s in seeds])
    expected += original_csv_rules("snn", [v[("snn", None, s)] for s in seeds]) + "\n"
    assert (tmp_path / "out" / "ptb-RNN-ffs.csv").read_text() == expected

    tex = (tmp_path / "out" / "ptb-RNN.tex").read_text().split("\n")
    assert tex[:3] == ["\\begin{table}[] ", "\\begin{tabular}{|c|c|c|c|c|c|c|c|c|c|c|} ", "\\hline "]
    assert tex[3] == "     & \\multicolumn{2}{c|}{1111}  & \\multicolumn{2}{c|}{2222}  & \\multicolumn{2}{c|}{3333}  " \
                     "& \\multicolumn{2}{c|}{4444}  \\\\ \\hline "
    r = v[("rnn", None, 1111)]
    assert tex[4].startswith(f"rnn & \\multicolumn{{2}}{{c|}}{{{r:.2f}}}  & ") and tex[4].endswith("}  \\\\ \\hline ")
    f, h = v[("ffs", 0.5, 1111)], v[("hybrid", 0.5, 1111)]
    assert tex[6].startswith(f"0.50 & {f:.2f} & \\textbf{{{h:.2f}}}  & ")
    assert tex[-3:] == ["\\end{tabular}", "\\end{table}", ""]

    # --bold better: per seed, the better of ffs and HSTNN (lower perplexity), whichever it is, none on a tie
    for seed, value in ((2222, v[("ffs", 0.5, 2222)] + 3), (3333, v[("ffs", 0.5, 3333)])):  # HSTNN worse; a tie
        write_log(str(exp), "test", f"ptb_hybrid_{seed}_0.5", final_block("ptb", f"{value:.2f}"))
        v[("hybrid", 0.5, seed)] = value
    assert aggregate("--legacy-logs", "--experiment", exp, "--out", tmp_path / "better", "--no-plots", "--bold", "better") == 0
    row = (tmp_path / "better" / "ptb-RNN.tex").read_text().split("\n")[6]
    cells = row.split(" \\\\")[0].split(" & ")[1:]
    assert row.startswith("0.50 & ") and len(cells) == 2 * len(seeds)
    for i, s in enumerate(seeds):
        f, h = v[("ffs", 0.5, s)], v[("hybrid", 0.5, s)]
        want = {1111: (f"{f:.2f}", f"\\textbf{{{h:.2f}}}"), 2222: (f"\\textbf{{{f:.2f}}}", f"{h:.2f}"),
                3333: (f"{f:.2f}", f"{h:.2f}"), 4444: (f"{f:.2f}", f"\\textbf{{{h:.2f}}}")}[s]
        assert (cells[2 * i].strip(), cells[2 * i + 1].strip()) == want


def test_missing_unfinished_and_garbled_runs_are_marked(tmp_path, capsys):
    exp = tmp_path / "rnn-ptb-650-0.5-0.6"
    v = make_ptb(str(exp))
    log = exp / "log"
    (log / "test_ptb_ffs_2222_0.1.log").unlink()                                      # missing
    text = (log / "test_ptb_ffs_1111_0.5.log").read_text()
    (log / "test_ptb_ffs_1111_0.5.log").write_text(text[:text.index("=")])            # truncated
    (log / "test_ptb_snn_2222.log").write_text(final_block("ptb", "12x.5"))           # garbled
    (log / "test_ptb_hybrid_1111_0.1.log").write_text("")                             # empty
    assert aggregate("--legacy-logs", "--out", tmp_path / "out", "--experiment", exp, "--no-plots") == 0
    csv = (tmp_path / "out" / "ptb-RNN-ffs.csv").read_text().split("\n")
    assert csv[2] == f"0.1, {v[('ffs', 0.1, 1111)]}, NA, {v[('ffs', 0.1, 1111)]}, 0.0"
    assert csv[3] == f"0.50, NA, {v[('ffs', 0.5, 2222)]}, {v[('ffs', 0.5, 2222)]}, 0.0"
    assert csv[4] == f"snn, {v[('snn', None, 1111)]}, NA, {v[('snn', None, 1111)]}, 0.0"
    out = capsys.readouterr().out
    tail = out[out.index("Runs without a result"):]
    assert "Runs without a result (4)" in tail
    assert "test_ptb_ffs_2222_0.1.log: missing" in tail
    assert "test_ptb_ffs_1111_0.5.log: unfinished (no final test block)" in tail
    assert "test_ptb_snn_2222.log: garbled value '12x.5'" in tail
    assert "test_ptb_hybrid_1111_0.1.log: unfinished" in tail
    assert "ffs 0.50: avg and squ over 1 of 2 seeds" in tail
    assert "NA" in (tmp_path / "out" / "ptb-RNN.tex").read_text()


def test_options_seeds_ratios_and_log_kind(tmp_path):
    exp = tmp_path / "cnn-dvs-ges-0.5-0.6"
    write_log(str(exp), "train", "dvsGesture_rnn_1111", final_block("dvsGesture", "88.54167"))
    write_log(str(exp), "test", "dvsGesture_rnn_1111", final_block("dvsGesture", "80.00000"))
    (exp / "checkpoint").mkdir()
    write_log(str(exp), "train", "dvsGesture_snn_1111", final_block("dvsGesture", "94.44444"))
    (exp / "checkpoint" / "dvsGesture_snn_1111.resume.t7").write_text("")           # being retrained
    [e] = R.make_experiments(str(exp), seeds=[1111, 5555], ratios=[0.75], legacy=True)
    assert (e.dataset, e.log_kind, e.seeds, e.ratios, e.stem) == ("dvsGesture", "train", [1111, 5555], [0.75], "dvsGesture-RNN")
    res = R.collect(e)
    assert res.cells[("rnn", None, 1111)].raw == "88.54167"
    assert res.cells[("snn", None, 1111)].problem.startswith("unfinished (resume file")
    assert res.cells[("ffs", 0.75, 5555)].problem == "missing"
    [t] = R.make_experiments(str(exp), log_kind="test", legacy=True)
    assert R.collect(t).cells[("rnn", None, 1111)].raw == "80.00000"


def test_discovery_of_experiments_and_studies(tmp_path):
    make_ptb(str(tmp_path / "experiments" / "rnn-ptb-650-0.5-0.6"))
    make_ptb(str(tmp_path / "experiments" / "rnn-ptb-120-0.5-0.6"), seeds=(1,))
    lstm = tmp_path / "studies" / "lstm-ptb-650"
    write_log(str(lstm), "test", "ptb_lstm_7", final_block("ptb", "99.00"))
    write_log(str(lstm), "test", "ptb_hybrid_7_0.25", final_block("ptb", "98.00"))
    (tmp_path / "experiments" / "empty").mkdir()
    found = {(e.name, e.dataset, e.rnn_type, tuple(e.seeds), tuple(e.ratios), e.out_subdir)
             for e in R.discover(str(tmp_path))}
    assert found == {("rnn-ptb-650-0.5-0.6", "ptb", "rnn", (1111, 2222), (0.1, 0.5), "rnn-ptb-650-0.5-0.6"),
                     ("rnn-ptb-120-0.5-0.6", "ptb", "rnn", (1,), (0.1, 0.5), "rnn-ptb-120-0.5-0.6"),
                     ("lstm-ptb-650", "ptb", "lstm", (7,), (0.25,), os.path.join("studies", "lstm-ptb-650"))}


def test_plots_summary_and_profile_table(tmp_path, capsys):
    exp = tmp_path / "rnn-ptb-650-0.5-0.6"
    make_ptb(str(exp))
    write_log(str(exp), "train", "ptb_rnn_1111", "| end of epoch   2 | time: 45.00s | valid loss 5.0 | valid ppl 150.0\n")
    profile = tmp_path / "profile.csv"
    profile.write_text("experiment,job,mode,model,seed,ratio,status,exit_code,wall_s,cpu_s,peak_rss_mb,peak_gpu_mb,"
                       "device,gpu,backend,host,finished\n"
                       f"{exp.name},train1_ptb_rnn_1111,train1,rnn,1111,0,ok,0,100,95,1945.6,612.0,GPU,0,local,h,t\n"
                       f"{exp.name},train1_ptb_snn_1111,train1,snn,1111,0,ok,0,100,100,2048,650.4,GPU,1,local,h,t\n"
                       f"{exp.name},train1_ptb_ffs_1111,train1,ffs,1111,0,failed,1,5,5,100,,GPU,1,local,h,t\n")
    out = tmp_path / "out"
    assert aggregate("--legacy-logs", "--experiment", exp, "--out", out, "--profile-csv", profile) == 0
    for ext in ("png", "pdf"):
        data = (out / f"ptb-RNN.{ext}").read_bytes()
        assert len(data) > 5000 and data[:4] == (b"\x89PNG" if ext == "png" else b"%PDF")
    summary = (out / "ptb-RNN-summary.md").read_text()
    assert "| 0.1 |" in summary and " ± " in summary and "published" in summary and "All runs complete." in summary
    assert "- read without completion records (--legacy-logs)" in summary  # said in the summary and the notes,
    assert "read without completion records" in (out / "ptb-RNN-notes.csv").read_text()
    assert "footnotesize" not in (out / "ptb-RNN.tex").read_text()  # while the LaTeX stays the authors'
    table = (out / "profile.md").read_text()
    assert f"| {exp.name} | 0.9 ~ 1.0 | 612 MB ~ 650 MB | 1.9 GB ~ 2.0 GB | 38 s | 2 |" in table
    assert table in capsys.readouterr().out


def test_no_logs_and_bad_options_never_crash(tmp_path, capsys):
    (tmp_path / "rnn-ptb-1").mkdir()
    assert aggregate("--experiment", tmp_path / "rnn-ptb-1", "--out", tmp_path / "out") == 0
    assert "No logs found" in capsys.readouterr().out
    assert aggregate("--experiment", tmp_path / "nowhere") == "error: no experiment folder " \
        f"{str(tmp_path / 'nowhere')!r} (looked in ., experiments/ and studies/)"
    assert aggregate("--seeds", "1111,abc") == 2
    assert "expected comma-separated numbers" in capsys.readouterr().err
