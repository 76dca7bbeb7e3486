"""The aggregator's figures: the authors' numbers on a panel of their own, learning curves parsed from the logs,
firing rates per layer from cost results, and the wording of one seed and of no runs."""
import json
import os

import pytest

from common.report import plots
from common.report import logs as R, published, tables, tradeoff

PTB_LOG = """model with rnn_shape: [  8,   8]
| epoch   1 |    20/   73 batches | 83.23 ms/batch | loss  3.68 | ppl    39.84
-----------------------------------------------------------------------------------------
| end of epoch   1 | time:  6.20s | valid loss  6.30 | valid ppl   545.65
-----------------------------------------------------------------------------------------
| end of epoch   2 | time:  4.77s | valid loss  6.10 | valid ppl   445.86
| end of epoch   3 | time:  4.80s | valid loss  6.00 | valid ppl   403.43
resuming from checkpoint/ptb_ffs_1111_0.5.resume.t7 after epoch 2
| end of epoch   3 | time:  4.90s | valid loss  5.99 | valid ppl   399.40
| end of epoch   4 | time:  4.90s | valid loss  5.90 | valid ppl   365.04
=========================================================================================
| Performance on Test Set | test loss  5.85 | test ppl   347.23
=========================================================================================
"""


def test_learning_curves_are_parsed_from_every_scripts_epoch_lines(tmp_path):
    ptb = tmp_path / "train_ptb_ffs_1111_0.5.log"
    ptb.write_text(PTB_LOG)
    assert plots.read_curve(str(ptb)) == ([(1, 545.65), (2, 445.86), (3, 399.40), (4, 365.04)], "valid perplexity")
    smnist = tmp_path / "train_mnist_hybrid_1111.log"
    smnist.write_text("| end of epoch   1 | time:  2.09s | test loss 0.99306 | test acc 80.700%\n"
                      "| epoch   2 |   100/  400 batches | 10.00 ms/batch | loss 0.50000 | acc 85.000%\n"
                      "| end of epoch   2 | time:  2.31s | test loss 0.82074 | test acc 83.400%\n"
                      "| end of epoch   1 | time:  2.00s | val loss 0.90000 | val acc 81.000%\n")  # run again
    assert plots.read_curve(str(smnist)) == ([(1, 81.0)], "val accuracy (%)")
    dvs = tmp_path / "train_dvsGesture_snn_1111.log"
    dvs.write_text("| end of epoch  20 | time: 31.00s | train loss 0.02000 | test acc 91.667%\n")
    assert plots.read_curve(str(dvs)) == ([(20, 91.667)], "test accuracy (%)")
    assert plots.read_curve(str(tmp_path / "missing.log")) == ([], None)


def experiment(folder, dataset="mnist", seeds=(1111,), ratios=(0.25, 0.5)):
    return R.Experiment(str(folder), dataset, "rnn", list(seeds), list(ratios))


def results_of(exp, values):
    """Results whose cells hold values[(model, ratio)] + seed index, NA where absent."""
    res = R.Results(exp)
    keys = [("rnn", None), ("snn", None)] + [(m, r) for r in exp.ratios for m in ("ffs", "hybrid")]
    for model, ratio in keys:
        for i, seed in enumerate(exp.seeds):
            v = values.get((model, ratio))
            res.cells[(model, ratio, seed)] = R.Cell(None if v is None else f"{v + i:.5f}", None if v else "missing")
    return res


OURS = {("rnn", None): 41.0, ("snn", None): 86.0, ("ffs", 0.25): 70.0, ("hybrid", 0.25): 76.0,
        ("ffs", 0.5): 80.0, ("hybrid", 0.5): 85.0}


def lines_by_label(ax):
    handles, labels = ax.get_legend_handles_labels()
    return dict(zip(labels, handles))


def test_published_numbers_on_a_panel_of_their_own(tmp_path):
    fig = plots.experiment_figure(results_of(experiment(tmp_path, seeds=(1111, 2222, 3333)), OURS))
    ours, theirs = fig.axes
    assert "ours" in ours.get_title() and "over 3 seeds" in ours.get_title()
    assert "published by the authors" in theirs.get_title() and "over 5 seeds" in theirs.get_title()
    pub = published.published("mnist")
    hstnn = lines_by_label(theirs)["HSTNN"].lines[0]
    expected = sorted((float(k), v[1]) for k, v in pub["hybrid"].items() if k not in ("rnn", "snn"))
    assert list(hstnn.get_xdata()) == [r for r, _ in expected] and list(hstnn.get_ydata()) == [a for _, a in expected]
    assert list(lines_by_label(ours)["HSTNN"].lines[0].get_ydata()) == [77.0, 86.0]  # mean of v, v+1, v+2
    low, high = theirs.get_ylim()
    assert 97.5 < low and high < 99.5  # their own scale: the 98-99 % band is legible
    assert ours.get_ylim()[0] < 45 and ours.get_ylim()[1] < 95
    plots.pyplot().close(fig)


def test_one_seed_no_runs_and_unpublished_tables(tmp_path):
    fig = plots.experiment_figure(results_of(experiment(tmp_path), OURS))
    assert fig.axes[0].get_title() == "ours: 1 seed"
    assert not any(t.get_text() == plots.NO_RUNS for t in fig.axes[0].texts)
    plots.pyplot().close(fig)
    fig = plots.experiment_figure(results_of(experiment(tmp_path, "nmnist"), {}))
    assert len(fig.axes) == 1  # nothing published for N-MNIST
    assert [t.get_text() for t in fig.axes[0].texts] == ["no finished runs"]
    plots.pyplot().close(fig)


def test_report_writes_the_plots_and_curves_show_every_run(tmp_path):
    exp = experiment(tmp_path / "rnn-ptb-650", "ptb", seeds=(1111, 2222), ratios=(0.5,))
    os.makedirs(tmp_path / "rnn-ptb-650" / "log")
    (tmp_path / "rnn-ptb-650" / "log" / "train_ptb_ffs_1111_0.5.log").write_text(PTB_LOG)
    (tmp_path / "rnn-ptb-650" / "log" / "train_ptb_hybrid_2222_0.5.log").write_text(
        "| end of epoch   1 | time:  6.20s | valid loss  6.00 | valid ppl   403.43\n")
    res = results_of(exp, {("rnn", None): 110.0, ("ffs", 0.5): 105.0})
    written = tables.plot(res, str(tmp_path / "ptb-RNN"))
    assert [os.path.basename(p) for p in written] == ["ptb-RNN.png", "ptb-RNN.pdf", "ptb-RNN-curves.png"]
    for p in written:
        assert os.path.getsize(p) > 5000
    curves = plots.learning_curves(exp)
    assert set(curves) == {("ffs", 0.5, 1111), ("hybrid", 0.5, 2222)}
    fig = plots.curves_figure(exp, curves)
    pure, ffs, hstnn = fig.axes
    assert [t.get_text() for t in pure.texts] == ["no epochs logged"]
    (line,) = ffs.get_lines()
    assert list(line.get_ydata()) == [545.65, 445.86, 399.40, 365.04] and line.get_label() == "ratio 0.5"
    assert list(hstnn.get_lines()[0].get_ydata()) == [403.43]
    assert pure.get_ylabel() == "valid perplexity" and pure.get_yscale() == "log"
    plots.pyplot().close(fig)


def cost_json(rates, convention=None):
    obj = dict(kind="cost", firing_rate=rates, macs=100.0, acs=50.0, energy_pj=500.0, params=10, state_bytes=4)
    return obj if convention is None else dict(obj, convention=convention)


def test_firing_rates_per_layer_beside_the_tradeoff(tmp_path):
    folder = tmp_path / "rnn-smnist-800"
    exp = experiment(folder, seeds=(1111, 2222), ratios=(0.5,))
    os.makedirs(folder / "log")
    files = {"mnist_snn_{}": (0.20, 0.10), "mnist_ffs_{}_0.5": (0.30, 0.05), "mnist_hybrid_{}_0.5": (0.40, 0.15),
             "mnist_hybrid_{}": (0.25, 0.12), "mnist_rnn_{}": (0.0, 0.0)}
    for name, (a, b) in files.items():
        for i, seed in enumerate(exp.seeds):
            (folder / "log" / f"cost_{name.format(seed)}.json").write_text(
                json.dumps(cost_json({"snn1": a + 0.1 * i, "snn2": b}, "standard" if i else None)))
    res = results_of(exp, OURS)
    written, _ = tradeoff.write_tradeoff(res, str(tmp_path / "mnist-RNN"))
    assert str(tmp_path / "mnist-RNN-tradeoff-firing-rates.png") in written
    fig = plots.firing_rate_figure(exp, tradeoff.tradeoff_rows(tradeoff.collect_tradeoff(res)))
    snn1, snn2 = fig.axes
    assert (snn1.get_title(), snn2.get_title()) == ("snn1", "snn2")
    assert list(lines_by_label(snn1)["HSTNN"].lines[0].get_ydata()) == pytest.approx([0.45])  # mean over seeds
    assert list(lines_by_label(snn2)["ffs (hybrid from scratch)"].lines[0].get_ydata()) == pytest.approx([0.05])
    assert lines_by_label(snn1)["pure SNN"].get_ydata()[0] == pytest.approx(0.25)
    assert lines_by_label(snn2)["adapted hybrid (before selection)"].get_ydata()[0] == pytest.approx(0.12)
    assert "pure RNN" not in lines_by_label(snn1)
    plots.pyplot().close(fig)
    assert plots.firing_rate_figure(exp, [{"type": "ffs", "ratio": "0.5", "fr_snn1": None}]) is None
