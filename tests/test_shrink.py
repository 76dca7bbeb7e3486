"""Shrinking equals masking; the layer-major path equals the step-by-step definition."""
import pytest
import torch

from common.selection import select_fc
from tiny import tiny_net

T, B = 6, 3


def random_keep(net, ratio=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    imp = {k: torch.rand(n, generator=g).tolist() for k, n in net.population_sizes().items() if n}
    return select_fc(imp, ratio)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_shrunk_network_equals_masked_network(cell):
    net = tiny_net(ninp=4, rnn=(6, 4), snn=(4, 8), cell=cell)
    keep = random_keep(net)
    small = net.shrunk(keep)
    assert small.rnn_shape == [len(keep["rnn1"]), len(keep["rnn2"])]
    assert small.snn_shape == [len(keep["snn1"]), len(keep["snn2"])]
    torch.manual_seed(1)
    x = torch.randn(T, B, 4, dtype=torch.float64) * 2
    out_masked, hid_masked = net(x, net.init_hidden(B), masks=net.masks_for(keep))
    for fast in (False, True):
        small.fast = fast
        out_small, hid_small = small(x, small.init_hidden(B))
        assert torch.allclose(out_small, out_masked, atol=1e-12, rtol=0)
        assert torch.allclose(hid_small[1], hid_masked[1][:, keep["rnn2"]], atol=1e-12, rtol=0)
    # the comparison is not vacuous: spikes occur and masking changes the output
    spikes, _, _ = net.forward_definition(x, net.init_hidden(B))
    assert 0 < spikes.mean() < 1
    assert not torch.allclose(net(x, net.init_hidden(B))[0], out_masked)


def test_shrink_keeps_neuron_order_and_slices_authors_weights():
    net = tiny_net(ninp=3, rnn=(4, 4), snn=(4, 4))
    keep = {"rnn1": [0, 3], "rnn2": [1, 2], "snn1": [2], "snn2": [0, 3]}
    small = net.shrunk(keep)
    rows2 = [2] + [4 + 0, 4 + 3]  # layer-2 inputs: kept layer-1 spikes, then kept layer-1 RNN states
    assert torch.equal(small.snn_fc1, net.snn_fc1[:, [2]])
    assert torch.equal(small.rnn_fv1, net.rnn_fv1[[0, 3]][:, [0, 3]])
    assert torch.equal(small.rnn_fc2, net.rnn_fc2[rows2][:, [1, 2]])
    assert torch.equal(small.snn_fc2, net.snn_fc2[rows2][:, [0, 3]])
    assert torch.equal(small.readout.weight, net.readout.weight[:, [0, 3, 4 + 1, 4 + 2]])
    assert torch.equal(small.readout.bias, net.readout.bias)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_layer_major_path_equals_definition(cell, dtype):
    net = tiny_net(ninp=5, rnn=(7, 6), snn=(8, 5), cell=cell).to(dtype)
    torch.manual_seed(2)
    x = (torch.randn(T, B, 5) * 2).to(dtype).requires_grad_()
    hidden = tuple(h + 0.1 for h in net.init_hidden(B))
    results = []
    for fast in (False, True):
        net.fast = fast
        net.zero_grad()
        x.grad = None
        spikes, states, hid = net.run(x, hidden)
        loss = (spikes * torch.arange(spikes.shape[-1], dtype=dtype)).sum() + states.pow(2).sum() + hid[0].sum()
        loss.backward()
        results.append((spikes.detach(), states.detach(), x.grad.clone(), [p.grad.clone() for p in net.parameters()
                                                                          if p.grad is not None]))
    (s0, h0, gx0, gp0), (s1, h1, gx1, gp1) = results
    tol = dict(atol=1e-12, rtol=1e-10) if dtype == torch.float64 else dict(atol=1e-5, rtol=1e-5)
    assert torch.equal(s0, s1)
    assert 0 < s0.mean() < 1
    assert torch.allclose(h0, h1, **tol) and torch.allclose(gx0, gx1, **tol)
    assert len(gp0) == len(gp1) and all(torch.allclose(a, b, **tol) for a, b in zip(gp0, gp1))


def test_empty_populations_give_pure_networks():
    for rnn, snn in [((4, 3), (0, 0)), ((0, 0), (4, 3))]:
        net = tiny_net(ninp=3, rnn=rnn, snn=snn)
        names = {n for n, _ in net.named_parameters()}
        assert ("snn_fc1" in names) == (snn[0] > 0) and ("rnn_fv2" in names) == (rnn[1] > 0)
        out, _ = net(torch.randn(T, B, 3, dtype=torch.float64), net.init_hidden(B))
        assert out.shape == (T, B, 3)
    with pytest.raises(ValueError, match="at least one neuron"):
        tiny_net(rnn=(0, 3), snn=(0, 2))
