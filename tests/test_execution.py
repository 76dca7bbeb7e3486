"""The execution setting: `--definition` governs every forward of every stage, and the default path's
contract with the definition (spikes identical, values within float32 rounding) over a sweep of shapes."""
import json
import os
import random
import re
import shutil

import pytest
import torch
import torch.nn.functional as F

import common.hessian as hessian
import common.training as training
from common import execution
from common.fast import lif as fast_lif, rcnn as fast_rcnn, rnn as fast_rnn
from common.hybrid_conv import HybridConvNet, build_configs, population_channels
from common.hybrid_fc import HybridFC
from common.training import KitError
from conftest import ROOT, run_script
from idx import write_fake_mnist
from test_event_pipelines import dvs_root, nmnist_root  # noqa: F401 (fixtures)
from tiny import TinyNet

PTB = os.path.join(ROOT, "experiments", "rnn-ptb-650-0.5-0.6", "rnn-ptb.py")
SMNIST = os.path.join(ROOT, "experiments", "rnn-smnist-800-0.5-0.6", "rnn-smnist.py")
NMNIST = os.path.join(ROOT, "experiments", "rcnn-nmnist-128-0.25-0.3-0.3", "rcnn-nmnist.py")
DVS = os.path.join(ROOT, "experiments", "rcnn-dvs-ges-128-0.5-0.3-0.5", "rcnn-dvs-ges.py")
FLAGS = {
    PTB: ["--nhid", 6, "--emsize", 5, "--bptt", 5, "--batch_size", 4, "--log-interval", 20, "--stage1_epochs", 1,
          "--stage2_epochs", 2, "--hessian_probes", 4],
    SMNIST: ["--nhid", 6, "--batch_size", 40, "--log-interval", 2, "--stage1_epochs", 1, "--stage2_epochs", 2,
             "--hessian_probes", 4, "--stage1_lr", 3e-3, "--stage2_lr", 3e-3, "--cell", "lstm"],
    NMNIST: ["--channels", "4,4,4", "--nwin", 3, "--batch_size", 50, "--stage1_epochs", 1, "--stage2_epochs", 2,
             "--log-interval", 1, "--hessian_probes", 2, "--hessian_batch", 10],
    DVS: ["--channels", "4,4,4", "--nwin", 3, "--ds", 16, "--batch_size", 2, "--test_interval", 1, "--stage1_epochs", 1,
          "--stage2_epochs", 2, "--hessian_probes", 2, "--hessian_batch", 3],
}
NAMES = {PTB: "ptb", SMNIST: "mnist", NMNIST: "nmnist", DVS: "dvsGesture"}
SCRIPTS = pytest.mark.parametrize("script", [PTB, SMNIST, NMNIST, DVS], ids=["ptb", "smnist-lstm", "nmnist", "dvs"])
FAST = [(HybridFC, "forward_fast"), (HybridConvNet, "forward_fast"), (fast_lif._LIFMultiStep, "forward"),
        (fast_rnn._RNNScan, "forward"), (fast_rcnn._RCNNScan, "forward"), (fast_rcnn._AvgPool, "forward")]
DEFINITION = [(HybridFC, "forward_definition"), (HybridConvNet, "forward_definition")]


def data_flags(script, tmp_path, corpus, nmnist_root, dvs_root):
    if script == DVS:
        return ["--data", os.path.join(dvs_root, "DvsGesture", "dvs_gestures_events.hdf5")]
    if script == PTB:
        return ["--data", corpus]
    if script == SMNIST:
        return ["--data", write_fake_mnist(str(tmp_path / "mnist"), n_train=80, n_test=40)]
    return ["--data", os.path.join(nmnist_root, "N-MNIST", "processed")]


@pytest.fixture
def calls(monkeypatch):
    """Count the calls of every fast-path function and of the definitions; Hessian products one probe each."""
    counts = {}
    for owner, name in FAST + DEFINITION:
        original = getattr(owner, name)
        key = f"{owner.__name__}.{name}"
        counts[key] = 0

        def counted(*args, _original=original, _key=key, **kwargs):
            counts[_key] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(owner, name, staticmethod(counted) if name == "forward" else counted)
    probe_batches = counts["probes per product"] = set()
    original_probes = hessian._probe_values

    def probes(grads, params, batch, groups):
        probe_batches.add(len(batch))
        return original_probes(grads, params, batch, groups)

    monkeypatch.setattr(hessian, "_probe_values", probes)
    return counts


@SCRIPTS
def test_definition_runs_no_fast_path_code_in_any_stage(script, tmp_path, corpus, nmnist_root, dvs_root,  # noqa: F811
                                                        calls, monkeypatch):
    flags = FLAGS[script] + ["--device", "cpu", "--threads", "1"] + data_flags(script, tmp_path, corpus, nmnist_root, dvs_root)
    cwd = str(tmp_path)
    for mode in ("train1", "train2", "test2"):
        reset(calls)
        assert run_script(script, flags + ["--model", "hybrid", "--mode", mode, "--ratio", 0.5, "--definition"], cwd) == 0
        assert all(calls[f"{o.__name__}.{n}"] == 0 for o, n in FAST), (mode, calls)
        assert sum(calls[f"{o.__name__}.{n}"] for o, n in DEFINITION) > 0, mode
        assert calls["probes per product"] <= {1}
        assert calls["probes per product"] == ({1} if mode == "train2" else set())
        name = NAMES[script] + "_hybrid_1111" + ("_0.5" if mode != "train1" else "")
        record = os.path.join(cwd, "log", f"{'test' if mode == 'test2' else 'train'}_{name}.json")
        assert json.load(open(record))["execution"] == "definition"
    # the same instruments see the fast path of a default run (another ratio), in Selection and in Restoration
    reset(calls)
    before_restoration = []
    original = training.Checkpoint.restore
    monkeypatch.setattr(training.Checkpoint, "restore", lambda *a, **k: before_restoration.append(fast_forwards(calls))
                        or original(*a, **k))
    assert run_script(script, flags + ["--model", "hybrid", "--mode", "train2", "--ratio", 0.25, "--truncate_counts"],
                      cwd) == 0
    assert fast_forwards(calls) > before_restoration[0] > 0
    record = os.path.join(cwd, "log", f"train_{NAMES[script]}_hybrid_1111_0.25.json")
    assert json.load(open(record))["execution"] == "torch"


def reset(calls):
    for key in calls:
        if key == "probes per product":
            calls[key].clear()
        else:
            calls[key] = 0


def fast_forwards(calls):
    return calls["HybridFC.forward_fast"] + calls["HybridConvNet.forward_fast"]


def masked_log(path):
    text = open(path).read()
    text = re.sub(r" *\d+\.\d+ ms/batch", " <ms>", text)
    return re.sub(r"time: *\d+\.\d+s", "time: <t>", text)


@SCRIPTS
def test_definition_restoration_equals_the_definition_forced_everywhere(script, tmp_path, corpus, nmnist_root,  # noqa: F811
                                                                        dvs_root, monkeypatch):
    """train2 --definition from one Adaptation checkpoint = train2 with every forward patched to the definition."""
    flags = FLAGS[script] + ["--device", "cpu", "--threads", "1"] + data_flags(script, tmp_path, corpus, nmnist_root, dvs_root)
    train2 = flags + ["--model", "hybrid", "--mode", "train2", "--ratio", 0.5]
    flag, forced = os.path.join(str(tmp_path), "flag"), os.path.join(str(tmp_path), "forced")
    os.makedirs(flag)
    assert run_script(script, flags + ["--model", "hybrid", "--definition"], flag) == 0
    shutil.copytree(flag, forced)
    assert run_script(script, train2 + ["--definition"], flag) == 0
    with monkeypatch.context() as m:
        m.setattr(HybridFC, "forward_fast", lambda self, x, hidden: self.forward_definition(x, hidden))
        m.setattr(HybridConvNet, "forward_fast", lambda self, inputs: self.forward_definition(inputs))
        assert run_script(script, train2, forced) == 0
    name = NAMES[script] + "_hybrid_1111_0.5"
    a, b = (torch.load(os.path.join(d, "checkpoint", f"{name}.t7"), weights_only=True) for d in (flag, forced))
    assert a["net"].keys() == b["net"].keys()
    for key in a["net"]:
        assert torch.equal(a["net"][key], b["net"][key]), key
    assert masked_log(os.path.join(flag, "log", f"train_{name}.log")) == \
        masked_log(os.path.join(forced, "log", f"train_{name}.log"))


# -- the setting itself ---------------------------------------------------------------------------------------
def test_settings_per_device_and_flags(capsys, tmp_path, corpus):
    assert execution.supported("cpu") == ("definition", "torch") and execution.default("cpu") == "torch"
    with pytest.raises(KitError, match="--execution triton is not available on cpu"):
        execution.set_execution("triton", "cpu")
    with pytest.raises(KitError, match="--definition contradicts --execution torch"):
        execution.from_args(type("A", (), dict(definition=True, execution="torch"))(), "cpu")
    flags = FLAGS[PTB] + ["--device", "cpu", "--data", corpus, "--model", "rnn"]
    for extra, line in [([], "execution: torch (the default on this device)"),
                        (["--mode", "test1", "--execution", "torch"], "execution: torch"),
                        (["--mode", "test1", "--definition"], "execution: definition")]:
        capsys.readouterr()
        assert run_script(PTB, flags + extra, str(tmp_path)) == 0
        assert line in capsys.readouterr().out.splitlines()
    capsys.readouterr()
    assert run_script(PTB, flags + ["--mode", "test1", "--execution", "triton"], str(tmp_path)) == 2
    assert "--execution triton is not available on cpu" in capsys.readouterr().err


# -- the default path against the definition, over shapes --------------------------------------------------
# The claim docs/fidelity.md makes for float32 on the CPU: spikes identical; network outputs, RNN/LSTM states and
# gradients differ from the definition's by float rounding only, at most these fractions of each tensor's
# largest magnitude.
OUTPUT_RTOL, GRAD_RTOL = 1e-6, 1e-5


def relative(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item() if a.numel() else 0.0


def fc_cases(n=24):
    rng = random.Random(0)
    cases = [("rnn", 1, 1, 3, 4, 5), ("lstm", 64, 40, 30, 31, 16), ("rnn", 64, 40, 17, 9, 31), ("lstm", 1, 40, 8, 4, 9)]
    while len(cases) < n:  # batch 1..64, sequence 1..40, input width != hidden width, odd and even widths
        cases.append((rng.choice(["rnn", "lstm"]), rng.choice([1, 2, 3, 7, 16, 25, 33, 64]), rng.choice([1, 2, 5, 13, 25, 40]),
                      rng.choice([3, 8, 17, 30]), rng.choice([4, 9, 16, 31]), rng.choice([4, 9, 16, 31])))
    return cases


def both_paths(net, forward, params):
    results = []
    for name in ("definition", "torch"):
        with execution.using(name):
            net.zero_grad()
            outputs, loss = forward()
            loss.backward()
            results.append(([o.detach() for o in outputs], [p.grad.clone() for p in params()]))
    return results


@pytest.mark.parametrize("cell,B,T,ninp,r,s", fc_cases())
def test_fc_default_path_against_the_definition(cell, B, T, ninp, r, s):
    torch.manual_seed(B * 1000 + T * 10 + r)
    net = TinyNet(ninp, [r, r - 1], [s, s + 1], cell)  # odd and even widths in every case
    with torch.no_grad():
        net.snn_fc1.mul_(3)  # enough drive for the spikes to matter
        net.snn_fc2.mul_(3)
    x, y = torch.randn(T, B, ninp), torch.randint(0, 3, (T * B,))
    hidden = tuple(h + 0.1 for h in net.init_hidden(B))

    def forward():
        spikes, states, last = net.run(x, hidden)
        out = net.readout(torch.cat([spikes, states], 2))
        return [spikes, states, out, *last], F.cross_entropy(out.reshape(-1, 3), y)

    (ref, ref_grads), (got, grads) = both_paths(net, forward, net.parameters)
    assert ref[0].sum() > 0 and torch.equal(got[0], ref[0])  # spikes
    for a, b in zip(got[1:], ref[1:]):
        assert relative(a, b) <= OUTPUT_RTOL
    for a, b in zip(grads, ref_grads):
        assert relative(a, b) <= GRAD_RTOL


@pytest.mark.parametrize("model,kind,channels,B,T,size", [
    ("hybrid", "tanh", [3, 5, 4], 5, 8, 12), ("hybrid", "relu", [6, 4, 2], 2, 1, 12), ("ffs", "relu", [6, 4, 2], 1, 12, 12),
    ("rnn", "relu", [3, 5, 4], 3, 3, 8), ("snn", "tanh", [2, 2], 5, 3, 12), ("hybrid", "relu", [4, 6], 8, 5, 8)])
def test_conv_default_path_against_the_definition(model, kind, channels, B, T, size):
    neuron = dict(decay=0.3, thresh=0.5, lens=0.5) if kind == "tanh" else dict(decay=0.3, thresh=0.3, lens=0.25)
    torch.manual_seed(B + T)
    rc, sc = population_channels(model, channels, 0.5)
    net = HybridConvNet(*build_configs(channels, rc, sc, 2, size, 5, 1), rcnn=kind, **neuron)
    x = (torch.rand(B, 2, size, size, T) < 0.3).float() * 3
    target = torch.eye(5)[torch.arange(B) % 5]

    def forward():
        out = net(x)
        return [out], F.mse_loss(out, target)

    (ref, ref_grads), (got, grads) = both_paths(net, forward, net.parameters)
    assert relative(got[0], ref[0]) <= OUTPUT_RTOL
    for a, b in zip(grads, ref_grads):
        assert relative(a, b) <= GRAD_RTOL
