"""The CUDA paths (Triton LIF kernels, CUDA-graph RNN scans, batched Hessian probes, the experiment
scripts with --device cuda) against the definition. Every test here needs a CUDA device."""
import os

import pytest
import torch
import torch.nn.functional as F

from common.hessian import hutchinson_traces, hutchinson_traces_reference
from common.hybrid_conv import HybridConvNet, build_configs, population_channels
from conftest import ROOT, run_script, write_corpus
from idx import write_fake_mnist
from test_fast_lif import CONSTS, compare, randn
from tiny import tiny_net

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def exact_float32():
    """No TF32: the definition and the fast path must round the same way."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("backend", ["triton", "torch"])
@pytest.mark.parametrize("shape", [(35, 25, 1300), (60, 2, 16, 32, 32), (3, 1, 700)])
@pytest.mark.parametrize("consts", CONSTS)
def test_lif_kernels_equal_the_definition(backend, shape, consts):
    if backend == "triton":
        pytest.importorskip("triton")
    s_ref, g_ref, s, g = compare(randn(shape, consts[1] * 0.5, 0.6).cuda(), consts, backend)
    assert 0.05 < s_ref.mean() < 0.95
    assert torch.equal(s, s_ref)
    torch.testing.assert_close(g, g_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("graphs", [True, False])
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_fc_training_pass_equals_the_definition(cell, graphs, monkeypatch):
    import common.fast.rnn
    monkeypatch.setattr(common.fast.rnn, "GRAPHS", graphs)
    net = tiny_net(ninp=16, rnn=(64, 48), snn=(64, 48), cell=cell).float().cuda()
    torch.manual_seed(0)
    x, y = (torch.randn(12, 5, 16) * 2).cuda(), torch.randint(0, 3, (12 * 5,)).cuda()
    results = []
    for fast in (False, True, True):  # the second fast pass replays the captured graphs
        net.fast = fast
        net.zero_grad()
        spikes, states, hid = net.run(x, tuple(h + 0.1 for h in net.init_hidden(5)))
        loss = F.cross_entropy(net.readout(torch.cat([spikes, states], 2)).reshape(-1, 3), y) + hid[0].sum()
        loss.backward()
        results.append([spikes, states] + [p.grad.clone() for p in net.parameters()])
    assert 0.05 < results[0][0].mean() < 0.95
    for fast in results[1:]:
        assert torch.equal(fast[0], results[0][0])
        for a, b in zip(fast[1:], results[0][1:]):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_hessian_traces_fast_and_batched_equal_the_definition(cell):
    net = tiny_net(ninp=6, rnn=(20, 16), snn=(20, 16), cell=cell).cuda()  # float64
    torch.manual_seed(5)
    x, y = (torch.randn(8, 4, 6, dtype=torch.float64) * 2).cuda(), torch.randint(0, 3, (8 * 4,)).cuda()
    hidden = tuple(h + 0.1 for h in net.init_hidden(4))
    loss = lambda: F.cross_entropy(net(x, hidden)[0].reshape(-1, 3), y)
    values = {}
    for name, fast, kw in [("definition", False, dict(reference=True)), ("fast", True, dict(probe_batch=1)),
                           ("fast batched", True, dict(probe_batch=4))]:
        net.fast = fast
        torch.manual_seed(123)
        fn = hutchinson_traces_reference if kw.pop("reference", False) else hutchinson_traces
        values[name] = fn(loss(), net.probed_groups(), 10, **kw)
    for key, ref in values["definition"].items():
        assert ref.abs().max() > 0
        for name in ("fast", "fast batched"):
            torch.testing.assert_close(values[name][key], ref, rtol=1e-9, atol=1e-12)


def test_conv_training_pass_equals_the_definition():
    rc, sc = population_channels("hybrid", [8, 12, 8])
    net = HybridConvNet(*build_configs([8, 12, 8], rc, sc, 2, 16, 5), decay=0.3, thresh=0.5, lens=0.5).cuda()
    g = torch.Generator().manual_seed(0)
    x = ((torch.rand(3, 2, 16, 16, 10, generator=g) < 0.3).float() * 2).cuda()
    results = []
    for fast in (False, True):
        net.fast = fast
        net.zero_grad()
        out = net(x)
        F.mse_loss(out, torch.eye(5, device="cuda")[:3]).backward()
        results.append([out] + [p.grad.clone() for p in net.parameters()])
    for a, b in zip(results[1], results[0]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_ptb_script_on_cuda_agrees_with_cpu(tmp_path):
    script = os.path.join(ROOT, "experiments", "rnn-ptb-650-0.5-0.6", "rnn-ptb.py")
    corpus = write_corpus(str(tmp_path / "ptb"))
    flags = ["--data", corpus, "--nhid", 16, "--emsize", 16, "--bptt", 6, "--batch_size", 4, "--stage1_epochs", 2,
             "--stage2_epochs", 1, "--hessian_probes", 20, "--log-interval", 50]
    d = str(tmp_path / "run")
    os.makedirs(d)
    assert run_script(script, flags + ["--device", "cuda", "--mode", "train1"], d) == 0
    assert run_script(script, flags + ["--device", "cuda", "--mode", "train2", "--ratio", 0.25], d) == 0
    log = open(f"{d}/log/train_ptb_hybrid_1111_0.25.log").read().splitlines()
    counts = {l.split(":")[0]: int(l.split(":")[1]) for l in log if "_layer[" in l}
    assert sum(v for k, v in counts.items() if k.startswith("snn")) == 8 and sum(counts.values()) == 32
    assert run_script(script, flags + ["--device", "cpu", "--mode", "test2", "--ratio", 0.25], d) == 0  # CUDA-trained, tested on the CPU
    ppl = [float(open(f"{d}/log/{k}_ptb_hybrid_1111_0.25.log").read().splitlines()[-2].split()[-1]) for k in ("train", "test")]
    assert abs(ppl[0] - ppl[1]) <= 0.011 + 1e-4 * ppl[0]  # printed with 2 decimals


def test_smnist_script_on_cuda(tmp_path):
    script = os.path.join(ROOT, "experiments", "rnn-smnist-800-0.5-0.6", "rnn-smnist.py")
    mnist = write_fake_mnist(str(tmp_path / "data"), n_train=200, n_test=100)
    flags = ["--data", mnist, "--nhid", 16, "--batch_size", 50, "--stage1_epochs", 1, "--stage2_epochs", 1,
             "--hessian_probes", 10, "--device", "cuda"]
    d = str(tmp_path / "run")
    os.makedirs(d)
    assert run_script(script, flags + ["--mode", "train1"], d) == 0
    assert run_script(script, flags + ["--mode", "train2", "--ratio", 0.5], d) == 0
    ckpt = torch.load(f"{d}/checkpoint/mnist_hybrid_1111_0.5.t7", weights_only=True, map_location="cpu")
    assert sum(ckpt["rnn_shape"]) == 16 and sum(ckpt["snn_shape"]) == 16
