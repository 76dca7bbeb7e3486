"""Two-layer hybrid recurrent stack shared by the fully connected experiments (PTB, S-MNIST).

Each layer holds an SNN population and a non-spiking population (sigmoid RNN or LSTM) that
receive the same input; the layer's output is cat(spikes, rnn state), SNN first. Any population
may be empty, which gives the pure RNN/LSTM and pure SNN baselines.

Parameter names and shapes are the authors' (weights stored (in, out), used as x @ W), so their
checkpoints load:
    snn_fc1 (ninp, s0)      snn_fc2 (s0 + r0, s1)
    rnn_fc1 (ninp, r0)      rnn_fc2 (s0 + r0, r1)      rnn_fv1 (r0, r0)   rnn_fv2 (r1, r1)
    lstm_wi1 (4, ninp, r0)  lstm_wi2 (4, s0 + r0, r1)  lstm_wh1 (4, r0, r0)  lstm_wh2 (4, r1, r1)
With bias=True (sigmoid RNN cell only; not the authors' published models) each input projection
also has a bias, zero at initialisation: snn_fc1_bias (s0), rnn_fc1_bias (r0), ... for layer 2.
A model class (PTB, S-MNIST) subclasses HybridFC, builds its own input and readout modules around
`build_stack`, and names its readout (an nn.Linear over the layer-2 outputs) in `readout_name`.
"""
import torch
import torch.nn as nn

from common import execution
from common.fast.lif import lif_multistep
from common.fast.lstm import lstm_multistep
from common.fast.rnn import rnn_multistep
from common.neurons import lif_step, lstm_step, rnn_step

POPULATIONS = ("snn1", "snn2", "rnn1", "rnn2")  # layer-wise population keys, in selection order


def new_weight(*shape):
    """The authors' initialisation: kaiming_uniform_ with PyTorch defaults on the stored shape."""
    return nn.Parameter(nn.init.kaiming_uniform_(torch.empty(*shape)))


class HybridFC(nn.Module):
    readout_name = None  # attribute holding the nn.Linear readout over [layer-2 SNN, layer-2 RNN]

    def build_stack(self, ninp, rnn_shape, snn_shape, cell="rnn", decay=0.6, thresh=0.6, lens=0.5, bias=False):
        assert cell in ("rnn", "lstm")
        if bias and cell != "rnn":
            raise ValueError("input biases exist for the sigmoid RNN cell only")
        for r, s in zip(rnn_shape, snn_shape):
            if r + s <= 0:
                raise ValueError(f"every layer needs at least one neuron (rnn_shape={rnn_shape}, snn_shape={snn_shape})")
        self.ninp, self.cell = ninp, cell
        self.rnn_shape, self.snn_shape = list(rnn_shape), list(snn_shape)
        self.decay, self.thresh, self.lens = decay, thresh, lens
        self.fast = None  # None follows common.execution; True/False force layer-major/definition (tests, benchmarks)
        self.observer = None  # when set, every run is forward_fast reporting to it (common.cost.counting)
        inputs = [ninp, snn_shape[0] + rnn_shape[0]]
        # creation order fixes the RNG order of the initialisation: snn fc, rnn fc, rnn fv
        for l in (1, 2):
            if snn_shape[l - 1] > 0:
                setattr(self, f"snn_fc{l}", new_weight(inputs[l - 1], snn_shape[l - 1]))
        gates = () if cell == "rnn" else (4,)
        fc, fv = ("rnn_fc", "rnn_fv") if cell == "rnn" else ("lstm_wi", "lstm_wh")
        for l in (1, 2):
            if rnn_shape[l - 1] > 0:
                setattr(self, f"{fc}{l}", new_weight(*gates, inputs[l - 1], rnn_shape[l - 1]))
        for l in (1, 2):
            if rnn_shape[l - 1] > 0:
                setattr(self, f"{fv}{l}", new_weight(*gates, rnn_shape[l - 1], rnn_shape[l - 1]))
        self.bias = bias  # zeros: no random numbers drawn, so the weights equal the bias-free model's
        for l in (1, 2):
            for kind, n in (("snn", snn_shape[l - 1]), ("rnn", rnn_shape[l - 1])):
                if bias and n > 0:
                    setattr(self, f"{kind}_fc{l}_bias", nn.Parameter(torch.zeros(n)))

    # -- state ---------------------------------------------------------------------------------
    def init_hidden(self, bsz):
        w = next(self.parameters())
        h = [w.new_zeros(bsz, r) for r in self.rnn_shape]
        return tuple(h) if self.cell == "rnn" else tuple(h + [w.new_zeros(bsz, r) for r in self.rnn_shape])

    def weights(self, l):
        """(snn input, rnn input, rnn recurrent) weights of layer l (1 or 2); None when empty."""
        if self.cell == "rnn":
            return getattr(self, f"snn_fc{l}", None), getattr(self, f"rnn_fc{l}", None), getattr(self, f"rnn_fv{l}", None)
        return getattr(self, f"snn_fc{l}", None), getattr(self, f"lstm_wi{l}", None), getattr(self, f"lstm_wh{l}", None)

    def input_biases(self, l):
        """(snn, rnn) input-projection biases of layer l; None without --bias or when empty."""
        return getattr(self, f"snn_fc{l}_bias", None), getattr(self, f"rnn_fc{l}_bias", None)

    # -- forward ---------------------------------------------------------------------------------
    def run(self, x, hidden, masks=None):
        """x: [T, B, ninp]. Returns (layer-2 spikes [T, B, s1], layer-2 RNN states [T, B, r1], hidden).

        The SNN state starts at zero on every call; the RNN/LSTM state is carried in `hidden`.
        The process's execution setting (common.execution) picks forward_definition (definition) or
        forward_fast (torch, triton), unless `fast` overrides it for this model.
        `masks` (population key -> 0/1 vector) forces chosen neurons' outputs to zero; it exists
        to prove that shrinking a network equals masking it, and runs the definition.
        """
        if self.observer is not None:
            if masks is not None:
                raise ValueError("an observer (cost counting) watches the unmasked network")
            return self.forward_fast(x, hidden, self.observer)
        if masks is None and execution.runs_fast(self):
            return self.forward_fast(x, hidden)
        return self.forward_definition(x, hidden, masks)

    def forward_definition(self, x, hidden, masks=None):
        """The definition: one time step of both layers after the other."""
        T, B = x.shape[:2]
        h = list(hidden[:2])
        c = list(hidden[2:]) if self.cell == "lstm" else [None, None]
        mem = [x.new_zeros(B, s) for s in self.snn_shape]
        spk = [x.new_zeros(B, s) for s in self.snn_shape]
        spikes2, states2 = [], []
        for t in range(T):
            inp = x[t]
            for i, l in enumerate((1, 2)):
                w_snn, w_in, w_rec = self.weights(l)
                b_snn, b_rnn = self.input_biases(l)
                if w_snn is not None:
                    current = inp @ w_snn if b_snn is None else inp @ w_snn + b_snn
                    mem[i], spk[i] = lif_step(mem[i], spk[i], current, self.decay, self.thresh, self.lens)
                    if masks is not None:
                        spk[i] = spk[i] * masks[f"snn{l}"]
                if w_in is not None:
                    if self.cell == "rnn":
                        h[i] = rnn_step(inp, h[i], w_in, w_rec, b_rnn)
                    else:
                        h[i], c[i] = lstm_step(inp, h[i], c[i], w_in, w_rec)
                    if masks is not None:
                        h[i] = h[i] * masks[f"rnn{l}"]
                inp = torch.cat([spk[i], h[i]], dim=1)
            spikes2.append(spk[1])
            states2.append(h[1])
        hidden = tuple(h) if self.cell == "rnn" else tuple(h + c)
        return torch.stack(spikes2), torch.stack(states2), hidden

    def forward_fast(self, x, hidden, observer=None):
        """Layer-major execution: each layer's input projections for all T steps in one matrix
        product, then the multi-step neurons of common/fast/ (lif, rnn, lstm) over all T steps.
        Twice differentiable (Hessians) through the same nodes: their second order is the definition's.
        observer: told each layer's inputs and outputs, observer.fc_layer(model, l, inputs [T*B, in],
        spikes [T, B, s] or None, states [T, B, r] or None); common.cost.Counter counts from them."""
        T, B = x.shape[:2]
        h = list(hidden[:2])
        c = list(hidden[2:]) if self.cell == "lstm" else [None, None]
        inp = x
        for i, l in enumerate((1, 2)):
            w_snn, w_in, w_rec = self.weights(l)
            b_snn, b_rnn = self.input_biases(l)
            flat = inp.reshape(T * B, -1)
            if w_snn is not None:
                spikes = lif_multistep(project(flat, w_snn, b_snn).view(T, B, -1), self.decay, self.thresh, self.lens)
            else:
                spikes = x.new_zeros(T, B, 0)
            if w_in is None:
                states = x.new_zeros(T, B, 0)
            elif self.cell == "rnn":
                states = rnn_multistep(project(flat, w_in, b_rnn).view(T, B, -1), h[i], w_rec)
                h[i] = states[-1]
            else:
                states, h[i], c[i] = lstm_multistep(flat, T, h[i], c[i], w_in, w_rec)
            if observer is not None:
                observer.fc_layer(self, l, flat, spikes if w_snn is not None else None, states if w_in is not None else None)
            inp = torch.cat([spikes, states], dim=2)
        hidden = tuple(h) if self.cell == "rnn" else tuple(h + c)
        return spikes, states, hidden

    # -- selection support -------------------------------------------------------------------------
    def probed_groups(self):
        """Weights whose Hessian scores each population, in the authors' order snn1, snn2, rnn1, rnn2.

        Each entry: (list of tensors, dim along which they are stacked into the authors' 'union'
        weight, neuron dim of the union). An RNN neuron's block covers its input and recurrent
        weights together; an LSTM neuron's block covers all four gates of both. The non-spiking
        population is keyed rnn1/rnn2 for LSTM cells too.
        """
        groups = {}
        for l in (1, 2):
            w_snn = getattr(self, f"snn_fc{l}", None)
            if w_snn is not None:
                groups[f"snn{l}"] = ([w_snn], 0, 1)
        for l in (1, 2):
            _, w_in, w_rec = self.weights(l)
            if w_in is not None:
                groups[f"rnn{l}"] = ([w_in, w_rec], 0, 1) if self.cell == "rnn" else ([w_in, w_rec], 1, 2)
        return groups

    def population_sizes(self):
        return {"snn1": self.snn_shape[0], "snn2": self.snn_shape[1],
                "rnn1": self.rnn_shape[0], "rnn2": self.rnn_shape[1]}

    def shrunk(self, keep):
        """A new, smaller model holding only the kept neurons (keep: population key -> indices).

        It computes exactly what this model computes with the dropped neurons' outputs forced to
        zero: rows and columns are selected in the original neuron order.
        """
        keep = {k: sorted(keep.get(k, [])) for k in POPULATIONS}
        s0, s1 = self.snn_shape
        cols = {1: keep["snn1"], 2: keep["snn2"]}
        rows2 = keep["snn1"] + [i + s0 for i in keep["rnn1"]]
        readout_cols = keep["snn2"] + [i + s1 for i in keep["rnn2"]]
        state = self.state_dict()
        new_state = {}
        for name, w in state.items():
            if name.endswith("_bias"):  # snn_fc<l>_bias, rnn_fc<l>_bias: the kept neurons' biases
                w = w[keep[f"{name[:3]}{name[6]}"]]
            elif name.startswith("snn_fc"):
                l = int(name[-1])
                w = w[:, cols[l]] if l == 1 else w[rows2][:, cols[l]]
            elif name[:-1] in ("rnn_fc", "rnn_fv", "lstm_wi", "lstm_wh"):
                l = int(name[-1])
                idx = keep[f"rnn{l}"]
                rows = idx if "fv" in name or "wh" in name else (rows2 if l == 2 else None)
                if w.dim() == 2:
                    w = w[:, idx] if rows is None else w[rows][:, idx]
                else:
                    w = w[:, :, idx] if rows is None else w[:, rows][:, :, idx]
            elif name == f"{self.readout_name}.weight":
                w = w[:, readout_cols]
            new_state[name] = w.clone()
        config = dict(self.config, rnn_shape=[len(keep["rnn1"]), len(keep["rnn2"])],
                      snn_shape=[len(keep["snn1"]), len(keep["snn2"])])
        like = next(self.parameters())
        with torch.random.fork_rng(devices=[]):  # building the new model must not move the RNG
            small = type(self)(**config).to(device=like.device, dtype=like.dtype)
        small.load_state_dict(new_state)
        small.fast = self.fast
        small.train(self.training)
        return small

    def masks_for(self, keep):
        """0/1 output masks equivalent to keeping only `keep` (for the shrink = mask proof)."""
        w = next(self.parameters())
        masks = {}
        for key, n in self.population_sizes().items():
            m = w.new_zeros(n)
            m[sorted(keep.get(key, []))] = 1
            masks[key] = m
        return masks


def project(flat, w, bias=None):
    """flat @ w, plus the input bias when there is one (the definition's order: (x W) + b)."""
    return flat @ w if bias is None else flat @ w + bias
