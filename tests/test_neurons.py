import importlib
import os
import re

import torch
from torch.func import grad, jvp, vmap

from common import neurons
from common.neurons import lif_step, lstm_step, rnn_step, rnn_step_union, spike, surrogate


def test_spike_is_strict_and_surrogate_is_a_window_of_area_one():
    u = torch.tensor([0.0, 0.09, 0.1, 0.1000001, 0.59, 0.6, 0.61, 1.1, 1.2], dtype=torch.float64, requires_grad=True)
    s = spike(u, 0.6, 0.5)
    assert s.tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1]  # u == thresh gives no spike
    s.sum().backward()
    # 1/(2*lens) = 1 inside |u - 0.6| < 0.5, zero outside (0.1 and 1.1 are on the open boundary)
    assert u.grad.tolist() == [0, 0, 0, 1, 1, 1, 1, 0, 0]
    u2 = torch.tensor([0.3, 0.06, 0.049, 0.54, 0.56], requires_grad=True)
    spike(u2, 0.3, 0.25).sum().backward()
    assert u2.grad.tolist() == [2, 2, 0, 2, 0]  # N-MNIST constants: height 1/(2*0.25) = 2
    x = torch.linspace(-3, 3, 600001, dtype=torch.float64)
    area = (surrogate(x, 0.0, 0.25) * (x[1] - x[0])).sum()
    assert abs(area.item() - 1.0) < 1e-4


def test_spike_works_under_torch_func():
    u = torch.tensor([0.2, 0.7, 1.5, -0.3])
    g = grad(lambda u: spike(u, 0.6, 0.5).sum())(u)
    assert g.tolist() == [1, 1, 0, 0]
    batched = vmap(lambda u: spike(u, 0.6, 0.5))(torch.stack([u, u + 1]))
    assert batched.tolist() == [[0, 1, 1, 0], [1, 1, 1, 1]]
    _, tangent = jvp(lambda u: spike(u, 0.6, 0.5), (u,), (torch.full_like(u, 3.0),))
    assert tangent.tolist() == [3, 3, 0, 0]


def test_lif_step_integrates_fires_and_resets():
    decay, thresh, lens = 0.6, 0.6, 0.5
    mem = spk = torch.zeros(1)
    trace = []
    for current in [0.4, 0.4, 0.4, 0.1]:
        mem, spk = lif_step(mem, spk, torch.tensor([current]), decay, thresh, lens)
        trace.append((round(mem.item(), 6), spk.item()))
    # 0.4 -> 0.4*0.6+0.4 = 0.64 fires -> reset: 0*0.6+0.4 = 0.4 -> 0.4*0.6+0.1 = 0.34
    assert trace == [(0.4, 0.0), (0.64, 1.0), (0.4, 0.0), (0.34, 0.0)]


def test_gradient_flows_through_the_reset():
    decay, thresh, lens = 0.6, 0.6, 0.5
    i1 = torch.tensor([0.9], requires_grad=True)
    mem, spk = lif_step(torch.zeros(1), torch.zeros(1), i1, decay, thresh, lens)  # mem 0.9, spikes
    mem2, _ = lif_step(mem, spk, torch.tensor([0.2]), decay, thresh, lens)
    mem2.backward()
    # mem2 = mem1*(1-s1)*decay + 0.2; d/dmem1 = (1-s1)*decay + mem1*(-ds1/dmem1)*decay = 0 - 0.9*1*0.6
    assert abs(i1.grad.item() - (-0.54)) < 1e-6


def test_rnn_step_and_union_form_agree():
    torch.manual_seed(0)
    x, h = torch.randn(5, 7, dtype=torch.float64), torch.rand(5, 4, dtype=torch.float64)
    w_fc, w_fv = torch.randn(7, 4, dtype=torch.float64), torch.randn(4, 4, dtype=torch.float64)
    plain = rnn_step(x, h, w_fc, w_fv)
    assert torch.allclose(plain, torch.sigmoid(x @ w_fc + h @ w_fv))
    assert torch.allclose(plain, rnn_step_union(x, h, torch.cat([w_fc, w_fv], 0)), atol=1e-14)
    xf, hf, wf, vf = x.float(), h.float(), w_fc.float(), w_fv.float()
    assert torch.allclose(rnn_step(xf, hf, wf, vf), rnn_step_union(xf, hf, torch.cat([wf, vf], 0)), atol=1e-6)


def test_lstm_step_equals_lstm_cell_arithmetic():
    torch.manual_seed(1)
    cell = torch.nn.LSTMCell(6, 3, bias=False).double()
    x, h, c = torch.randn(2, 6).double(), torch.randn(2, 3).double(), torch.randn(2, 3).double()
    # nn.LSTMCell stacks gates i, f, g, o in rows of weight_ih (4*hid, in) and uses x @ W.T
    w_i = cell.weight_ih.detach().view(4, 3, 6).transpose(1, 2)
    w_h = cell.weight_hh.detach().view(4, 3, 3).transpose(1, 2)
    h2, c2 = lstm_step(x, h, c, w_i, w_h)
    ref_h, ref_c = cell(x, (h, c))
    assert torch.allclose(h2, ref_h, atol=1e-12) and torch.allclose(c2, ref_c, atol=1e-12)


def test_rcnn_step_is_each_experiments_update_from_the_zero_state():
    torch.manual_seed(0)
    fc, fv = torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.Conv2d(3, 3, 3, padding=1)
    x, y = torch.randn(4, 2, 5, 5), torch.randn(4, 3, 5, 5)
    assert torch.equal(neurons.rcnn_step(x, y, fc, fv, "tanh"), torch.tanh(fc(x) + torch.relu(fv(y))))
    assert torch.equal(neurons.rcnn_step(x, y, fc, fv, "relu"), torch.relu(fc(x) + fv(y)))
    assert torch.equal(neurons.rcnn_step(x, None, fc, fv, "relu"), torch.relu(fc(x) + fv.bias.view(1, 3, 1, 1)))


def test_the_table_of_fast_paths_names_functions_and_tests_that_exist():
    """Every step function has its multi-step version in common/fast/<kind>.py, and every test the
    table in common/neurons.py cites is defined in the file it names."""
    doc = neurons.__doc__
    for kind in ("lif", "rnn", "lstm", "rcnn"):
        assert f"{kind}_step " in doc and f"{kind}.py" in doc
        assert callable(getattr(neurons, f"{kind}_step"))
        assert callable(getattr(importlib.import_module(f"common.fast.{kind}"), f"{kind}_multistep"))
    cited = re.findall(r"(test_\w+\.py)::(test_\w+)", doc)
    assert len(cited) >= 9
    here = os.path.dirname(os.path.abspath(__file__))
    for path, name in cited:
        assert re.search(rf"^def {name}\(", open(os.path.join(here, path)).read(), re.M), f"{path}::{name}"
