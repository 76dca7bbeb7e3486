import torch
from torch.func import grad, jvp, vmap

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
