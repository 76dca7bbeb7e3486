"""The fast paths equal their definitions: the RNN scan node (first and second order), Hessian traces
through the layer-major path, batched probes, and the authors' per-neuron bookkeeping."""
import pytest
import torch
import torch.nn.functional as F

import common.hessian as hessian
from common.hessian import hutchinson_traces, hutchinson_traces_reference
from common.fast.lstm import lstm_multistep
from common.fast.rcnn import rcnn_multistep
from common.fast.rnn import rnn_multistep
from common.hybrid_conv import HybridConvNet, build_configs, population_channels
from common.neurons import lstm_step, rcnn_step, rnn_step
from tiny import tiny_net

T, B = 5, 3


def rnn_steps(pre, h, w):
    """neurons.rnn_step T times, its input product given (an identity W_fc: x @ I = x exactly)."""
    states, eye = [], torch.eye(pre.shape[-1], dtype=pre.dtype)
    for p in pre:
        h = rnn_step(p, h, eye, w)
        states.append(h)
    return torch.stack(states)


def test_rnn_multistep_equals_rnn_step():
    """First and second order."""
    g = torch.Generator().manual_seed(0)
    pre, h0 = torch.randn(T, B, 6, dtype=torch.float64, generator=g), torch.rand(B, 6, dtype=torch.float64, generator=g)
    w = torch.randn(6, 6, dtype=torch.float64, generator=g)
    v = torch.randn(3, 6, 6, dtype=torch.float64, generator=g)
    results = []
    for f in (rnn_steps, rnn_multistep):
        inputs = [t.clone().requires_grad_() for t in (pre, h0, w)]
        states = f(*inputs)
        loss = (states.sin() * torch.arange(6.0, dtype=torch.float64)).sum() + states[-1].pow(3).sum()
        grads = torch.autograd.grad(loss, inputs, create_graph=True)
        hv = torch.autograd.grad(grads[2], inputs[2], v, is_grads_batched=True, retain_graph=True)[0]
        hv_pre = torch.autograd.grad(grads[2], inputs[0], v[0])[0]  # a mixed second derivative
        results.append([states, *grads, hv, hv_pre])
    for a, b in zip(*results):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)
    assert results[0][-2].abs().max() > 0


def test_lstm_multistep_equals_lstm_step():
    g = torch.Generator().manual_seed(1)
    x, h0, c0 = (torch.randn(*s, dtype=torch.float64, generator=g) for s in ((T, B, 4), (B, 5), (B, 5)))
    w_i, w_h = torch.randn(4, 4, 5, dtype=torch.float64, generator=g), torch.randn(4, 5, 5, dtype=torch.float64, generator=g)
    results = []
    for fast in (False, True):
        inputs = [t.clone().requires_grad_() for t in (x, h0, c0, w_i, w_h)]
        xs, h, c, wi, wh = inputs
        if fast:
            states, h, c = lstm_multistep(xs.reshape(T * B, -1), T, h, c, wi, wh)
        else:
            states = []
            for xt in xs:
                h, c = lstm_step(xt, h, c, wi, wh)
                states.append(h)
            states = torch.stack(states)
        loss = (states.sin() * torch.arange(5.0, dtype=torch.float64)).sum() + c.pow(2).sum()
        results.append([states, h, c, *torch.autograd.grad(loss, inputs)])
    for a, b in zip(*results):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["tanh", "relu"])
def test_rcnn_multistep_equals_rcnn_step(kind):
    """With the layer's pooling; first and second order."""
    g = torch.Generator().manual_seed(2)
    fc, fv = torch.nn.Conv2d(2, 3, 3, padding=1).double(), torch.nn.Conv2d(3, 3, 3, padding=1).double()
    x = torch.randn(T, B, 2, 6, 6, dtype=torch.float64, generator=g)
    v = torch.randn(fc.weight.shape, dtype=torch.float64, generator=g)
    results = []
    for fast in (False, True):
        fc.zero_grad(), fv.zero_grad()
        if fast:
            pooled = rcnn_multistep(fc(x.flatten(0, 1)).unflatten(0, (T, B)), fv, kind, (2, 2))
        else:
            y, ys = None, []
            for xt in x:
                y = rcnn_step(xt, y, fc, fv, kind)
                ys.append(F.avg_pool2d(y, 2, 2))
            pooled = torch.stack(ys)
        loss = (pooled.sin() * torch.arange(3.0, dtype=torch.float64).view(3, 1, 1)).sum()
        params = [fc.weight, fc.bias, fv.weight, fv.bias]
        grads = torch.autograd.grad(loss, params, create_graph=True)
        hv = torch.autograd.grad((grads[0] * v).sum(), [fc.weight, fv.weight])  # Hessian-vector products
        results.append([pooled, *grads, *hv])
    for a, b in zip(*results):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)
    assert results[0][-1].abs().max() > 0

@pytest.mark.parametrize("T", [1, 4])
def test_scan_nodes_pass_gradcheck_and_gradgradcheck(T):
    g = torch.Generator().manual_seed(T)
    rnn = [torch.randn(T, 2, 3, dtype=torch.float64, generator=g), torch.rand(2, 3, dtype=torch.float64, generator=g),
           torch.randn(3, 3, dtype=torch.float64, generator=g)]
    conv = torch.nn.Conv2d(2, 2, 3, padding=1).double()
    drive = torch.randn(T, 2, 2, 4, 4, dtype=torch.float64, generator=g)
    for f, inputs in [(rnn_multistep, rnn),
                      (lambda d, w, b: rcnn_multistep(d, DummyConv(w, b), "tanh", (2, 2)), [drive, conv.weight, conv.bias]),
                      (lambda d, w, b: rcnn_multistep(d, DummyConv(w, b), "relu", (2, 2)), [drive, conv.weight, conv.bias])]:
        inputs = [t.detach().clone().requires_grad_() for t in inputs]
        assert torch.autograd.gradcheck(f, inputs) and torch.autograd.gradgradcheck(f, inputs)


class DummyConv:
    def __init__(self, weight, bias):
        self.weight, self.bias, self.padding = weight, bias, (1, 1)


def fc_problem(cell, fast):
    net = tiny_net(ninp=3, rnn=(4, 3), snn=(3, 4), cell=cell)
    net.fast = fast
    torch.manual_seed(5)
    x, y = torch.randn(T, B, 3, dtype=torch.float64) * 2, torch.randint(0, 3, (T * B,))
    hidden = tuple(h + 0.1 for h in net.init_hidden(B))
    loss = lambda: F.cross_entropy(net(x, hidden)[0].reshape(-1, 3), y)
    return net, loss


def traces(net, loss, seed=123, **kw):
    torch.manual_seed(seed)
    values = (hutchinson_traces_reference if kw.pop("reference", False) else hutchinson_traces)(
        loss(), net.probed_groups(), **kw)
    return values, torch.rand(1)  # the RNG after the draws


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_traces_through_the_layer_major_path_equal_the_definition(cell):
    ref, after_ref = traces(*fc_problem(cell, False), n_probes=4)
    fast, after = traces(*fc_problem(cell, True), n_probes=4)
    assert torch.equal(after, after_ref)
    for key in ref:
        assert ref[key].abs().max() > 0, key
        torch.testing.assert_close(fast[key], ref[key], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_batched_probes_equal_sequential_ones(cell, fast):
    net, loss = fc_problem(cell, fast)
    seq, after_seq = traces(net, loss, n_probes=7, probe_batch=1)
    bat, after = traces(net, loss, n_probes=7, probe_batch=3)  # batches of 3, 3, 1
    assert torch.equal(after, after_seq)
    for key in seq:
        assert bat[key].shape == (7, net.population_sizes()[key])
        torch.testing.assert_close(bat[key], seq[key], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("rcnn", ["tanh", "relu"])
def test_batched_probes_equal_sequential_ones_conv(rcnn):
    rc, sc = population_channels("hybrid", [3, 4])
    net = HybridConvNet(*build_configs([3, 4], rc, sc, 2, 8, 5), decay=0.3, thresh=0.5, lens=0.5, rcnn=rcnn).double()
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 2, 8, 8, 4, generator=g) < 0.4).double() * 3
    loss = lambda: F.mse_loss(net(x), torch.eye(5, dtype=torch.float64)[:2])
    out = {}
    for fast in (False, True):
        net.fast = fast
        out[fast, 1], _ = traces(net, loss, n_probes=4, probe_batch=1)
        out[fast, 4], _ = traces(net, loss, n_probes=4, probe_batch=4)
    for key in out[False, 1]:
        assert out[False, 1][key].abs().max() > 0
        for other in ((False, 4), (True, 1), (True, 4)):
            torch.testing.assert_close(out[other][key], out[False, 1][key], rtol=1e-9, atol=1e-12)


def test_reference_bookkeeping_equals_the_reductions():
    net, loss = fc_problem("lstm", False)  # 3-D weights: the authors' permute(2, 0, 1)
    ref, after_ref = traces(net, loss, n_probes=3, reference=True)
    fast, after = traces(net, loss, n_probes=3)
    assert torch.equal(after, after_ref)
    for key in ref:
        torch.testing.assert_close(fast[key], ref[key], rtol=1e-10, atol=1e-12)


def test_out_of_memory_splits_the_probe_batch(monkeypatch):
    net, loss = fc_problem("rnn", True)
    seq, _ = traces(net, loss, n_probes=5, probe_batch=1)
    grad, sizes = torch.autograd.grad, []

    def small_memory(*args, **kw):
        if kw.get("is_grads_batched"):
            sizes.append(len(kw["grad_outputs"][0]))
            if sizes[-1] > 2:
                raise torch.OutOfMemoryError("simulated")
        return grad(*args, **kw)

    monkeypatch.setattr(hessian.torch.autograd, "grad", small_memory)
    bat, _ = traces(net, loss, n_probes=5, probe_batch=5)
    assert sizes == [5, 2, 3, 2]  # 5 -> 2 + 3, 3 -> 1 + 2 (a single probe runs unbatched)
    for key in seq:
        torch.testing.assert_close(bat[key], seq[key], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_layer_major_forward_has_the_definitions_bits_in_float32(cell):
    # the same operations in the same order (matrix rows do not depend on how many rows are
    # multiplied at once on this BLAS), so spikes cannot flip at the threshold through rounding
    net = tiny_net(ninp=16, rnn=(24, 20), snn=(24, 20), cell=cell).float()
    torch.manual_seed(0)
    x = torch.randn(12, 5, 16) * 2
    hidden = tuple(h + 0.1 for h in net.init_hidden(5))
    with torch.no_grad():
        ref, fast = net.forward_definition(x, hidden), net.forward_fast(x, hidden)
    assert 0 < ref[0].mean() < 1
    for a, b in zip(ref[:2] + ref[2], fast[:2] + fast[2]):
        assert torch.equal(a, b)


@pytest.mark.parametrize("rcnn", ["tanh", "relu"])
def test_conv_layer_major_forward_has_the_definitions_bits_in_float32(rcnn):
    rc, sc = population_channels("hybrid", [6, 8])
    net = HybridConvNet(*build_configs([6, 8], rc, sc, 2, 12, 5), decay=0.3, thresh=0.5, lens=0.5, rcnn=rcnn)
    x = (torch.rand(3, 2, 12, 12, 7, generator=torch.Generator().manual_seed(0)) < 0.4).float() * 3
    with torch.no_grad():
        outs = [net.forward_definition(x), net.forward_fast(x)]
    assert torch.equal(*outs)
