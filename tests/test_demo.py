"""The one-command demo at its CI size: real digits, the real script, launcher and aggregator, and outputs
that exist and hold numbers."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT

DEMO = os.path.join(ROOT, "demo.py")


def test_tiny_demo_runs_the_whole_method_and_writes_numbers(tmp_path):
    pytest.importorskip("mlxtend")
    out = str(tmp_path / "demo")
    proc = subprocess.run([sys.executable, DEMO, "--tiny", "--out", out, "--jobs", "2"], capture_output=True,
                          text=True, timeout=600, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = proc.stdout
    assert "A SMALL SAMPLE, NOT THE BENCHMARK" in text and "Outputs (under demo/)" in text  # relative to the cwd
    assert "results/mnist-RNN.png" in text and "All runs complete." in text

    raw = os.path.join(out, "data", "MNIST", "raw")
    assert sorted(os.listdir(raw)) == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
                                       "train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
    logs = os.listdir(os.path.join(out, "rnn-smnist", "log"))
    for name in ["rnn_1111", "snn_1111", "hybrid_1111", "ffs_1111_0.5", "hybrid_1111_0.5"]:
        assert f"train_mnist_{name}.log" in logs

    results = os.path.join(out, "results")
    for kind in ("ffs", "hybrid"):
        rows = [line.split(", ") for line in open(os.path.join(results, f"mnist-RNN-{kind}.csv")).read().splitlines()
                if line]
        assert rows[0] == ["type", "1111", "avg", "squ"]
        assert [r[0] for r in rows[1:]] == ["rnn", "0.50", "snn"]
        for row in rows[1:]:
            assert all(0 <= float(v) <= 100 for v in row[1:3]), row  # a number in every cell, no NA
    assert "\\begin{tabular}" in open(os.path.join(results, "mnist-RNN.tex")).read()
    for plot in ("mnist-RNN.png", "mnist-RNN.pdf"):
        assert os.path.getsize(os.path.join(results, plot)) > 1000
    summary = open(os.path.join(results, "mnist-RNN-summary.md")).read()
    assert "| 0.50 |" in summary and "NA" not in summary.split("All runs")[0]
    assert os.path.exists(os.path.join(out, "profile.csv"))


def test_the_checkpoints_size_is_the_demos_networks_on_a_few_batches():
    """demo.py --checkpoints: the demo's network size and digits, every run cut to its first batches through the
    script's own --max_batches (a flag the script takes, so the launcher accepts it), one ratio and one seed."""
    import runpy
    from common.cli import load_script
    from common.launch.launcher import expand_jobs, unknown_keys
    demo = runpy.run_path(DEMO, run_name="demo")
    quick, sample = demo["SIZES"]["checkpoints"], demo["SIZES"]["sample"]
    assert {k: quick[k] for k in ("n_train", "n_test", "nhid")} == {k: sample[k] for k in ("n_train", "n_test", "nhid")}
    stage1, stage2 = demo["run_dicts"](quick, "data", "test")
    flags = set(load_script(demo["SCRIPT"], "demo_smnist").parser._option_string_actions)
    assert unknown_keys(stage1, flags) == unknown_keys(stage2, flags) == []
    jobs = expand_jobs(".", stage1, demo["SCRIPT"], "mnist") + expand_jobs(".", stage2, demo["SCRIPT"], "mnist")
    assert len(jobs) == 5
    for job in jobs:
        argv = job.argv
        assert argv[argv.index("--max_batches") + 1] == "10" and argv[argv.index("--nhid") + 1] == "64"
