"""Computational cost of one inference, counted from what actually happens on the given inputs.

Two counting rules (docs/cost-conventions.md states them in full, with their sources and a worked example):
  standard  the SNN literature's rule. The source of a weight decides: an input element that comes from
            a spiking population (its spikes, or pooled or summed spikes, or a firing rate) costs one AC
            (accumulate only) per spike it carries per outgoing synapse; an event-camera frame element
            costs one AC per event (its count) per synapse; every real-valued input (pixels, word
            embeddings, RNN/LSTM/RCNN states) costs one MAC per synapse whatever its value, into
            spiking and non-spiking neurons alike.
  kit-v1    the kit's first rule, kept to reproduce earlier results: a weight fed by spikes, pooled
            spikes, event frames, or feeding a spiking population is event-driven by value (0: free,
            +-1: one AC, anything else: one MAC per synapse); every other weight dense.
Both: a dense matrix is in x out MACs per step, a dense conv out_h*out_w*out_c*in_c*k*k; an event-driven
conv synapse fan-out is out_channels x the output positions that see the input position (padding is
free). Neurons: one MAC per LIF neuron per step (mem*decay + input current), three per LSTM unit per
step (f*c, i*g, o*tanh(c)); no nonlinearity (threshold, reset select, sigmoid, tanh, relu), bias
addition or pooling is counted, for any neuron kind; an embedding is a lookup.
Energy: MACs and ACs at the energies of one arithmetic (fp32 by default, int32 or int8), all at 45 nm.
Memory (optional, beside the arithmetic): one weight read per synaptic MAC or AC, and one read plus one
write per float state value (LIF membrane, RNN h, LSTM h and c, RCNN y) per step; the "event" model adds one
read and one write of the target's membrane potential (or accumulator) per AC.
Every synaptic count is also filed under the part of the network it belongs to (input layer, recurrent,
hidden real-valued, spike-driven, readout; neurons apart), and beside it what the same weights would cost
with dense real-valued activations (one MAC per synapse), the ratio that isolates spiking.
The counter observes the model's own layer-major forward (forward_fast's observer: each layer's inputs and
outputs), so the model's own evaluation code (the experiment script's `evaluate`) drives it, computes its
metric too, and the numbers counted are those of the network that runs.
"""
import contextlib
import math

import torch
import torch.nn.functional as F

from common.hybrid_conv import HybridConvNet
from common.hybrid_fc import HybridFC

CONVENTIONS = ("standard", "kit-v1")
# (MAC, AC) energy in pJ at 45 nm (Horowitz, ISSCC 2014): a MAC is a multiply plus an add, an AC an add alone
ARITHMETIC = {"fp32": (4.6, 0.9),    # float32: mult 3.7, add 0.9
              "int32": (3.2, 0.1),   # int32: mult 3.1, add 0.1
              "int8": (0.23, 0.03)}  # int8: mult 0.2, add 0.03
MAC_PJ, AC_PJ = ARITHMETIC["fp32"]
# per 32-bit read or write at 45 nm. sram: an 8 KB SRAM (half of Horowitz's 10 pJ for a 64-bit access; Han et al.,
# NIPS 2015, Figure 1: "32 bit SRAM cache 5 pJ"); dram: Han et al.'s "32 bit DRAM memory 640 pJ"
MEMORY_PJ = {"sram": 5.0, "dram": 640.0}
# sram-fit: an SRAM as large as the model's weights; Horowitz's 64-bit accesses 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ,
# halved per 32-bit word and interpolated log-log in the size (below 8 KB: 5 pJ; beyond 1 MB: the last slope)
SRAM_SIZES_PJ = ((8 * 1024, 5.0), (32 * 1024, 10.0), (1024 * 1024, 50.0))
MEMORY_LEVELS = ("sram", "sram-fit", "dram")
MEMORY_MODELS = ("step", "event")
PARTS = ("input", "recurrent", "hidden", "spiking", "readout")  # where a weight sits; "neurons" and "memory" apart


def sram_fit_pj(nbytes):
    """Energy of one 32-bit access to an SRAM of nbytes (SRAM_SIZES_PJ, log-log interpolation)."""
    (s0, e0), (s1, e1), (s2, e2) = SRAM_SIZES_PJ
    if nbytes <= s0:
        return e0
    (a, ea), (b, eb) = ((s0, e0), (s1, e1)) if nbytes <= s1 else ((s1, e1), (s2, e2))
    return round(ea * math.exp(math.log(eb / ea) * math.log(nbytes / a) / math.log(b / a)), 3)


def arithmetic_name(mac_pj, ac_pj):
    """'fp32', 'int32', 'int8', or the energies themselves when they are none of those."""
    return next((k for k, v in ARITHMETIC.items() if v == (mac_pj, ac_pj)), f"MAC {mac_pj:g} pJ, AC {ac_pj:g} pJ")


def convention_name(rule, mac_pj=MAC_PJ, ac_pj=AC_PJ):
    """The convention's full name as records carry it: the counting rule, and the arithmetic unless fp32."""
    arithmetic = arithmetic_name(mac_pj, ac_pj)
    return rule if arithmetic == "fp32" else f"{rule}, {arithmetic}"


def memory_name(level, model="step"):
    return level if model == "step" else f"{level}+event"


class Counter:
    """Exact integer counts, per weight tensor and per part of the network, summed over every sample seen, under one
    counting rule; beside them, the MACs the same synapses would cost with dense real-valued activations."""

    def __init__(self, convention="standard"):
        if convention not in CONVENTIONS:
            raise ValueError(f"unknown cost convention {convention!r} (known: {', '.join(CONVENTIONS)})")
        self.convention = convention
        self.macs, self.acs = {}, {}            # weight name -> count
        self.parts = {p: {"macs": 0, "acs": 0} for p in PARTS}
        self.dense_macs = 0                      # synaptic MACs if every input were a dense real value
        self.neuron_macs = 0
        self.spikes, self.neuron_steps = {}, {}  # spiking population -> spikes, neurons x steps
        self.state_steps = 0                     # float state values x steps (each read and written once)
        self.samples = 0                         # readout rows: tokens (PTB) or samples
        self.readout_spikes = 0                  # fc stack: layer-2 spikes of the last run, for its readout

    def _add(self, name, part, macs=0, acs=0):
        for table, n in ((self.macs, macs), (self.acs, acs)):
            table[name] = table.get(name, 0) + int(n)
        self.parts[part]["macs"] += int(macs)
        self.parts[part]["acs"] += int(acs)

    @staticmethod
    def _synapses(per_element, fanout):
        """sum over elements of per_element x fanout; per_element [N, ...] int64, fanout a number or a tensor
        broadcast over the trailing dims (e.g. [H, W] for a conv)."""
        if torch.is_tensor(fanout):
            fanout = fanout.to(per_element.device, torch.int64)
            lead = per_element.dim() - fanout.dim()
            return int((per_element.sum(dim=tuple(range(lead)), dtype=torch.int64) * fanout).sum())
        return int(per_element.sum(dtype=torch.int64)) * int(fanout)

    def dense(self, name, part, n):
        self._add(name, part, macs=n)
        self.dense_macs += int(n)

    def event_driven(self, name, part, x, fanout):
        """kit-v1's rule for x: inputs [N, ...]: per synapse nothing for 0, an AC for +-1, a MAC otherwise."""
        x = x.detach()
        ones = x.abs() == 1
        other = (x != 0) & ~ones
        self._add(name, part, macs=self._synapses(other.to(torch.int64), fanout),
                  acs=self._synapses(ones.to(torch.int64), fanout))

    def from_spikes(self, name, part, x, fanout, dense, per=1):
        """x made of spikes: a spike map (per=1), an average-pooled one (per = pool area) or a spike count.
        standard: one AC per spike (x * per of them) per synapse, the pooling's constant folded into the weights.
        dense: the MACs of these synapses with dense activations."""
        self.dense_macs += int(dense)
        if self.convention == "kit-v1":
            return self.event_driven(name, part, x, fanout)
        spikes = (x.detach().abs().double() * per).round().to(torch.int64)
        self._add(name, part, acs=self._synapses(spikes, fanout))

    def from_events(self, name, part, x, fanout, dense):
        """Event-camera frames. standard: one AC per event (an element's count) per synapse; a value that
        is not a whole count (not an event frame) costs a MAC per synapse when non-zero."""
        self.dense_macs += int(dense)
        if self.convention == "kit-v1":
            return self.event_driven(name, part, x, fanout)
        x = x.detach()
        whole = x == x.round()
        self._add(name, part, macs=self._synapses(((x != 0) & ~whole).to(torch.int64), fanout),
                  acs=self._synapses(torch.where(whole, x.abs(), 0).to(torch.int64), fanout))

    def from_real(self, name, part, x, fanout, dense_macs, into_spiking):
        """Real-valued inputs x (data, RNN/RCNN states). standard: dense_macs MACs whatever the values and the
        target; kit-v1: event-driven by value into a spiking population, dense otherwise."""
        if self.convention == "kit-v1" and into_spiking:
            self.dense_macs += int(dense_macs)
            return self.event_driven(name, part, x, fanout)
        self.dense(name, part, dense_macs)

    def lif(self, population, spikes):
        self.neuron_macs += spikes.numel()
        self.state_steps += spikes.numel()
        self.spikes[population] = self.spikes.get(population, 0) + int(spikes.detach().sum(dtype=torch.float64))
        self.neuron_steps[population] = self.neuron_steps.get(population, 0) + spikes.numel()

    # -- the observer of HybridFC.forward_fast and HybridConvNet.forward_fast ---------------------------------
    def fc_layer(self, model, l, inputs, spikes, states):
        """Layer l of the fc stack: inputs [T*B, in] (layer 2: layer 1's spikes, then its states), its spikes
        [T, B, s] and RNN/LSTM states [T, B, r] (None for an empty population)."""
        rows, lstm = inputs.shape[0], model.cell == "lstm"
        n_spk = 0 if l == 1 else model.snn_shape[0]  # the first n_spk input columns are spikes (layer 1: data)
        n_real = inputs.shape[1] - n_spk
        real_part = "input" if l == 1 else "hidden"
        if spikes is not None:
            s = spikes.shape[-1]
            self.from_spikes(f"snn_fc{l}", "spiking", inputs[:, :n_spk], s, rows * n_spk * s)
            self.from_real(f"snn_fc{l}", real_part, inputs[:, n_spk:], s, rows * n_real * s, True)
            self.lif(f"snn{l}", spikes)
        if states is not None:
            r, gates = states.shape[-1], 4 if lstm else 1
            fc, fv = ("lstm_wi", "lstm_wh") if lstm else ("rnn_fc", "rnn_fv")
            self.from_spikes(f"{fc}{l}", "spiking", inputs[:, :n_spk], gates * r, rows * n_spk * gates * r)
            self.from_real(f"{fc}{l}", real_part, inputs[:, n_spk:], gates * r, rows * n_real * gates * r, False)
            self.dense(f"{fv}{l}", "recurrent", rows * r * r * gates)
            self.state_steps += rows * r * (2 if lstm else 1)  # h (and c)
            if lstm:
                self.neuron_macs += 3 * rows * r
        if l == 2:
            self.readout_spikes = 0 if spikes is None else int(spikes.sum(dtype=torch.float64))

    @staticmethod
    def _conv_input(model, l, frames):
        """(spike channels, pooled area) of conv layer l's input: layer 0 sees event frames (area None),
        later layers the pooled spikes, then the pooled RCNN maps, of the layer before."""
        if l == 0:
            return frames.shape[1], None
        before = model.hcnn_layers[l - 1]
        return before.scnn_channels, before.pool[0] ** 2

    def scnn(self, model, l, frames, spikes):
        """The SCNN population of conv layer l: input frames [T*B, C, H, W], spikes [T, B, C', H', W']."""
        n_spk, per = self._conv_input(model, l, frames)
        conv = model.hcnn_layers[l].scnn_fc
        conv_inputs(self, f"hcnn_layers.{l}.scnn_fc", conv, frames, spikes.shape[-2:], n_spk, per, True)
        self.lif(f"layer{l}", spikes)

    def rcnn(self, model, l, frames, drive):
        """The RCNN population of conv layer l: input frames [T*B, C, H, W], drive = rcnn_fc(frames) [T, B, ...]."""
        n_spk, per = self._conv_input(model, l, frames)
        layer, out_hw = model.hcnn_layers[l], drive.shape[-2:]
        conv_inputs(self, f"hcnn_layers.{l}.rcnn_fc", layer.rcnn_fc, frames, out_hw, n_spk, per, False)
        rec = layer.rcnn_fv
        self.dense(f"hcnn_layers.{l}.rcnn_fv", "recurrent",
                   frames.shape[0] * rec.in_channels * conv_dense_per_input_channel(rec, out_hw))
        self.state_steps += drive.numel()

    def conv_readout(self, model, spike_sum, last_y):
        """The conv net's readout over the last layer's summed pooled spikes and final pooled RCNN map."""
        lin0, lin1 = model.linear_layers
        B = (spike_sum if spike_sum is not None else last_y).shape[0]
        if spike_sum is not None:
            x = spike_sum.flatten(1)
            self.from_spikes("linear_layers.0", "readout", x, lin0.out_features, x.numel() * lin0.out_features,
                             model.hcnn_layers[-1].pool[0] ** 2)
        self.dense("linear_layers.0", "readout", 0 if last_y is None else B * last_y[0].numel() * lin0.out_features)
        self.dense("linear_layers.1", "readout", B * lin1.in_features * lin1.out_features)
        self.samples += B


# -- the fully connected stack's readout (PTB, S-MNIST) -----------------------------------------------
def fc_readout_hook(model, counter):
    """Counts the readout (an nn.Linear over [layer-2 spikes or firing rates, layer-2 states]): the state
    columns dense; the spike columns (standard) one AC per layer-2 spike of the run it reads, each spike
    reaching it once whether per step (PTB) or summed into a rate (S-MNIST), or (kit-v1) event-driven by
    value. One readout row is one counted sample."""
    readout = getattr(model, model.readout_name)
    s1 = model.snn_shape[1]

    def hook(module, args):
        rows = args[0].reshape(-1, args[0].shape[-1])
        counter.dense_macs += rows.shape[0] * s1 * readout.out_features
        if counter.convention == "kit-v1":
            counter.event_driven(model.readout_name, "readout", rows[:, :s1], readout.out_features)
        else:
            counter._add(model.readout_name, "readout", acs=counter.readout_spikes * readout.out_features)
            counter.readout_spikes = 0
        counter.dense(model.readout_name, "readout", rows.shape[0] * (rows.shape[1] - s1) * readout.out_features)
        counter.samples += rows.shape[0]

    return readout.register_forward_pre_hook(hook)


# -- the conv net (DVS Gesture, N-MNIST) -------------------------------------------------------------------
def conv_fanout(conv, in_hw):
    """[H, W]: how many output positions of `conv` each input position feeds (padding excluded)."""
    x = torch.zeros(1, 1, *in_hw, requires_grad=True)
    ones = torch.ones(1, 1, *conv.kernel_size)
    with torch.enable_grad():
        F.conv2d(x, ones, stride=conv.stride, padding=conv.padding, dilation=conv.dilation).sum().backward()
    return x.grad[0, 0].round().to(torch.int64)


def conv_dense_per_input_channel(conv, out_hw):
    return out_hw[0] * out_hw[1] * conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]


def conv_inputs(counter, name, conv, frames, out_hw, n_spk, per, into_spiking):
    """Counts conv's synapses fed by frames [N, C, H, W]: its first n_spk channels spikes (pooled over `per`
    positions), the rest real-valued; per=None: layer 0, whose input is event frames."""
    fanout = conv_fanout(conv, frames.shape[-2:]) * conv.out_channels
    per_channel = frames.shape[0] * conv_dense_per_input_channel(conv, out_hw)
    if per is None:
        return counter.from_events(name, "input", frames, fanout, frames.shape[1] * per_channel)
    counter.from_spikes(name, "spiking", frames[:, :n_spk], fanout, n_spk * per_channel, per)
    n_real = frames.shape[1] - n_spk
    counter.from_real(name, "hidden", frames[:, n_spk:], fanout, n_real * per_channel, into_spiking)


@contextlib.contextmanager
def counting(model, counter):
    """Within the block, running `model` (eval or not) runs its layer-major forward (forward_fast), which
    reports every layer to `counter`; the fc stack's readout is counted by a hook on its nn.Linear."""
    if not isinstance(model, (HybridFC, HybridConvNet)):
        raise TypeError(f"cost counting knows HybridFC and HybridConvNet models, not {type(model).__name__}")
    handle = fc_readout_hook(model, counter) if isinstance(model, HybridFC) else None
    model.observer = counter
    try:
        yield counter
    finally:
        model.observer = None
        if handle is not None:
            handle.remove()


# -- static numbers: parameters and state --------------------------------------------------------------
def state_memory(model, rate_readout=False):
    """(float values, spike bits) carried from one time step to the next, per sample: LIF membrane (float)
    and last spike (1 bit), RNN state h, LSTM h and c, and the readout's spike accumulator when the readout
    sees summed spikes (S-MNIST's firing rate: rate_readout=True; the conv nets' summed pooled spikes)."""
    if isinstance(model, HybridFC):
        s, r = model.snn_shape, model.rnn_shape
        floats = sum(s) + sum(r) * (2 if model.cell == "lstm" else 1) + (s[1] if rate_readout else 0)
        return floats, sum(s)
    floats = bits = 0
    for layer, buf in zip(model.layer_config, model.buffer_config):
        area = buf["output_size"] ** 2
        floats += (layer["scnn_channels"] + layer["rcnn_channels"]) * area
        bits += layer["scnn_channels"] * area
    last = model.buffer_config[-1]
    return floats + last["scnn_channels"] * last["pooled_size"] ** 2, bits


def report(counter, model, mac_pj=MAC_PJ, ac_pj=AC_PJ, rate_readout=False, per="sample", memory=None, memory_pj=None,
           memory_model="step"):
    """The JSON-ready cost summary: per-sample means (totals / samples) and the exact totals, under the counter's
    rule and the arithmetic (mac_pj, ac_pj). memory ('sram', 'sram-fit', 'dram' or None): also the memory-access
    estimate, in keys of its own (energy_pj stays arithmetic only); memory_pj overrides a fixed level's energy per
    access; memory_model 'event' adds a membrane (accumulator) read and write per AC."""
    n = max(counter.samples, 1)
    syn_macs, acs = sum(counter.macs.values()), sum(counter.acs.values())
    macs = syn_macs + counter.neuron_macs
    floats, bits = state_memory(model, rate_readout)
    params = sum(p.numel() for p in model.parameters())
    weight_reads, state_accesses = syn_macs + acs, 2 * counter.state_steps
    energy = (macs * mac_pj + acs * ac_pj) / n
    parts = {k: {"macs": v["macs"] / n, "acs": v["acs"] / n} for k, v in counter.parts.items()}
    parts_pj = {k: v["macs"] * mac_pj + v["acs"] * ac_pj for k, v in parts.items()}
    parts_pj["neurons"] = counter.neuron_macs * mac_pj / n
    dense_pj = (counter.dense_macs + counter.neuron_macs) * mac_pj / n
    out = {
        "convention": convention_name(counter.convention, mac_pj, ac_pj), "rule": counter.convention,
        "arithmetic": arithmetic_name(mac_pj, ac_pj), "per": per, "samples": counter.samples,
        "macs": macs / n, "acs": acs / n, "synaptic_macs": syn_macs / n, "neuron_macs": counter.neuron_macs / n,
        "energy_pj": energy, "energy_mac_pj": macs * mac_pj / n, "energy_ac_pj": acs * ac_pj / n,
        "mac_pj": mac_pj, "ac_pj": ac_pj,
        "parts": parts, "energy_parts_pj": parts_pj,
        "energy_dense_activations_pj": dense_pj, "spiking_gain": dense_pj / energy if energy else None,
        "firing_rate": {k: counter.spikes[k] / counter.neuron_steps[k] if counter.neuron_steps[k] else 0.0
                        for k in sorted(counter.spikes)},
        "params": params, "param_bytes": 4 * params,
        "state_values": floats, "state_spike_bits": bits, "state_bytes": 4 * floats + math.ceil(bits / 8),
        "per_weight": {k: {"macs": counter.macs[k] / n, "acs": counter.acs.get(k, 0) / n} for k in sorted(counter.macs)},
        "totals": {"macs": macs, "acs": acs, "neuron_macs": counter.neuron_macs, "dense_macs": counter.dense_macs,
                   "spikes": dict(counter.spikes), "neuron_steps": dict(counter.neuron_steps),
                   "weight_reads": weight_reads, "state_accesses": state_accesses},
    }
    if memory is not None:
        if memory_model not in MEMORY_MODELS:
            raise ValueError(f"unknown memory model {memory_model!r} (known: {', '.join(MEMORY_MODELS)})")
        if memory == "sram-fit":
            if memory_pj is not None:
                raise ValueError("sram-fit takes its energy per access from the weights' size; memory_pj fixes one")
            fixed, access_pj = None, sram_fit_pj(4 * params)
        else:
            fixed = access_pj = MEMORY_PJ[memory] if memory_pj is None else memory_pj
        if memory_model == "event":
            state_accesses += 2 * acs
        memory_energy = (weight_reads + state_accesses) * access_pj / n
        out["totals"]["state_accesses"] = state_accesses
        parts_pj["memory"] = memory_energy
        out.update(memory=memory_name(memory, memory_model), memory_level=memory, memory_model=memory_model,
                   memory_pj=fixed, memory_access_pj=access_pj, weight_reads=weight_reads / n,
                   state_accesses=state_accesses / n, energy_memory_pj=memory_energy,
                   energy_with_memory_pj=energy + memory_energy)
    return out
