"""Input biases of the fc stack (--bias, the rnn-ptb-120-0.5-0.6-bias folder): off by default, exact
in both execution paths, kept by shrinking, never probed by Selection, recorded in checkpoints."""
import os

import torch
import torch.nn as nn

from common import cost
from common.hybrid_fc import HybridFC
from conftest import ROOT, run_script
from test_shrink import random_keep

T, B = 6, 3
BIAS_SCRIPT = os.path.join(ROOT, "experiments", "rnn-ptb-120-0.5-0.6-bias", "rnn-ptb.py")
PLAIN_SCRIPT = os.path.join(ROOT, "experiments", "rnn-ptb-650-0.5-0.6", "rnn-ptb.py")
SMALL = ["--nhid", 8, "--emsize", 8, "--bptt", 6, "--batch_size", 4, "--device", "cpu", "--stage1_epochs", 1,
         "--stage2_epochs", 1, "--hessian_probes", 4]


class Net(HybridFC):
    readout_name = "readout"

    def __init__(self, ninp, rnn_shape, snn_shape, bias=False):
        super().__init__()
        self.config = dict(ninp=ninp, rnn_shape=rnn_shape, snn_shape=snn_shape, bias=bias)
        self.build_stack(ninp, rnn_shape, snn_shape, "rnn", 0.6, 0.6, 0.5, bias)
        self.readout = nn.Linear(snn_shape[1] + rnn_shape[1], 3)

    def forward(self, x, hidden, masks=None):
        spikes, states, hidden = self.run(x, hidden, masks)
        return self.readout(torch.cat([spikes, states], dim=2)), hidden


def biased_net(seed=0):
    """Weights scaled up so that neurons spike often; biases random (as after training)."""
    torch.manual_seed(seed)
    net = Net(4, [6, 4], [4, 8], bias=True).double()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.startswith(("snn_", "rnn_")):
                p.copy_(torch.randn_like(p) if name.endswith("_bias") else p * 3)
    return net


def test_zero_biases_leave_initialisation_and_output_unchanged():
    torch.manual_seed(5)
    plain = Net(4, [6, 4], [4, 8])
    torch.manual_seed(5)
    biased = Net(4, [6, 4], [4, 8], bias=True)
    names = [n for n, _ in biased.named_parameters() if n.endswith("_bias")]
    assert names == ["snn_fc1_bias", "rnn_fc1_bias", "snn_fc2_bias", "rnn_fc2_bias"]
    assert not any(n.endswith("_bias") for n, _ in plain.named_parameters())
    for name, p in plain.state_dict().items():
        assert torch.equal(p, biased.state_dict()[name]), name
    x = torch.randn(T, B, 4) * 3
    assert torch.equal(plain(x, plain.init_hidden(B))[0], biased(x, biased.init_hidden(B))[0])


def test_layer_major_path_equals_definition_with_biases():
    net = biased_net()
    x = torch.randn(T, B, 4, dtype=torch.float64)
    results = []
    for fast in (False, True):
        net.fast = fast
        net.zero_grad()
        out, hid = net(x, tuple(h + 0.1 for h in net.init_hidden(B)))
        (out.pow(2).sum() + hid[1].sum()).backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in net.named_parameters()}))
    (o0, g0), (o1, g1) = results
    assert torch.allclose(o0, o1, atol=1e-12, rtol=0)
    assert all(torch.allclose(g0[n], g1[n], atol=1e-10, rtol=1e-10) for n in g0)
    assert g0["snn_fc2_bias"].abs().sum() > 0 and g0["rnn_fc1_bias"].abs().sum() > 0  # the biases learn
    net.fast = True
    with torch.no_grad():
        net.rnn_fc2_bias.add_(1.0)
    assert not torch.allclose(net(x, net.init_hidden(B))[0], o1)  # and they matter


def test_shrunk_network_keeps_the_kept_neurons_biases():
    net = biased_net(seed=1)
    keep = random_keep(net, ratio=0.5, seed=3)
    small = net.shrunk(keep)
    for kind in ("snn", "rnn"):
        for l in (1, 2):
            assert torch.equal(getattr(small, f"{kind}_fc{l}_bias"), getattr(net, f"{kind}_fc{l}_bias")[keep[f"{kind}{l}"]])
    x = torch.randn(T, B, 4, dtype=torch.float64) * 2
    masked, _ = net(x, net.init_hidden(B), masks=net.masks_for(keep))
    for fast in (False, True):
        small.fast = fast
        assert torch.allclose(small(x, small.init_hidden(B))[0], masked, atol=1e-12, rtol=0)
    assert not torch.allclose(net(x, net.init_hidden(B))[0], masked)


def test_selection_probes_weights_only_and_cost_counting_sees_biases():
    net = biased_net(seed=2)
    probed = [t for tensors, _, _ in net.probed_groups().values() for t in tensors]
    assert len(probed) == 6 and all(t.dim() == 2 for t in probed)
    assert not any(t is b for t in probed for n, b in net.named_parameters() if n.endswith("_bias"))
    x = torch.randn(T, B, 4, dtype=torch.float64) * 2
    expected, _ = net(x, net.init_hidden(B))
    with cost.counting(net, cost.Counter()):
        counted, _ = net(x, net.init_hidden(B))
    assert torch.allclose(counted, expected, atol=1e-12, rtol=0)


def last_block(log):
    return open(log).read().splitlines()[-2]


def test_bias_folder_checkpoints_record_the_biases(tmp_path, corpus):
    d = str(tmp_path)
    run = lambda script, *a: run_script(script, SMALL + ["--data", corpus] + list(a), d)
    assert run(BIAS_SCRIPT, "--model", "hybrid", "--mode", "train1") == 0
    ckpt = torch.load(f"{d}/checkpoint/ptb_hybrid_1111.t7", weights_only=True)
    assert ckpt["bias"] is True and ckpt["net"]["rnn_fc2_bias"].shape == (8,)
    assert ckpt["net"]["snn_fc1_bias"].abs().sum() > 0  # trained
    # the shared script rebuilds it from the checkpoint, without --bias
    assert run(PLAIN_SCRIPT, "--model", "hybrid", "--mode", "test1") == 0
    assert last_block(f"{d}/log/test_ptb_hybrid_1111.log") == last_block(f"{d}/log/train_ptb_hybrid_1111.log")
    assert run(BIAS_SCRIPT, "--model", "hybrid", "--mode", "train2", "--ratio", 0.75) == 0
    small = torch.load(f"{d}/checkpoint/ptb_hybrid_1111_0.75.t7", weights_only=True)
    assert small["bias"] is True and small["net"]["snn_fc1_bias"].shape == (small["snn_shape"][0],)
    assert sum(small["snn_shape"]) == 12 and sum(small["rnn_shape"]) == 4
    assert run(BIAS_SCRIPT, "--model", "hybrid", "--mode", "test2", "--ratio", 0.75) == 0
    assert last_block(f"{d}/log/test_ptb_hybrid_1111_0.75.log") == last_block(f"{d}/log/train_ptb_hybrid_1111_0.75.log")
    # elsewhere biases stay off: no bias key, no bias weights
    assert run(PLAIN_SCRIPT, "--model", "rnn", "--mode", "train1") == 0
    plain = torch.load(f"{d}/checkpoint/ptb_rnn_1111.t7", weights_only=True)
    assert "bias" not in plain and not any(k.endswith("_bias") for k in plain["net"])
    assert run(BIAS_SCRIPT, "--model", "lstm", "--mode", "train1") == 2  # biases are for the sigmoid RNN cell
