"""LSTM neurons in the hybrid layer: the step definition against torch.nn.LSTMCell, the Hessian and
importance of an LSTM neuron (all four gates, input and recurrent weights), shrink = mask, and the
three-stage pipeline end to end for PTB and S-MNIST with the lstm-*.py scripts."""
import os
import runpy
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from common.hessian import draw_probes, hutchinson_traces, importance
from conftest import ROOT, run_script
from idx import write_fake_mnist
from test_hessian import block_indices, exact_hessian, loss_of
from tiny import tiny_net

LSTM_PTB = os.path.join(ROOT, "experiments", "lstm-ptb-650-0.5-0.6", "lstm-ptb.py")
LSTM_SMNIST = os.path.join(ROOT, "experiments", "lstm-smnist-800-0.5-0.6", "lstm-smnist.py")
AGGREGATOR = os.path.join(ROOT, "latex-code-gen.py")
PTB_SMALL = ["--nhid", 8, "--emsize", 8, "--bptt", 6, "--batch_size", 4, "--log-interval", 20, "--device", "cpu",
             "--stage1_epochs", 2, "--stage2_epochs", 1, "--hessian_probes", 6]
SMNIST_SMALL = ["--nhid", 8, "--batch_size", 50, "--log-interval", 2, "--device", "cpu", "--stage1_epochs", 1,
                "--stage2_epochs", 1, "--hessian_probes", 6, "--stage1_lr", 3e-3]
T, B = 4, 3


def lstm_cell_like(w_in, w_rec):
    """torch.nn.LSTMCell (no bias) holding the hybrid layer's LSTM weights: gate order i, f, g, o in both."""
    cell = nn.LSTMCell(w_in.shape[1], w_in.shape[2], bias=False).double()
    with torch.no_grad():
        cell.weight_ih.copy_(torch.cat([w_in[g].t() for g in range(4)], 0))
        cell.weight_hh.copy_(torch.cat([w_rec[g].t() for g in range(4)], 0))
    return cell


@pytest.mark.parametrize("fast", [False, True])
def test_hybrid_layer_without_snn_is_a_plain_lstm(fast):
    net = tiny_net(ninp=3, rnn=(5, 4), snn=(0, 0), cell="lstm", scale=1.0)
    net.fast = fast
    torch.manual_seed(3)
    x = torch.randn(T, B, 3, dtype=torch.float64) * 2
    hidden = tuple(torch.randn_like(h) * 0.5 for h in net.init_hidden(B))  # (h1, h2, c1, c2)
    spikes, states, (h1, h2, c1, c2) = net.run(x, hidden)
    assert spikes.shape == (T, B, 0)
    cells = [lstm_cell_like(net.lstm_wi1, net.lstm_wh1), lstm_cell_like(net.lstm_wi2, net.lstm_wh2)]
    h, c = [hidden[0], hidden[1]], [hidden[2], hidden[3]]
    for t in range(T):
        inp = x[t]
        for i in range(2):
            h[i], c[i] = cells[i](inp, (h[i], c[i]))
            inp = h[i]
        assert torch.allclose(states[t], h[1], atol=1e-12, rtol=0)
    for ours, theirs in zip((h1, h2, c1, c2), (h[0], h[1], c[0], c[1])):
        assert torch.allclose(ours, theirs, atol=1e-12, rtol=0)


def test_lstm_neuron_block_is_the_authors_union_column():
    """An LSTM neuron's block is column c of the authors' union cat(lstm_wi, lstm_wh, dim=1) [4, in+hid, hid]
    over all four gates; probes are drawn in the union's shape; importance divides by 4*(in+hid)."""
    net = tiny_net(ninp=3, rnn=(5, 4), snn=(2, 3), cell="lstm")
    groups = net.probed_groups()
    assert list(groups) == ["snn1", "snn2", "rnn1", "rnn2"]
    union = torch.cat([net.lstm_wi2, net.lstm_wh2], 1).detach()  # [4, (2 + 5) + 4, 4]
    assert groups["rnn2"][1:] == (1, 2) and union.shape == (4, 11, 4)
    torch.manual_seed(9)
    probes = draw_probes(groups)
    torch.manual_seed(9)
    expected = [torch.randint(0, 2, shape, dtype=torch.float64) * 2 - 1 for shape in
                [(3, 2), (7, 3), (4, 8, 5), (4, 11, 4)]]  # snn1, snn2, union rnn1, union rnn2 in the authors' order
    assert torch.equal(torch.cat(probes[4:6], 1), expected[3])
    traces = {k: torch.arange(1.0, 1 + ts[0].shape[nd]) for k, (ts, _, nd) in groups.items()}
    scores = importance(traces, groups)
    channels = union.permute(2, 0, 1)  # the authors' hessian_fact / pruner view: [hid, 4, in + hid]
    authors = traces["rnn2"] * (channels.reshape(4, -1) ** 2).sum(1) / channels[0].numel()
    assert channels[0].numel() == 4 * 11 and torch.allclose(scores["rnn2"], authors.float())


def test_lstm_hessian_probe_values_are_exact():
    net = tiny_net(ninp=3, rnn=(3, 2), snn=(2, 3), cell="lstm")
    net.fast = False
    torch.manual_seed(5)
    x, y = torch.randn(T, B, 3, dtype=torch.float64) * 2, torch.randint(0, 3, (T * B,))
    groups = net.probed_groups()
    order = [next(n for n, p in net.named_parameters() if p is t) for ts, _, _ in groups.values() for t in ts]
    assert order == ["snn_fc1", "snn_fc2", "lstm_wi1", "lstm_wh1", "lstm_wi2", "lstm_wh2"]
    H, shapes, sizes = exact_hessian(net, x, y, order)
    blocks = block_indices(groups, shapes, sizes)
    assert blocks["rnn1"].shape == (3, 4 * (3 + 3)) and blocks["rnn2"].shape == (2, 4 * (2 + 3 + 2))
    torch.manual_seed(11)
    values = hutchinson_traces(loss_of(net, x, y), groups, n_probes=2)
    torch.manual_seed(11)
    for probe in range(2):
        v = torch.cat([t.reshape(-1) for t in draw_probes(groups)])
        hv = H @ v
        for key, idx in blocks.items():
            assert torch.allclose(values[key][probe], (v[idx] * hv[idx]).sum(1), atol=1e-10), key
    assert H[blocks["snn2"].reshape(-1)][:, blocks["rnn2"].reshape(-1)].abs().sum() > 0


def test_ptb_lstm_model_shrink_equals_masking():
    ptb = runpy.run_path(LSTM_PTB, run_name="lstm_ptb")["rnn_ptb"]
    torch.manual_seed(0)
    model = ptb.PTBModel(20, 6, [5, 4], [3, 6], dropout=0.5, cell="lstm").double().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(("snn_", "lstm_")):
                p.mul_(30)  # the authors' 3-D kaiming bound is tiny: scale up so that neurons spike
    keep = {"rnn1": [1, 4], "rnn2": [0, 2, 3], "snn1": [0, 2], "snn2": [1, 5]}
    small = model.shrunk(keep).eval()  # a freshly built module is in training mode (dropout on)
    assert small.lstm_wi2.shape == (4, 2 + 2, 3) and small.lstm_wh1.shape == (4, 2, 2)
    tokens = torch.randint(0, 20, (T, B))
    emb = model.encoder(tokens)
    spikes, states, hidden = model.forward_definition(emb, model.init_hidden(B), masks=model.masks_for(keep))
    masked = model.decoder(torch.cat([spikes, states], 2))
    assert spikes.sum() > 0
    for fast in (True, False):
        small.fast = fast
        out, small_hidden = small(tokens, small.init_hidden(B))
        assert torch.allclose(out, masked, atol=1e-10)
        assert torch.allclose(small_hidden[1], hidden[1][:, keep["rnn2"]], atol=1e-12)
        assert torch.allclose(small_hidden[3], hidden[3][:, keep["rnn2"]], atol=1e-12)  # cell state c2


def last_value(log, width):
    lines = open(log).read().splitlines()
    assert lines[-3] == "=" * width and lines[-1] == "=" * width and lines[-2].startswith("| Performance on Test Set")
    return float(lines[-2].split()[-1])


def test_lstm_ptb_pipeline_end_to_end(tmp_path, corpus, capsys):
    d = str(tmp_path / "lstm-ptb-650-0.5-0.6")  # the aggregator tells LSTM experiments by the folder name
    os.makedirs(d)

    def run(*args):
        return run_script(LSTM_PTB, PTB_SMALL + ["--data", corpus] + [str(a) for a in args], d)

    capsys.readouterr()
    assert run("--model", "hybrid", "--mode", "train2") == 2  # no Adaptation yet: the fix names this script
    assert "python lstm-ptb.py --model hybrid --mode train1 --seed 1111" in capsys.readouterr().err
    for model, extra in [("lstm", []), ("snn", []), ("ffs", ["--ratio", 0.5]), ("hybrid", [])]:
        assert run("--model", model, "--mode", "train1", *extra) == 0
        assert run("--model", model, "--mode", "test1", *extra) == 0
    assert run("--model", "hybrid", "--mode", "train2", "--ratio", 0.5) == 0
    proc = subprocess.run([sys.executable, LSTM_PTB, "--data", corpus, "--model", "hybrid", "--mode", "test2",
                           "--ratio", "0.5", "--device", "cpu", "--batch_size", "4", "--bptt", "6"],
                          cwd=d, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for name in ["ptb_lstm_1111", "ptb_snn_1111", "ptb_ffs_1111_0.5", "ptb_hybrid_1111", "ptb_hybrid_1111_0.5"]:
        assert last_value(f"{d}/log/train_{name}.log", 89) == last_value(f"{d}/log/test_{name}.log", 89)
    for name in ["ptb_lstm_1111", "ptb_ffs_1111_0.5", "ptb_hybrid_1111"]:
        ckpt = torch.load(f"{d}/checkpoint/{name}.t7", weights_only=True)
        assert ckpt["cell"] == "lstm" and "lstm_wh2" in ckpt["net"] and "rnn_fv2" not in ckpt["net"]
    lines = open(f"{d}/log/train_ptb_hybrid_1111_0.5.log").read().splitlines()
    counts = {l.split(":")[0]: int(l.split(":")[1]) for l in lines if "_layer[" in l}
    r0, r1, s0, s1 = (counts[k] for k in ("rnn_layer[0]", "rnn_layer[1]", "snn_layer[0]", "snn_layer[1]"))
    assert r0 + r1 == 8 and s0 + s1 == 8
    net = torch.load(f"{d}/checkpoint/ptb_hybrid_1111_0.5.t7", weights_only=True)["net"]
    assert net["lstm_wi1"].shape == (4, 8, r0) and net["lstm_wh1"].shape == (4, r0, r0)
    assert net["lstm_wi2"].shape == (4, s0 + r0, r1) and net["lstm_wh2"].shape == (4, r1, r1)
    assert net["snn_fc2"].shape == (s0 + r0, s1) and net["decoder.weight"].shape[1] == s1 + r1
    table = open(f"{d}/traces/ptb_hybrid_1111_0.5_importance.csv").read().splitlines()
    assert len(table) == 1 + 32 and {r.split(",")[0] for r in table[1:]} == {"snn1", "snn2", "rnn1", "rnn2"}

    if not os.path.exists(AGGREGATOR):
        pytest.skip("latex-code-gen.py is not in this checkout")
    out = str(tmp_path / "results")
    assert run_script(AGGREGATOR, ["--experiment", d, "--out", out, "--no-plots", "--profile-csv",
                                   str(tmp_path / "profile.csv")], str(tmp_path)) == 0
    rows = [l.split(", ") for l in open(f"{out}/ptb-LSTM-hybrid.csv").read().splitlines() if l]
    assert rows[0] == ["type", "1111", "avg", "squ"] and [r[0] for r in rows[1:]] == ["lstm", "0.50", "snn"]
    assert float(rows[2][1]) == round(last_value(f"{d}/log/test_ptb_hybrid_1111_0.5.log", 89), 2)
    assert os.path.exists(f"{out}/ptb-LSTM-ffs.csv")


def test_lstm_smnist_pipeline_end_to_end(tmp_path, capsys):
    mnist = write_fake_mnist(str(tmp_path / "data"), n_train=200, n_test=100)
    d = str(tmp_path / "lstm-smnist-800-0.5-0.6")
    os.makedirs(d)

    def run(*args):
        return run_script(LSTM_SMNIST, SMNIST_SMALL + ["--data", mnist] + [str(a) for a in args], d)

    assert run("--model", "lstm", "--mode", "train1") == 0
    assert run("--model", "hybrid", "--mode", "train1") == 0
    assert run("--model", "hybrid", "--mode", "train2", "--ratio", 0.25) == 0
    proc = subprocess.run([sys.executable, LSTM_SMNIST, "--data", mnist, "--model", "hybrid", "--mode", "test2",
                           "--ratio", "0.25", "--device", "cpu"], cwd=d, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert last_value(f"{d}/log/train_mnist_hybrid_1111_0.25.log", 83) == \
        last_value(f"{d}/log/test_mnist_hybrid_1111_0.25.log", 83)
    assert os.path.exists(f"{d}/log/train_mnist_lstm_1111.log")
    ckpt = torch.load(f"{d}/checkpoint/mnist_hybrid_1111_0.25.t7", weights_only=True)
    r0, r1 = ckpt["rnn_shape"]
    s0, s1 = ckpt["snn_shape"]
    assert ckpt["cell"] == "lstm" and r0 + r1 == 12 and s0 + s1 == 4
    assert ckpt["net"]["lstm_wi2"].shape == (4, s0 + r0, r1) and ckpt["net"]["all_fc.weight"].shape == (10, s1 + r1)
    capsys.readouterr()
    assert run("--model", "rnn", "--mode", "train1") == 2  # this folder's non-spiking neurons are LSTMs
    assert "--model rnn contradicts --cell lstm" in capsys.readouterr().err
