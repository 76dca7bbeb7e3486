"""The cost conventions against hand counts and closed forms on tiny networks (fc and conv; RNN, LSTM and LIF;
static and event input), the memory-access term, and the aggregator's refusal to mix conventions."""
import json
import math
import types

import pytest
import torch

from common import cost
from common.report import logs, tradeoff
from common.hybrid_conv import HybridConvNet, build_configs
from tiny import TinyNet


def count(model, *inputs, convention="standard"):
    """(counter, output of the counted run); the output equals the model's step-by-step definition's."""
    counter = cost.Counter(convention)
    model.eval()
    fast = model.fast
    with torch.no_grad():
        with cost.counting(model, counter):
            out = model(*inputs)
        model.fast = False
        reference = model(*inputs)
    model.fast = fast
    first = lambda o: o[0] if isinstance(o, tuple) else o
    assert torch.allclose(first(out), first(reference), atol=1e-5)
    return counter, out


def set_all(params, value):
    with torch.no_grad():
        for p in params:
            p.fill_(value)


def synaptic(counter):
    return sum(counter.macs.values()), sum(counter.acs.values())


class RateNet(TinyNet):
    """TinyNet with S-MNIST's readout: the layer-2 firing rate over the whole sequence and the last RNN state."""

    def forward(self, x, hidden, masks=None):
        spikes, states, hidden = self.run(x, hidden, masks)
        return self.readout(torch.cat([spikes.sum(0) / x.shape[0], states[-1]], dim=1)), hidden


# -- fully connected stack ------------------------------------------------------------------------------------
def test_pixel_of_one_into_snn_is_a_mac_and_spikes_are_acs():
    """Pure SNN 2 -> 2 -> 3 -> readout 4, every weight 1, every pixel exactly 1.0: every neuron spikes at every step.
    standard: the pixels are real-valued data, dense MACs; spikes one AC per synapse; readout one AC per spike."""
    T, B = 3, 2
    net = TinyNet(2, [0, 0], [2, 3], nout=4).double()
    set_all([net.snn_fc1, net.snn_fc2], 1.0)
    x = torch.ones(T, B, 2, dtype=torch.float64)
    c, _ = count(net, x, net.init_hidden(B))
    steps = T * B
    assert c.macs == {"snn_fc1": steps * 2 * 2, "snn_fc2": 0, "readout": 0}
    assert c.acs == {"snn_fc1": 0, "snn_fc2": steps * 2 * 3, "readout": steps * 3 * 4}
    # closed form of a pure SNN: MACs = TB (ninp s0 + s0 + s1), ACs = spikes1 s1 + spikes2 nout
    spikes1, spikes2 = c.spikes["snn1"], c.spikes["snn2"]
    assert (spikes1, spikes2) == (steps * 2, steps * 3)
    rep = cost.report(c, net)
    assert rep["convention"] == "standard" and rep["samples"] == steps
    assert rep["macs"] * steps == steps * (2 * 2 + 2 + 3) and rep["acs"] * steps == spikes1 * 3 + spikes2 * 4
    assert rep["energy_pj"] == pytest.approx((steps * 9 * 4.6 + (spikes1 * 3 + spikes2 * 4) * 0.9) / steps)
    # kit-v1 counted each 1.0 pixel as an AC instead
    old, _ = count(net, x, net.init_hidden(B), convention="kit-v1")
    assert old.acs["snn_fc1"] == steps * 2 * 2 and old.macs["snn_fc1"] == 0


def test_pure_snn_silent_closed_form():
    """No spike: only the dense first layer and the membrane updates cost anything (zero pixels included)."""
    T, B, ninp, s0, s1, nout = 4, 3, 5, 3, 2, 4
    net = TinyNet(ninp, [0, 0], [s0, s1], nout=nout).double()
    set_all([net.snn_fc1], -1.0)
    x = torch.rand(T, B, ninp, dtype=torch.float64)
    x[0] = 0.0
    c, _ = count(net, x, net.init_hidden(B))
    assert sum(c.spikes.values()) == 0
    assert synaptic(c) == (T * B * ninp * s0, 0) and c.neuron_macs == T * B * (s0 + s1)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_pure_rnn_and_lstm_closed_forms(cell):
    """Pure non-spiking stacks: no AC, the same count under both conventions.
    RNN:  MACs = TB (ninp r0 + r0^2 + r0 r1 + r1^2 + r1 nout)
    LSTM: MACs = TB (4 (ninp r0 + r0^2 + r0 r1 + r1^2) + r1 nout + 3 (r0 + r1))   (f*c, i*g, o*tanh(c))"""
    T, B, ninp, r0, r1, nout = 3, 2, 4, 3, 2, 5
    torch.manual_seed(1)
    net = TinyNet(ninp, [r0, r1], [0, 0], cell=cell, nout=nout).double()
    x = torch.rand(T, B, ninp, dtype=torch.float64)
    g = 4 if cell == "lstm" else 1
    expected = T * B * (g * (ninp * r0 + r0 * r0 + r0 * r1 + r1 * r1) + r1 * nout + (3 * (r0 + r1) if cell == "lstm" else 0))
    for convention in cost.CONVENTIONS:
        c, _ = count(net, x, net.init_hidden(B), convention=convention)
        rep = cost.report(c, net)
        assert rep["macs"] * rep["samples"] == expected and rep["acs"] == 0, convention
        assert rep["energy_pj"] == pytest.approx(expected * 4.6 / (T * B))


def test_same_input_into_both_populations_is_counted_by_one_rule():
    """Layer 1 holds 2 RNN and 2 LIF neurons fed by the same data (0, 1.0 and 0.5): standard counts both weights
    dense, one MAC per synapse each; kit-v1 skipped the zero and made 1.0 an AC on the spiking side only."""
    T, B = 2, 3
    torch.manual_seed(0)
    net = TinyNet(3, [2, 1], [2, 2], nout=4).double()
    x = torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64).expand(T, B, 3)
    c, _ = count(net, x, net.init_hidden(B))
    assert c.macs["snn_fc1"] == c.macs["rnn_fc1"] == T * B * 3 * 2 and c.acs["snn_fc1"] == c.acs["rnn_fc1"] == 0
    old, _ = count(net, x, net.init_hidden(B), convention="kit-v1")
    assert (old.macs["snn_fc1"], old.acs["snn_fc1"]) == (T * B * 2, T * B * 2) and old.macs["rnn_fc1"] == T * B * 6


def test_saturated_sigmoid_into_lif_is_a_mac():
    """A float32 sigmoid RNN driven to exactly 1.0 feeding LIF neurons: real-valued, so dense MACs (standard),
    not the ACs kit-v1 counted because the value happens to be 1."""
    T, B, r0, s1 = 3, 2, 2, 3
    net = TinyNet(2, [r0, 1], [0, s1], nout=4)  # float32
    set_all([net.rnn_fc1], 100.0)
    set_all([net.rnn_fv1], 0.0)
    x = torch.ones(T, B, 2)
    with torch.no_grad():
        assert torch.equal(torch.sigmoid(x.reshape(-1, 2) @ net.rnn_fc1), torch.ones(T * B, r0))
    c, _ = count(net, x, net.init_hidden(B))
    assert (c.macs["snn_fc2"], c.acs["snn_fc2"]) == (T * B * r0 * s1, 0)
    old, _ = count(net, x, net.init_hidden(B), convention="kit-v1")
    assert (old.macs["snn_fc2"], old.acs["snn_fc2"]) == (0, T * B * r0 * s1)


def test_rate_readout_costs_one_ac_per_spike():
    """S-MNIST's readout sees firing rates (spike count / T): standard charges one AC per layer-2 spike per
    readout unit, however the spikes are summed; kit-v1 charged one MAC per non-silent, non-1 rate."""
    T, B, s1, nout = 5, 2, 3, 4
    torch.manual_seed(3)
    net = RateNet(2, [0, 2], [2, s1], nout=nout).double()
    set_all([net.snn_fc1], 0.5)
    set_all([net.snn_fc2], 0.4)  # one layer-1 spike alone charges a layer-2 membrane below the threshold 0.6
    x = torch.rand(T, B, 2, dtype=torch.float64)
    c, _ = count(net, x, net.init_hidden(B))
    spikes2 = c.spikes["snn2"]
    assert 0 < spikes2 < T * B * s1  # some but not all: rates strictly between 0 and 1 occur
    assert c.acs["readout"] == spikes2 * nout and c.macs["readout"] == B * 2 * nout and c.samples == B
    old, _ = count(net, x, net.init_hidden(B), convention="kit-v1")
    with torch.no_grad():
        rates = net.forward_definition(x, net.init_hidden(B))[0].sum(0) / T
    assert old.macs["readout"] == B * 2 * nout + int(((rates != 0) & (rates != 1)).sum()) * nout


# -- conv net -------------------------------------------------------------------------------------------------
def conv_net(channels, rcnn, scnn, size=4):
    configs = build_configs(channels, rcnn, scnn, 1, size, 2, first_padding=1, hidden=3)
    torch.manual_seed(0)
    return HybridConvNet(*configs, decay=0.3, thresh=0.5, lens=0.5, rcnn="tanh").double()


@pytest.mark.parametrize("value", [1.0, 3.0])
def test_event_frames_cost_one_ac_per_event_into_both_populations(value):
    """Layer 0 (1 RCNN + 1 SCNN filter, 3x3, padding 1, 4x4 frames, T = 2) on frames holding `value` events per
    pixel: standard charges value ACs per synapse (fan-outs sum to 100), into both populations alike; kit-v1
    made a count of 3 a MAC."""
    T = 2
    net = conv_net([2], [1], [1])
    x = torch.full((1, 1, 4, 4, T), value, dtype=torch.float64)
    c, _ = count(net, x)
    for name in ("hcnn_layers.0.scnn_fc", "hcnn_layers.0.rcnn_fc"):
        assert (c.acs[name], c.macs[name]) == (T * 100 * value, 0), name
    old, _ = count(net, x, convention="kit-v1")
    assert old.macs["hcnn_layers.0.scnn_fc"] == (T * 100 if value == 3.0 else 0)


def test_conv_hybrid_standard_by_hand():
    """Two layers of 1 RCNN + 1 SCNN filter on binary events (T = 2); layer-0 SCNN always spikes, layer-1 never.
    Layer 1 sees the pooled spikes (each 2x2 pool of 4 spikes: 4 ACs per synapse, fan-outs sum to 16) and the
    pooled RCNN map (real: 2*2 outputs x 9 MACs) alike in both populations."""
    T = 2
    net = conv_net([2, 2], [1, 1], [1, 1])
    l0, l1 = net.hcnn_layers
    set_all([l0.scnn_fc.bias], 100.0)
    set_all([l1.scnn_fc.bias], -100.0)
    c, _ = count(net, torch.ones(1, 1, 4, 4, T, dtype=torch.float64))
    assert {k: v // T for k, v in c.acs.items() if k.startswith("hcnn")} == {
        "hcnn_layers.0.scnn_fc": 100, "hcnn_layers.0.rcnn_fc": 100, "hcnn_layers.0.rcnn_fv": 0,
        "hcnn_layers.1.scnn_fc": 4 * 16, "hcnn_layers.1.rcnn_fc": 4 * 16, "hcnn_layers.1.rcnn_fv": 0}
    assert {k: v // T for k, v in c.macs.items() if k.startswith("hcnn")} == {
        "hcnn_layers.0.scnn_fc": 0, "hcnn_layers.0.rcnn_fc": 0, "hcnn_layers.0.rcnn_fv": 4 * 4 * 9,
        "hcnn_layers.1.scnn_fc": 2 * 2 * 9, "hcnn_layers.1.rcnn_fc": 2 * 2 * 9, "hcnn_layers.1.rcnn_fv": 2 * 2 * 9}
    assert (c.acs["linear_layers.0"], c.macs["linear_layers.0"], c.macs["linear_layers.1"]) == (0, 1 * 3, 3 * 2)
    rep = cost.report(c, net, memory="sram")
    assert rep["acs"] == T * 328 and rep["macs"] == T * 252 + T * (16 + 4) + 3 + 6
    # memory: a weight read per synaptic op; membranes (16 + 4) and RCNN maps (16 + 4) read and written per step
    assert rep["weight_reads"] == T * 328 + T * 252 + 9 and rep["state_accesses"] == 2 * T * (20 + 20)
    assert rep["energy_memory_pj"] == pytest.approx((T * 580 + 9 + 4 * T * 20) * 5.0)


def test_conv_readout_spike_sums_cost_one_ac_per_spike():
    """A pure SCNN layer always spiking: its 2x2-pooled spikes summed over T = 3 reach the 3 hidden units of the
    readout as 3 x 4 spikes per pooled position."""
    T = 3
    net = conv_net([2], [0], [2])
    set_all([net.hcnn_layers[0].scnn_fc.bias], 100.0)
    c, _ = count(net, torch.zeros(1, 1, 4, 4, T, dtype=torch.float64))
    assert c.acs["hcnn_layers.0.scnn_fc"] == 0  # no event, nothing to do
    assert (c.acs["linear_layers.0"], c.macs["linear_layers.0"]) == (2 * 2 * 2 * T * 4 * 3, 0)


# -- memory term ----------------------------------------------------------------------------------------------
def test_memory_term_by_hand_and_beside_the_arithmetic():
    """Pure RNN 2 -> 3 -> 2 -> 4 and LSTM: weight reads = synaptic MACs; state read + write per value per step."""
    T, B = 2, 3
    for cell, values in (("rnn", 1), ("lstm", 2)):
        net = TinyNet(2, [3, 2], [0, 0], cell=cell, nout=4).double()
        c, _ = count(net, torch.rand(T, B, 2, dtype=torch.float64), net.init_hidden(B))
        g = 4 if cell == "lstm" else 1
        reads = T * B * (g * (2 * 3 + 9 + 3 * 2 + 4) + 2 * 4)
        plain, sram, dram = (cost.report(c, net, memory=m) for m in (None, "sram", "dram"))
        assert "energy_memory_pj" not in plain and plain["totals"]["weight_reads"] == reads
        assert sram["weight_reads"] * T * B == reads and sram["state_accesses"] * T * B == 2 * values * T * B * 5
        assert sram["energy_pj"] == plain["energy_pj"]  # the arithmetic figure never includes memory
        assert sram["energy_memory_pj"] == pytest.approx((reads + 2 * values * T * B * 5) * 5.0 / (T * B))
        assert dram["energy_memory_pj"] == pytest.approx(sram["energy_memory_pj"] * 640 / 5)
        assert sram["energy_with_memory_pj"] == pytest.approx(sram["energy_pj"] + sram["energy_memory_pj"])
        assert cost.report(c, net, memory="sram", memory_pj=1.0)["memory_pj"] == 1.0
    with pytest.raises(ValueError, match="unknown cost convention"):
        cost.Counter("literature")


# -- aggregator -----------------------------------------------------------------------------------------------
def write_cost(folder, name, energy, **extra):
    obj = dict(kind="cost", firing_rate={"snn1": 0.1}, macs=energy / 4.6, acs=0.0, energy_pj=energy, params=10,
               state_bytes=8, **extra)
    (folder / "log" / f"cost_{name}.json").write_text(json.dumps(obj))


def test_aggregator_refuses_to_average_different_conventions(tmp_path):
    folder = tmp_path / "rnn-ptb-650-0.5-0.6"
    (folder / "log").mkdir(parents=True)
    exp = logs.Experiment(str(folder), "ptb", "rnn", [1111, 2222], [0.5])
    write_cost(folder, "ptb_rnn_1111", 10.0, convention="standard", memory="sram", memory_pj=5.0, energy_memory_pj=50.0)
    write_cost(folder, "ptb_rnn_2222", 20.0, convention="standard", memory="sram", memory_pj=5.0, energy_memory_pj=70.0)
    t = tradeoff.collect_tradeoff(logs.collect(exp))
    assert (t.convention, t.memory, t.problems) == ("standard", "sram 5 pJ", [])
    row = tradeoff.tradeoff_rows(t)[0]
    assert (row["type"], row["energy_pj"], row["energy_memory_pj"]) == ("rnn", 15.0, 60.0)
    head = tradeoff.tradeoff_csv(tradeoff.tradeoff_rows(t), t.convention, t.memory).splitlines()[0].split(",")
    assert {"energy_pj[standard]", "macs[standard]", "energy_memory_pj[standard; sram 5 pJ]", "params"} <= set(head)

    write_cost(folder, "ptb_rnn_2222", 20.0)  # an earlier result: no convention recorded, i.e. kit-v1
    write_cost(folder, "ptb_snn_1111", 5.0, convention="standard")
    t = tradeoff.collect_tradeoff(logs.collect(exp))
    assert t.convention is None and t.memory is None and len(t.problems) == 2
    assert "different conventions (kit-v1: ptb_rnn_2222; standard: ptb_rnn_1111, ptb_snn_1111)" in t.problems[0]
    assert "different memory terms" in t.problems[1]
    rows = {r["type"]: r for r in tradeoff.tradeoff_rows(t)}
    assert rows["rnn"]["energy_pj"] is None and rows["snn"]["energy_pj"] is None and rows["rnn"]["n_cost"] == 2
    assert "energy_pj[mixed]" in tradeoff.tradeoff_csv(list(rows.values())).splitlines()[0]
    written, problems = tradeoff.write_tradeoff(logs.collect(exp), str(tmp_path / "ptb-RNN"), plots=False)
    assert problems == t.problems and "energy_pj[mixed]" in open(written[0]).read()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "conv"])
def test_counting_observes_the_models_own_fast_forward(cell, monkeypatch):
    """No copy of the forward: counting runs forward_fast, whatever the execution setting, with the observer
    as its argument, and gives the model's own output; masks are refused; the observer is gone afterwards."""
    from common import execution
    from tiny import tiny_net
    if cell == "conv":
        net = conv_net([3, 2], [2, 1], [1, 2], size=6)
        inputs = ((torch.rand(2, 1, 6, 6, 3, generator=torch.Generator().manual_seed(0)) < 0.5).double(),)
    else:
        net = tiny_net(cell=cell)
        inputs = (torch.randn(4, 2, 4, dtype=torch.float64), net.init_hidden(2))
    seen, original = [], type(net).forward_fast
    monkeypatch.setattr(type(net), "forward_fast", lambda self, *a: seen.append(a[-1]) or original(self, *a))
    counter = cost.Counter()
    with torch.no_grad(), execution.using("definition"):
        with cost.counting(net, counter):
            out = net(*inputs)
            with pytest.raises(ValueError, match="unmasked"):
                net(*inputs, masks=net.masks_for({}))
        assert net.observer is None and seen == [counter]
        net.fast = True
        fast = net(*inputs)
    first = lambda o: o[0] if isinstance(o, tuple) else o
    assert torch.equal(first(out), first(fast)) and counter.samples > 0 and sum(counter.macs.values()) > 0


# -- the worked example of docs/cost-conventions.md, by hand ---------------------------------------------------
def worked_example(rnn, convention="standard"):
    """3 pixels x 3 steps into two layers of 2 neurons, readout of [layer-2 firing rate, last RNN state] into 2
    classes, one sample. The SNN: every snn_fc1 weight 0.5, every snn_fc2 weight 0.4."""
    x = torch.tensor([[[1.0, 0.0, 0.5]], [[0.2, 0.2, 0.2]], [[0.0, 0.0, 0.0]]], dtype=torch.float64)
    if rnn:
        net = RateNet(3, [2, 2], [0, 0], nout=2).double()
    else:
        net = RateNet(3, [0, 0], [2, 2], nout=2).double()
        set_all([net.snn_fc1], 0.5)
        set_all([net.snn_fc2], 0.4)
    c, _ = count(net, x, net.init_hidden(1), convention=convention)
    return c, net


def test_worked_example_by_hand():
    """docs/cost-conventions.md, "Worked example": every number of its table recomputed by hand."""
    snn, snn_net = worked_example(rnn=False)
    # layer 1: step 1 current 0.5 * (1 + 0 + 0.5) = 0.75 > 0.6: both neurons spike; step 2: 0.3; step 3: 0.18
    # layer 2: step 1 current 0.4 * 2 = 0.8: both spike; then nothing
    assert snn.spikes == {"snn1": 2, "snn2": 2}
    T, ninp, w, nout = 3, 3, 2, 2
    input_macs = T * ninp * w                 # 18: pixels dense, zeros included
    spiking_acs = 2 * w                       # 4: two layer-1 spikes, 2 synapses each
    readout_acs = 2 * nout                    # 4: two layer-2 spikes, 2 readout units each
    neuron_macs = T * (w + w)                 # 12: one per LIF neuron per step
    rep = cost.report(snn, snn_net, rate_readout=True)
    assert (rep["macs"], rep["acs"]) == (input_macs + neuron_macs, spiking_acs + readout_acs) == (30, 8)
    assert rep["energy_pj"] == pytest.approx(30 * 4.6 + 8 * 0.9) == 145.2
    assert rep["energy_parts_pj"] == pytest.approx({"input": 82.8, "recurrent": 0, "hidden": 0, "spiking": 3.6,
                                                    "readout": 3.6, "neurons": 55.2})
    # dense activations: the 2 x 2 layer-2 synapses every step and the 2 x 2 readout synapses once, as MACs
    dense = input_macs + T * w * w + w * nout + neuron_macs
    assert dense == 46 and rep["energy_dense_activations_pj"] == pytest.approx(46 * 4.6) == 211.6
    assert rep["spiking_gain"] == pytest.approx(211.6 / 145.2)
    int8 = cost.report(snn, snn_net, *cost.ARITHMETIC["int8"], rate_readout=True)
    assert int8["energy_pj"] == pytest.approx(30 * 0.23 + 8 * 0.03) == 7.14 and int8["convention"] == "standard, int8"
    assert cost.report(snn, snn_net, *cost.ARITHMETIC["int32"], rate_readout=True)["energy_pj"] == pytest.approx(96.8)
    # memory: weight reads = synaptic MACs + ACs = 26; state: 4 membranes read and written at each of 3 steps = 24
    sram = cost.report(snn, snn_net, rate_readout=True, memory="sram")
    assert (sram["weight_reads"], sram["state_accesses"]) == (18 + 8, 2 * T * 4) == (26, 24)
    assert sram["energy_memory_pj"] == pytest.approx(50 * 5.0) and sram["energy_with_memory_pj"] == pytest.approx(395.2)
    event = cost.report(snn, snn_net, rate_readout=True, memory="sram", memory_model="event")
    assert event["state_accesses"] == 24 + 2 * 8 and event["energy_memory_pj"] == pytest.approx(66 * 5.0) == 330
    assert event["memory"] == "sram+event" and event["memory_pj"] == 5.0
    # 16 parameters (6 + 4 + readout 4 + 2 biases): 64 bytes, below 8 KB: the fitted SRAM costs 5 pJ as well
    fit = cost.report(snn, snn_net, rate_readout=True, memory="sram-fit")
    assert (fit["params"], fit["memory_pj"], fit["memory_access_pj"]) == (16, None, 5.0)

    rnn, rnn_net = worked_example(rnn=True)
    rep_rnn = cost.report(rnn, rnn_net, rate_readout=True)
    # layer 1: 3 x 2 input + 2 x 2 recurrent, layer 2: 2 x 2 + 2 x 2, per step; readout 2 x 2 once
    assert rep_rnn["macs"] == T * (ninp * w + w * w + w * w + w * w) + w * nout == 58 and rep_rnn["acs"] == 0
    assert rep_rnn["energy_pj"] == pytest.approx(58 * 4.6) == 266.8
    assert rep_rnn["energy_parts_pj"] == pytest.approx({"input": 18 * 4.6, "recurrent": 24 * 4.6, "hidden": 12 * 4.6,
                                                        "spiking": 0, "readout": 4 * 4.6, "neurons": 0})
    ratio = rep_rnn["energy_pj"] / rep["energy_pj"]  # 1.84 = architecture 266.8 / 211.6 x spiking 211.6 / 145.2
    assert ratio == pytest.approx((266.8 / 211.6) * (211.6 / 145.2)) and round(ratio, 2) == 1.84
    assert cost.report(rnn, rnn_net, rate_readout=True, memory="sram")["energy_memory_pj"] == pytest.approx((58 + 24) * 5.0)
    # kit-v1: the pixel 1.0 costs 2 ACs, the 0.5 and the three 0.2 MACs (8), zeros nothing; the layer-1 spikes
    # 4 ACs; the two rates 1/3 into the readout 4 MACs; neurons 12
    kit = cost.report(worked_example(rnn=False, convention="kit-v1")[0], snn_net, rate_readout=True)
    assert (kit["macs"], kit["acs"]) == (8 + 4 + 12, 2 + 4) and kit["energy_pj"] == pytest.approx(24 * 4.6 + 6 * 0.9)


def test_sram_fit_and_names():
    assert [cost.sram_fit_pj(b) for b in (100, 8 * 1024, 32 * 1024, 1 << 20)] == [5.0, 5.0, 10.0, 50.0]
    # 59 KB (the demo's S-MNIST RNN): between 10 and 50 pJ, on the log-log line through 32 KB and 1 MB
    assert cost.sram_fit_pj(58920) == pytest.approx(10 * (58920 / 32768) ** (math.log(5) / math.log(32)), abs=1e-3)
    assert cost.sram_fit_pj(2 << 20) == pytest.approx(50 * 2 ** (math.log(5) / math.log(32)), abs=1e-3)
    assert cost.convention_name("standard") == "standard" and cost.convention_name("standard", 3.2, 0.1) == "standard, int32"
    assert cost.convention_name("kit-v1", 1.0, 0.5) == "kit-v1, MAC 1 pJ, AC 0.5 pJ"
    assert cost.MAC_PJ == 4.6 and cost.AC_PJ == 0.9  # the default numbers stay reproducible


def test_scaling_closed_form_is_the_counters(tmp_path):
    """bench/cost-scaling.py's closed form equals the counter on the real S-MNIST model at a small width."""
    import importlib.util
    import os
    from common.cli import load_script
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("cost_scaling", os.path.join(root, "bench", "cost-scaling.py"))
    scaling = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scaling)
    script = load_script(os.path.join(root, "experiments", "rnn-smnist-800-0.5-0.6", "rnn-smnist.py"), "smnist_cost")
    w, B = 5, 3
    images = torch.rand(B, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    for rnn_shape, snn_shape in (([w, w], [0, 0]), ([0, 0], [w, w])):
        torch.manual_seed(2)
        model = script.SMNISTModel(rnn_shape, snn_shape).eval()
        counter = cost.Counter()
        with torch.no_grad(), cost.counting(model, counter):
            model(images)
        rep = cost.report(counter, model, rate_readout=True, memory="sram-fit")
        rates = None if snn_shape[0] == 0 else tuple(counter.spikes[k] / counter.neuron_steps[k] for k in ("snn1", "snn2"))
        if rates:
            assert 0 < rates[0] < 1
        closed = scaling.smnist_counts(w, rates)
        for key in ("macs", "acs", "energy_pj", "energy_dense_activations_pj", "params", "memory_access_pj",
                    "energy_memory_pj"):
            assert rep[key] == pytest.approx(closed[key]), key


def test_evaluate_records_the_full_setting(tmp_path):
    """evaluate.py's arithmetic and memory options: the energies they pick, and a result counted under one
    setting is not up to date under another."""
    import evaluate
    snn, net = worked_example(rnn=False)
    parse = lambda *a: evaluate.make_parser().parse_args(["cost", "--experiment", "x", *a])
    args = parse("--arithmetic", "int8", "--memory", "sram-fit", "--memory_model", "event")
    assert evaluate.energies(args) == (0.23, 0.03) and evaluate.energies(parse("--mac_pj", "2")) == (2.0, 0.9)
    path = tmp_path / "cost.json"
    path.write_text(json.dumps(cost.report(snn, net, *evaluate.energies(args), True, memory="sram-fit",
                                           memory_model="event")))
    assert evaluate.same_cost_setting(str(path), args)
    for other in (parse("--memory", "sram-fit"), parse("--arithmetic", "int8", "--memory", "sram-fit"),
                  parse("--arithmetic", "int32", "--memory", "sram-fit", "--memory_model", "event"),
                  parse("--arithmetic", "int8", "--memory", "sram", "--memory_model", "event")):
        assert not evaluate.same_cost_setting(str(path), other)
    path.write_text(json.dumps(cost.report(snn, net, memory="sram")))
    assert evaluate.same_cost_setting(str(path), parse("--memory", "sram"))
    assert not evaluate.same_cost_setting(str(path), parse("--memory", "sram", "--memory_pj", "10"))


@pytest.mark.parametrize("flags,named", [(["--memory", "sram-fit", "--memory_pj", 3], "--memory_pj"),
                                         (["--memory_model", "event"], "--memory_model")])
def test_evaluate_refuses_memory_flags_that_do_not_go_together(tmp_path, capsys, flags, named):
    import os
    from test_bad_input import ROOT, one_line_error
    err = one_line_error(capsys, os.path.join(ROOT, "evaluate.py"), str(tmp_path),
                         ["cost", "--experiment", os.path.join(ROOT, "experiments", "rnn-ptb-650-0.5-0.6"), *flags])
    assert named in err
