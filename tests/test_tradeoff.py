"""Cost counting against hand counts on tiny networks, reproducible perturbations, and evaluate.py plus the
aggregator's trade-off report end to end on tiny trained models."""
import json
import math
import os
import runpy
import sys

import numpy as np
import pytest
import torch

from common import cost, perturb
from common.hybrid_conv import HybridConvNet, build_configs
from conftest import ROOT, run_script, write_corpus
from tiny import TinyNet

PTB_SCRIPT = os.path.join(ROOT, "experiments", "rnn-ptb-650-0.5-0.6", "rnn-ptb.py")
LSTM_SMNIST = os.path.join(ROOT, "experiments", "lstm-smnist-800-0.5-0.6", "lstm-smnist.py")
EVALUATE = os.path.join(ROOT, "evaluate.py")


def counted(model, *inputs, convention="kit-v1"):
    """(counter, output of the counted run, output of the model's step-by-step definition). The hand counts in
    this file are kit-v1's; tests/test_cost_conventions.py has the standard convention's."""
    counter = cost.Counter(convention)
    model.eval()
    with torch.no_grad():
        with cost.counting(model, counter):
            out = model(*inputs)
        model.fast = False
        reference = model(*inputs)
    return counter, out, reference


def set_all(params, value):
    with torch.no_grad():
        for p in params:
            p.fill_(value)


# -- hand counts: fully connected stack ---------------------------------------------------------------------
@pytest.mark.parametrize("case", ["zero", "all"])
def test_fc_snn_counts_zero_and_all_spikes(case):
    T, B = 3, 1
    net = TinyNet(2, [0, 0], [2, 3], nout=4).double()
    set_all([net.snn_fc1, net.snn_fc2], 1.0)  # input 1 (or spikes) x 1 >= threshold 0.6 at every step
    x = torch.zeros(T, B, 2, dtype=torch.float64) if case == "zero" else torch.ones(T, B, 2, dtype=torch.float64)
    c, (out, _), (ref, _) = counted(net, x, net.init_hidden(B))
    assert torch.equal(out, ref)
    rep = cost.report(c, net)
    assert c.samples == T * B and c.neuron_macs == T * B * 5  # one MAC per LIF neuron per step
    if case == "zero":  # no input, no spike: nothing but the membrane updates
        assert sum(c.acs.values()) == 0 and sum(c.macs.values()) == 0
        assert rep["firing_rate"] == {"snn1": 0.0, "snn2": 0.0}
    else:  # every input and every neuron active at every step: fan-out ACs for each
        assert c.acs == {"snn_fc1": 3 * 2 * 2, "snn_fc2": 3 * 2 * 3, "readout": 3 * 3 * 4}
        assert sum(c.macs.values()) == 0 and rep["firing_rate"] == {"snn1": 1.0, "snn2": 1.0}
        assert rep["acs"] == 66 / 3 and rep["macs"] == 15 / 3
        assert rep["energy_pj"] == pytest.approx((15 * 4.6 + 66 * 0.9) / 3)


def test_fc_hybrid_counts_mixed_inputs_by_hand():
    """Layer-1 SNN all spiking, layer-2 SNN silent, a real-valued and a binary input element."""
    T, B = 3, 2
    torch.manual_seed(0)
    net = TinyNet(2, [2, 1], [2, 3], nout=4).double()
    set_all([net.snn_fc1], 1.0)
    set_all([net.snn_fc2], -1.0)
    x = torch.tensor([1.0, 0.5], dtype=torch.float64).expand(T, B, 2)
    c, (out, _), (ref, _) = counted(net, x, net.init_hidden(B))
    assert torch.allclose(out, ref, atol=1e-12)
    steps = T * B
    assert {k: v // steps for k, v in c.acs.items()} == {
        "snn_fc1": 1 * 2,        # the input 1.0: fan-out 2 ACs (the 0.5 is a MAC)
        "snn_fc2": 2 * 3,        # two layer-1 spikes x 3 SNN targets
        "rnn_fc1": 0,            # real-valued data into RNN neurons: dense
        "rnn_fc2": 2 * 1,        # two layer-1 spikes x 1 RNN target
        "rnn_fv1": 0, "rnn_fv2": 0, "readout": 0}  # the readout's spike columns are silent
    assert {k: v // steps for k, v in c.macs.items()} == {
        "snn_fc1": 1 * 2,        # the input 0.5
        "snn_fc2": 2 * 3,        # two real RNN outputs into the spiking layer
        "rnn_fc1": 2 * 2, "rnn_fv1": 2 * 2,
        "rnn_fc2": 2 * 1,        # the two RNN columns, dense
        "rnn_fv2": 1, "readout": 1 * 4}
    assert c.neuron_macs == steps * 5 and all(v % steps == 0 for v in list(c.acs.values()) + list(c.macs.values()))
    assert cost.report(c, net)["firing_rate"] == {"snn1": 1.0, "snn2": 0.0}
    assert cost.state_memory(net) == (5 + 3, 5)  # membranes + RNN states, one spike bit per LIF neuron


def test_lstm_counts_and_state():
    T, B = 2, 3
    net = TinyNet(2, [2, 1], [0, 0], cell="lstm", nout=4).double()
    c, (out, _), (ref, _) = counted(net, torch.rand(T, B, 2, dtype=torch.float64), net.init_hidden(B))
    assert torch.allclose(out, ref, atol=1e-12)
    per_step = {"lstm_wi1": 4 * 2 * 2, "lstm_wh1": 4 * 2 * 2, "lstm_wi2": 4 * 2 * 1, "lstm_wh2": 4 * 1 * 1, "readout": 4}
    assert {k: v // (T * B) for k, v in c.macs.items()} == per_step and sum(c.acs.values()) == 0
    assert c.neuron_macs == T * B * 3 * 3  # f*c, i*g, o*tanh(c) per LSTM unit
    assert cost.state_memory(net) == (2 * 3, 0)


# -- hand counts: conv net ------------------------------------------------------------------------------------
def conv_net(channels, rcnn, scnn, T_input=4, hidden=3, nclass=2):
    configs = build_configs(channels, rcnn, scnn, 1, T_input, nclass, first_padding=1, hidden=hidden)
    torch.manual_seed(0)
    return HybridConvNet(*configs, decay=0.3, thresh=0.5, lens=0.5, rcnn="tanh").double()


def test_conv_fanout_excludes_padding():
    net = conv_net([2], [0], [2])
    fan = cost.conv_fanout(net.hcnn_layers[0].scnn_fc, (4, 4))
    assert fan.tolist() == [[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]] and fan.sum() == 100


@pytest.mark.parametrize("case", ["zero", "ones", "counts"])
def test_conv_scnn_counts(case):
    """One SCNN layer (2 filters, 3x3, 4x4 input, padding 1), T = 2: silent, all spiking on binary events,
    all spiking on event counts of 3."""
    T = 2
    net = conv_net([2], [0], [2])
    layer = net.hcnn_layers[0].scnn_fc
    set_all([layer.weight], 1.0)
    set_all([layer.bias], 0.0 if case == "zero" else 1.0)
    value = {"zero": 0.0, "ones": 1.0, "counts": 3.0}[case]
    x = torch.full((1, 1, 4, 4, T), value, dtype=torch.float64)
    c, out, ref = counted(net, x)
    assert torch.allclose(out, ref, atol=1e-12)
    synaptic = T * 100 * 2  # every input position x its fan-out x 2 filters
    assert c.neuron_macs == T * 2 * 16 and c.samples == 1
    assert c.acs["hcnn_layers.0.scnn_fc"] == (synaptic if case == "ones" else 0)
    assert c.macs["hcnn_layers.0.scnn_fc"] == (synaptic if case == "counts" else 0)
    # readout: summed pooled spikes (2 filters x 2 x 2, each T = 2 when all spike: a MAC, not an AC), then dense
    assert c.macs["linear_layers.0"] == (0 if case == "zero" else 8 * 3) and c.acs["linear_layers.0"] == 0
    assert c.macs["linear_layers.1"] == 3 * 2
    assert cost.report(c, net)["firing_rate"] == {"layer0": 0.0 if case == "zero" else 1.0}


def test_conv_hybrid_counts_by_hand():
    """Two layers of 1 RCNN + 1 SCNN filter: layer-0 SCNN always spikes, layer-1 SCNN never."""
    T = 2
    net = conv_net([2, 2], [1, 1], [1, 1])
    l0, l1 = net.hcnn_layers
    set_all([l0.scnn_fc.bias], 100.0)
    set_all([l1.scnn_fc.bias], -100.0)
    c, out, ref = counted(net, torch.ones(1, 1, 4, 4, T, dtype=torch.float64))
    assert torch.allclose(out, ref, atol=1e-12)
    per_step_acs = {"hcnn_layers.0.scnn_fc": 100, "hcnn_layers.0.rcnn_fc": 100,  # binary events, fan-out sums 100
                    "hcnn_layers.1.scnn_fc": 16, "hcnn_layers.1.rcnn_fc": 16,    # pooled spikes = 1 on 2x2
                    "hcnn_layers.0.rcnn_fv": 0, "hcnn_layers.1.rcnn_fv": 0}
    per_step_macs = {"hcnn_layers.0.scnn_fc": 0, "hcnn_layers.0.rcnn_fc": 0,
                     "hcnn_layers.0.rcnn_fv": 4 * 4 * 1 * 1 * 9,  # dense recurrent conv
                     "hcnn_layers.1.scnn_fc": 16,                 # real pooled RCNN input into spiking neurons
                     "hcnn_layers.1.rcnn_fc": 2 * 2 * 1 * 1 * 9,  # the RCNN input channel, dense
                     "hcnn_layers.1.rcnn_fv": 2 * 2 * 1 * 1 * 9}
    assert {k: v // T for k, v in c.acs.items() if k.startswith("hcnn")} == per_step_acs
    assert {k: v // T for k, v in c.macs.items() if k.startswith("hcnn")} == per_step_macs
    assert c.macs["linear_layers.0"] == 1 * 3 and c.macs["linear_layers.1"] == 3 * 2  # silent spikes cost nothing
    assert c.neuron_macs == T * (16 + 4)
    rep = cost.report(c, net)
    assert rep["acs"] == 2 * 232 and rep["macs"] == 2 * 232 + 2 * 20 + 9  # synaptic, LIF, readout
    assert rep["firing_rate"] == {"layer0": 1.0, "layer1": 0.0}
    floats, bits = cost.state_memory(net)
    assert (floats, bits) == (2 * 16 + 2 * 4 + 1, 16 + 4)


# -- perturbations --------------------------------------------------------------------------------------------
def test_perturbations_are_reproducible_and_zero_is_identity():
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 4, (2, 2, 5, 5, 8))).float()
    for kind, fn in perturb.EVENT_FNS.items():
        assert torch.equal(fn(frames, 0.0, perturb.generator(1, kind, 0.0)), frames), kind
        a, b = (fn(frames, 0.5, perturb.generator(1, kind, 0.5)) for _ in range(2))
        assert torch.equal(a, b) and not torch.equal(a, frames), kind
        assert not torch.equal(a, fn(frames, 0.5, perturb.generator(2, kind, 0.5))), kind
    assert perturb.event_drop(frames, 1.0, perturb.generator(1, "event_drop", 1.0)).sum() == 0
    kept = perturb.event_drop(frames, 0.25, perturb.generator(3, "event_drop", 0.25))
    assert (kept <= frames).all() and abs(kept.sum() / frames.sum() - 0.75) < 0.05
    # jitter: events move round(N(0, s^2)) frames; from the middle of a long window none is lost
    one = torch.zeros(1, 1, 1, 1, 41)
    one[..., 20] = 20000
    moved = perturb.jitter(one, 2.0, perturb.generator(0, "jitter", 2.0))[0, 0, 0, 0]
    shift = torch.arange(41.0) - 20
    assert moved.sum() == 20000 and abs((moved * shift).sum() / 20000) < 0.1
    assert abs((moved * shift ** 2).sum() / 20000 - (4 + 1 / 12)) < 0.2
    with pytest.raises(ValueError, match="whole event counts"):
        perturb.event_drop(frames + 0.5, 0.1, perturb.generator(0, "event_drop", 0.1))

    net = TinyNet(2, [2, 1], [2, 3]).double()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    perturb.add_weight_noise(net, 0.0, perturb.generator(1, "weight_noise", 0.0))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    perturb.add_weight_noise(net, 0.1, perturb.generator(1, "weight_noise", 0.1))
    assert torch.equal(net.readout.bias, before["readout.bias"])  # biases untouched
    delta = net.snn_fc2 - before["snn_fc2"]
    assert 0.05 < (delta.std() / before["snn_fc2"].std()).item() < 0.2
    assert perturb.auc([0, 1, 2], [10, 8, 4]) == pytest.approx((9 + 6) / 2) and perturb.auc([0.3], [5]) == 5


# -- end to end -----------------------------------------------------------------------------------------------
def evaluate(*argv):
    """Run evaluate.py in this process; return its exit code."""
    old = sys.argv
    sys.argv = ["evaluate.py"] + [str(a) for a in argv]
    try:
        runpy.run_path(EVALUATE, run_name="__main__")
        return 0
    except SystemExit as e:
        return e.code
    finally:
        sys.argv = old


def logged(path):
    return float(open(path).read().splitlines()[-2].split()[-1])


def test_ptb_end_to_end_cost_robustness_and_report(tmp_path, capsys):
    corpus = write_corpus(str(tmp_path / "ptb"))
    exp = tmp_path / "rnn-ptb-650-0.5-0.6"
    exp.mkdir()
    script = str(exp / "rnn-ptb.py")
    open(script, "w").write(open(PTB_SCRIPT).read())
    small = ["--nhid", 8, "--emsize", 8, "--bptt", 6, "--batch_size", 4, "--device", "cpu", "--stage1_epochs", 1,
             "--stage2_epochs", 1, "--hessian_probes", 2, "--data", corpus]
    for model, extra in [("rnn", []), ("snn", []), ("ffs", ["--ratio", 0.5]), ("hybrid", []),
                         ("hybrid", ["--mode", "train2", "--ratio", 0.5])]:
        assert run_script(script, small + ["--model", model] + extra, str(exp)) == 0
    flags = ["--data", corpus, "--bptt", 6, "--batch_size", 4, "--device", "cpu",
             "--input_noise", "0,0.5", "--weight_noise", "0,0.2"]
    assert evaluate("both", "--experiment", exp, "--all", *flags) == 0
    log = exp / "log"
    for name in ("ptb_rnn_1111", "ptb_snn_1111", "ptb_ffs_1111_0.5", "ptb_hybrid_1111", "ptb_hybrid_1111_0.5"):
        c = json.load(open(log / f"cost_{name}.json"))
        r = json.load(open(log / f"robust_{name}.json"))
        assert round(c["metric"], 2) == logged(log / f"train_{name}.log") == float(c["logged_metric"])
        assert c["per"] == "token" and c["samples"] > 0 and c["energy_pj"] == pytest.approx(4.6 * c["macs"] + 0.9 * c["acs"])
        assert r["clean"] == pytest.approx(c["metric"], rel=1e-5)  # the model's own path vs the counted one
        trained = json.load(open(log / f"train_{name}.json"))["checkpoint"]["sha256"]
        assert c["checkpoint_sha256"] == r["checkpoint_sha256"] == trained  # bound to the run's checkpoint
        for kind in ("input_noise", "weight_noise"):
            p = r["perturbations"][kind]
            assert p["values"][0] == r["clean"]  # strength 0 is the clean metric
            assert p["values"][1] != r["clean"] or name == "ptb_snn_1111"  # (the tiny SNN never spikes)
    assert json.load(open(log / "cost_ptb_rnn_1111.json"))["acs"] == 0
    ffs = json.load(open(log / "cost_ptb_ffs_1111_0.5.json"))["per_weight"]  # 4 LIF + 4 RNN neurons per layer
    assert ffs["snn_fc1"] == ffs["rnn_fc1"] == {"macs": 8 * 4, "acs": 0}  # the embedding: dense into both populations
    assert json.load(open(log / "cost_ptb_snn_1111.json"))["params"] < json.load(open(log / "cost_ptb_hybrid_1111.json"))["params"]
    assert "warning" not in capsys.readouterr().err
    # the same noise again: identical numbers; up-to-date results are skipped unless forced
    first = json.load(open(log / "robust_ptb_hybrid_1111_0.5.json"))
    assert evaluate("robust", "--experiment", exp, "--all", *flags) == 0
    assert "skip ptb_hybrid_1111_0.5: results up to date" in capsys.readouterr().out
    assert evaluate("robust", "--experiment", exp, "--model", "hybrid", "--ratio", 0.5, *flags) == 0
    assert json.load(open(log / "robust_ptb_hybrid_1111_0.5.json"))["perturbations"] == first["perturbations"]
    # other flags than the run's: a warning, not a silent wrong number
    assert evaluate("cost", "--experiment", exp, "--model", "ffs", "--ratio", 0.5, *flags[:2], "--bptt", 5,
                    "--batch_size", 4, "--device", "cpu") == 0
    assert "pass the script flags it was trained with" in capsys.readouterr().err
    # --all evaluates only runs whose completion record verifies: a checkpoint replaced since its run finished is skipped
    checkpoint = exp / "checkpoint" / "ptb_snn_1111.t7"
    checkpoint.write_bytes(checkpoint.read_bytes() + b"\0")
    assert evaluate("cost", "--experiment", exp, "--all", "--force", *flags) == 0
    assert "skip ptb_snn_1111: its checkpoint ptb_snn_1111.t7 was replaced or changed" in capsys.readouterr().out
    assert evaluate("cost", "--experiment", exp, "--model", "ffs", "--seed", 9, "--ratio", 0.5, *flags) == 2
    assert "needs the checkpoint checkpoint/ptb_ffs_9_0.5.t7" in capsys.readouterr().err

    sys.path.insert(0, ROOT)
    aggregate = runpy.run_path(os.path.join(ROOT, "latex-code-gen.py"), run_name="latex_code_gen")["main"]
    assert aggregate(["--experiment", str(exp), "--out", str(tmp_path / "out"), "--logs", "train"]) == 0
    rows = (tmp_path / "out" / "ptb-RNN-tradeoff.csv").read_text().splitlines()
    head = rows[0].split(",")
    assert head[:4] == ["type", "ratio", "metric_mean", "metric_std"]
    assert {"macs[standard]", "acs[standard]", "energy_pj[standard]", "fr_snn1", "fr_snn2", "input_noise@0.5",
            "weight_noise_auc"} <= set(head)
    table = {(r.split(",")[0], r.split(",")[1]): dict(zip(head, r.split(","))) for r in rows[1:]}
    assert set(table) >= {("rnn", ""), ("snn", ""), ("ffs", "0.5"), ("hybrid", "0.5")}
    assert float(table[("hybrid", "0.5")]["metric_mean"]) == logged(log / "train_ptb_hybrid_1111_0.5.log")
    assert float(table[("rnn", "")]["acs[standard]"]) == 0
    for plot in ("metric", "energy", "robustness", "pareto"):
        assert (tmp_path / "out" / f"ptb-RNN-tradeoff-{plot}.png").read_bytes()[:4] == b"\x89PNG"
    # existing tables unchanged, and a garbled result never crashes the report
    assert (tmp_path / "out" / "ptb-RNN-ffs.csv").read_text().startswith("type, 1111, avg, squ\n")
    (log / "cost_ptb_snn_1111.json").write_text("{not json")
    assert aggregate(["--experiment", str(exp), "--out", str(tmp_path / "out2"), "--no-plots", "--logs", "train"]) == 0
    assert "cost_ptb_snn_1111.json: unreadable" in capsys.readouterr().out


def test_lstm_smnist_cost_per_image(tmp_path, capsys):
    from common.data.smnist import write_mnist_raw
    rng = np.random.default_rng(0)
    digits = lambda n: (rng.integers(0, 256, (n, 28, 28)).astype(np.uint8) * (rng.random((n, 28, 28)) < 0.3),
                        rng.integers(0, 10, n))
    write_mnist_raw(str(tmp_path / "data"), digits(100), digits(50))
    exp = tmp_path / "lstm-smnist-800-0.5-0.6"
    exp.mkdir()
    os.makedirs(tmp_path / "rnn-smnist-800-0.5-0.6")
    for src, dst in ((LSTM_SMNIST, exp / "lstm-smnist.py"),
                     (LSTM_SMNIST.replace("lstm-smnist-800-0.5-0.6/lstm-smnist.py", "rnn-smnist-800-0.5-0.6/rnn-smnist.py"),
                      tmp_path / "rnn-smnist-800-0.5-0.6" / "rnn-smnist.py")):
        open(dst, "w").write(open(src).read())
    flags = ["--data", tmp_path / "data", "--batch_size", 25, "--device", "cpu"]
    assert run_script(str(exp / "lstm-smnist.py"), flags + ["--nhid", 4, "--model", "ffs", "--ratio", 0.5,
                                                           "--stage1_epochs", 1], str(exp)) == 0
    assert evaluate("cost", "--experiment", exp, "--model", "ffs", "--ratio", 0.5, *flags) == 0
    c = json.load(open(exp / "log" / "cost_mnist_ffs_1111_0.5.json"))
    assert c["samples"] == 50 and c["per"] == "sample" and round(c["metric"], 5) == float(c["logged_metric"])
    # LSTM input weights: 28 pixels x 4 gates x 2 units, dense, at each of the 28 columns; readout once per image
    assert c["per_weight"]["lstm_wi1"] == {"macs": 28 * 28 * 4 * 2, "acs": 0.0}
    assert c["per_weight"]["lstm_wh2"] == {"macs": 28 * 4 * 2 * 2, "acs": 0.0}
    readout = c["per_weight"]["all_fc"]  # 2 LSTM columns dense; the 2 firing-rate columns: one AC per spike
    assert c["convention"] == "standard" and readout["macs"] == 2 * 10 and c["state_values"] == 2 + 2 + 2 * 4 + 2
    assert readout["acs"] == pytest.approx(c["firing_rate"]["snn2"] * 28 * 2 * 10)
    # --all recounts a result made under another setting (it is not up to date), and says which convention
    assert evaluate("cost", "--experiment", exp, "--all", "--convention", "kit-v1", "--memory", "sram", *flags) == 0
    assert "cost result counted under another setting is replaced (now: kit-v1, memory sram)" in capsys.readouterr().out
    old = json.load(open(exp / "log" / "cost_mnist_ffs_1111_0.5.json"))
    assert (old["convention"], old["memory"], old["memory_pj"]) == ("kit-v1", "sram", 5.0)
    assert old["per_weight"]["lstm_wi1"] == c["per_weight"]["lstm_wi1"] and old["energy_pj"] != c["energy_pj"]
    assert old["energy_memory_pj"] == pytest.approx(5.0 * (old["weight_reads"] + old["state_accesses"]))
    assert evaluate("cost", "--experiment", exp, "--all", "--memory_pj", 3, *flags) == 2


def test_nmnist_event_perturbations_end_to_end(tmp_path, capsys):
    """Synthetic N-MNIST through nmnist-dataset-gen.py; an SNN and a restored hybrid, cost and every event
    perturbation; zero strength is the clean accuracy, which is the logged one."""
    import subprocess
    from event_writers import write_nmnist_bin
    rng = np.random.default_rng(1)
    for split in ("Train", "Test"):
        for d in range(10):
            folder = tmp_path / "N-MNIST" / split / str(d)
            folder.mkdir(parents=True)
            for j in range(10):
                write_nmnist_bin(str(folder / f"{j + 1:05d}.bin"), rng.integers(0, 34, 60), rng.integers(0, 34, 60),
                                 rng.integers(0, 2, 60), np.sort(rng.integers(0, 15000, 60)))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "data", "nmnist-dataset-gen.py"), "3", "--root",
                           str(tmp_path), "--steps", "5"], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr
    exp = tmp_path / "rcnn-nmnist-128-0.25-0.3-0.3"
    exp.mkdir()
    src = os.path.join(ROOT, "experiments", exp.name, "rcnn-nmnist.py")
    open(exp / "rcnn-nmnist.py", "w").write(open(src).read())
    flags = ["--data", tmp_path / "N-MNIST" / "processed", "--channels", "4,4,4", "--nwin", 4, "--batch_size", 50,
             "--device", "cpu"]
    for extra in (["--model", "snn"], ["--model", "hybrid"], ["--model", "hybrid", "--mode", "train2", "--ratio", 0.5]):
        assert run_script(str(exp / "rcnn-nmnist.py"), flags + ["--stage1_epochs", 1, "--stage2_epochs", 1,
                                                                "--hessian_probes", 2] + extra, str(exp)) == 0
    strengths = ["--event_drop", "0,0.5", "--pixel_drop", "0,0.5", "--jitter", "0,1", "--weight_noise", "0,0.5"]
    assert evaluate("both", "--experiment", exp, "--all", *flags, *strengths) == 0
    assert "warning" not in capsys.readouterr().err
    for name in ("nmnist_snn_1111", "nmnist_hybrid_1111", "nmnist_hybrid_1111_0.5"):
        c = json.load(open(exp / "log" / f"cost_{name}.json"))
        r = json.load(open(exp / "log" / f"robust_{name}.json"))
        assert round(c["metric"], 5) == float(c["logged_metric"]) and r["clean"] == pytest.approx(c["metric"])
        assert set(c["firing_rate"]) == {"layer0", "layer1", "layer2"} and c["samples"] == 100
        assert set(r["perturbations"]) == {"event_drop", "pixel_drop", "jitter", "weight_noise"}
        assert all(p["values"][0] == r["clean"] for p in r["perturbations"].values())
    # the event frames are event counts: one AC per event per synapse (standard), never a MAC, never dense
    c = json.load(open(exp / "log" / "cost_nmnist_snn_1111.json"))
    assert c["per_weight"]["hcnn_layers.0.scnn_fc"]["acs"] > 0 == c["per_weight"]["hcnn_layers.0.scnn_fc"]["macs"]
    assert "hcnn_layers.0.rcnn_fv" not in c["per_weight"]


def test_dvs_gesture_cost_and_event_drop(tmp_path):
    import subprocess
    from event_writers import write_gesture_recording
    folder = tmp_path / "DvsGesture"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k, name in enumerate(["user01_lab", "user02_led", "user23_lab", "user24_lab", "user29_natural"]):
        start = 1_000_000
        t = np.sort(rng.integers(start, start + 300_000, 300))
        xyp = np.stack([rng.integers(0, 128, 300), rng.integers(0, 128, 300), rng.integers(0, 2, 300)], 1)
        write_gesture_recording(str(folder), name, t, xyp, [(k % 11 + 1, start, start + 300_000)])
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "data", "dvs-hdf5-gen.py"), "--root", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr
    exp = tmp_path / "rcnn-dvs-ges-128-0.5-0.3-0.5"
    exp.mkdir()
    open(exp / "rcnn-dvs-ges.py", "w").write(open(os.path.join(ROOT, "experiments", exp.name, "rcnn-dvs-ges.py")).read())
    flags = ["--data", folder, "--channels", "4,4,4", "--nwin", 3, "--ds", 16, "--batch_size", 2, "--device", "cpu"]
    assert run_script(str(exp / "rcnn-dvs-ges.py"), flags + ["--model", "snn", "--test_interval", 1,
                                                             "--stage1_epochs", 1], str(exp)) == 0
    assert evaluate("both", "--experiment", exp, "--model", "snn", *flags, "--event_drop", "0,1", "--pixel_drop", "",
                    "--jitter", "", "--weight_noise", "") == 0
    c = json.load(open(exp / "log" / "cost_dvsGesture_snn_1111.json"))
    r = json.load(open(exp / "log" / "robust_dvsGesture_snn_1111.json"))
    assert c["samples"] == 2 and round(c["metric"], 5) == float(c["logged_metric"])
    assert list(r["perturbations"]) == ["event_drop"] and r["perturbations"]["event_drop"]["values"][0] == r["clean"]
