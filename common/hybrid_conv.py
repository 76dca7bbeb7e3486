"""Hybrid convolutional network shared by the event-camera experiments (DVS Gesture, N-MNIST).

Every layer holds two populations that see the same input frame:
    RCNN  y_t = act(rcnn_fc(x_t), rcnn_fv(y_{t-1}))   a recurrent conv (DVS: tanh(a + relu(b)),
                                                      N-MNIST: relu(a + b)), state y_0 = 0
                                                      (common.neurons.rcnn_step)
    SCNN  LIF neurons driven by scnn_fc(x_t)         (common.neurons.lif_step)
each followed by 2x2 average pooling; the layer's output is cat(pooled spikes, pooled y), SCNN first,
and is the next layer's input at the same time step. The readout takes the last layer's pooled spikes
summed over all time steps and its pooled RCNN map at the final step, flattened (channel, h, w), then
relu(Linear) -> Linear: raw class scores, trained with MSE on one-hot targets.

Parameter names and the three config lists are the authors' (hcnn_layers.<l>.{rcnn_fc,rcnn_fv,scnn_fc},
linear_layers.{0,1}; layer_config / buffer_config / linear_config), so their checkpoints load into
a model rebuilt from the configs they stored. A population may be empty (pure RCNN or SCNN nets).

Two equal ways to run the network: `forward_definition` is the definition (time-major, one step of
every layer after the other, as the authors wrote it); `forward_fast` runs layer by layer: the input
convs over all T*B frames at once, then the multi-step neurons of common/fast/ (lif_multistep,
rcnn_multistep) and pooling that keeps nothing for its backward: about half the definition's memory
for the same numbers.
"""
import copy
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from common import execution
from common.fast.lif import lif_multistep
from common.fast.rcnn import pooled_unsaved, rcnn_multistep
from common.neurons import RCNN_UPDATES, lif_step, rcnn_step
from common.counts import SelectionError, neuron_count
from common.errors import KitError
from common.training import load_weights

TYPES = ("rcnn", "scnn")
RECOMPUTE_BELOW = 16  # forward_fast recomputes SCNN input convs with fewer input channels in the backward


# -- shapes ---------------------------------------------------------------------------------------------
def parse_channels(text):
    """'128,256,384' -> [128, 256, 384] (ValueError with a clear message otherwise)."""
    try:
        channels = [int(c) for c in str(text).split(",")]
    except ValueError:
        raise ValueError(f"--channels must be comma-separated whole numbers, e.g. 128,256,384 (got {text!r})") from None
    if not channels or min(channels) < 1:
        raise ValueError(f"--channels must be positive channel counts, one per layer (got {text!r})")
    return channels


def valid_ratios_text(channels):
    """Which ffs ratios give whole channel counts in every layer: the multiples of 1/gcd(channels)."""
    g = math.gcd(*channels)
    examples = [k / g for k in range(1, g) if (k / g * 16).is_integer()][:6] or [k / g for k in range(1, min(g, 5))]
    if g == 1:
        return f"with --channels {','.join(map(str, channels))} no ratio strictly between 0 and 1 gives whole channel counts"
    return (f"with --channels {','.join(map(str, channels))} the valid ratios are the multiples of 1/{g} between 0 and 1"
            f" (e.g. {', '.join(f'{r:g}' for r in examples)})")


def population_channels(model, channels, ratio=0.5, truncate=False):
    """(rcnn, scnn) channel counts per layer of a model built from scratch.

    rnn: all RCNN; snn: all SCNN; hybrid (Adaptation): both populations full in every layer;
    ffs: every layer split by the SNN ratio, which must give whole channel counts in every layer
    (truncate=True: the original int() truncation instead).
    """
    if model == "rnn":
        return list(channels), [0] * len(channels)
    if model == "snn":
        return [0] * len(channels), list(channels)
    if model == "hybrid":
        return list(channels), list(channels)
    if model != "ffs":
        raise ValueError(f"unknown model {model!r}")
    rc, sc = [], []
    for l, c in enumerate(channels):
        try:
            sc.append(neuron_count(c, ratio, "", truncate))
            rc.append(neuron_count(c, 1.0 - ratio, "", truncate))
        except SelectionError:
            raise ValueError(f"ffs --ratio {ratio:g} gives {c} x {ratio:g} = {c * ratio:g} SCNN channels in layer {l} "
                             f"({c} channels), not a whole number; {valid_ratios_text(channels)}. "
                             f"(--truncate_counts gives the original int() truncation instead.)") from None
        if rc[-1] + sc[-1] == 0:
            raise ValueError(f"ffs --ratio {ratio:g} leaves no channel in layer {l}")
    if not any(rc) or not any(sc):  # a hybrid needs both kinds
        raise ValueError(f"ffs --channels {','.join(map(str, channels))} --ratio {ratio:g}"
                         f"{' --truncate_counts' if truncate else ''} gives {sum(sc)} SCNN and {sum(rc)} RCNN channels; "
                         "a hybrid trained from scratch needs at least one of each: use wider --channels")
    return rc, sc


def build_configs(channels, rcnn, scnn, in_channels, input_size, nclass, first_padding=1, hidden=256):
    """The authors' layer_config, buffer_config and linear_config for the given population sizes.

    Input widths are recomputed from the populations (layer l > 0 sees the previous layer's
    scnn + rcnn channels; the readout sees the last layer's, times its pooled map), so every
    shape is right for any split. Layers: 3x3 conv, stride 1, padding 1 (layer 0: first_padding),
    2x2 average pooling with stride 2.
    """
    layer_config, buffer_config = [], []
    size, inp = input_size, in_channels
    for l, (c, r, s) in enumerate(zip(channels, rcnn, scnn)):
        if r + s <= 0:
            raise ValueError(f"layer {l} has no channel at all (rcnn {r}, scnn {s})")
        pad = first_padding if l == 0 else 1
        out = size + 2 * pad - 3 + 1
        if out < 2:
            raise ValueError(f"layer {l} would see a {size}x{size} map, too small for a 3x3 conv and 2x2 pooling: "
                             f"use fewer layers or a larger input")
        layer_config.append(dict(input_channels=inp, cnn_channels=c, conv_kernel_size=3, pool_kernel_size=2,
                                 conv_stride=1, pool_stride=2, fc_padding=pad, fv_padding=1, avr_pool=True,
                                 rcnn_channels=r, scnn_channels=s))
        buffer_config.append(dict(output_size=out, pooled_size=out // 2, rcnn_channels=r, scnn_channels=s))
        size, inp = out // 2, r + s
    linear_config = [dict(input_channels=inp * size * size, output_channels=hidden),
                     dict(input_channels=hidden, output_channels=nclass)]
    return layer_config, buffer_config, linear_config


# -- the network ------------------------------------------------------------------------------------------
class HybridLayer(nn.Module):
    """One layer's convs (creation order rcnn_fc, rcnn_fv, scnn_fc: the authors' RNG order). PyTorch's
    default Conv2d initialisation; all convs have biases."""

    def __init__(self, input_channels, rcnn_channels, scnn_channels, conv_kernel_size=3, pool_kernel_size=2,
                 conv_stride=1, pool_stride=2, fc_padding=1, fv_padding=1, avr_pool=True, device=None, **_):
        super().__init__()
        if not avr_pool:
            raise ValueError("only average-pooled layers are supported (avr_pool=True, as in every configuration)")
        self.rcnn_channels, self.scnn_channels = rcnn_channels, scnn_channels
        self.pool = (pool_kernel_size, pool_stride)
        conv = dict(kernel_size=conv_kernel_size, stride=conv_stride, device=device)
        if rcnn_channels > 0:
            self.rcnn_fc = nn.Conv2d(input_channels, rcnn_channels, padding=fc_padding, **conv)
            self.rcnn_fv = nn.Conv2d(rcnn_channels, rcnn_channels, padding=fv_padding, **conv)
        if scnn_channels > 0:
            self.scnn_fc = nn.Conv2d(input_channels, scnn_channels, padding=fc_padding, **conv)

    def pooled(self, x):
        """2x2 average pooling of [..., C, H, W] (any number of leading dims)."""
        lead = x.shape[:-3]
        out = F.avg_pool2d(x.reshape(-1, *x.shape[-3:]), *self.pool)
        return out.view(*lead, *out.shape[1:])


class HybridConvNet(nn.Module):
    """The hybrid conv net. decay, thresh, lens: LIF constants; rcnn: 'tanh' (DVS) or 'relu' (N-MNIST).

    device: where the parameters are created and initialised. The authors built their nets on the GPU,
    so the initial weights came from the CUDA generator and left the CPU one (data shuffling) untouched.
    """

    def __init__(self, layer_config, buffer_config, linear_config, decay, thresh, lens, rcnn="tanh", device=None):
        super().__init__()
        if rcnn not in RCNN_UPDATES:
            raise ValueError(f"rcnn must be one of {sorted(RCNN_UPDATES)}")
        self.config = dict(layer_config=copy.deepcopy(layer_config), buffer_config=copy.deepcopy(buffer_config),
                           linear_config=copy.deepcopy(linear_config), decay=decay, thresh=thresh, lens=lens,
                           rcnn=rcnn)
        self.layer_config, self.buffer_config, self.linear_config = (self.config[k] for k in
                                                                     ("layer_config", "buffer_config", "linear_config"))
        self.decay, self.thresh, self.lens = decay, thresh, lens
        self.fast = None  # None follows common.execution; True/False force layer-major/definition (tests, benchmarks)
        self.observer = None  # when set, every forward is forward_fast reporting to it (common.cost.counting)
        self.hcnn_layers = nn.ModuleList([HybridLayer(**layer, device=device) for layer in layer_config])
        self.linear_layers = nn.ModuleList([nn.Linear(lin["input_channels"], lin["output_channels"], device=device)
                                            for lin in linear_config])

    @property
    def input_size(self):
        """Height (= width) of the input frames the configs were built for."""
        first, buf = self.layer_config[0], self.buffer_config[0]
        return buf["output_size"] - 2 * first["fc_padding"] + first["conv_kernel_size"] - 1

    @property
    def nclass(self):
        return self.linear_config[-1]["output_channels"]

    def forward(self, inputs, masks=None):
        """inputs (B, C, H, W, T) -> class scores (B, nclass).

        `masks` (probed name -> 0/1 vector over that population's filters) forces chosen filters'
        outputs to zero at every step; it exists to prove that shrinking equals masking, and runs
        the definition.
        """
        if inputs.shape[-2] != self.input_size or inputs.shape[-3] != self.input_size:
            raise ValueError(f"the network was built for {self.input_size}x{self.input_size} frames, "
                             f"got {tuple(inputs.shape[-3:-1])}")
        if self.observer is not None:
            if masks is not None:
                raise ValueError("an observer (cost counting) watches the unmasked network")
            return self.forward_fast(inputs, self.observer)
        if masks is None and execution.runs_fast(self):
            return self.forward_fast(inputs)
        return self.forward_definition(inputs, masks)

    def readout(self, spike_sum, last_y):
        parts = [p for p in (spike_sum, last_y) if p is not None]
        x = torch.cat(parts, dim=1).flatten(1)
        return self.linear_layers[1](F.relu(self.linear_layers[0](x)))

    def forward_definition(self, inputs, masks=None):
        """The definition: at every time step, every layer in turn (the authors' loop)."""
        n = len(self.hcnn_layers)
        mem, spk, y = [None] * n, [None] * n, [None] * n
        spike_sum = None
        for t in range(inputs.shape[-1]):
            x = inputs[..., t]
            for l, layer in enumerate(self.hcnn_layers):
                parts = []
                if layer.scnn_channels:
                    current = layer.scnn_fc(x)
                    if mem[l] is None:
                        mem[l] = spk[l] = torch.zeros_like(current)
                    mem[l], spk[l] = lif_step(mem[l], spk[l], current, self.decay, self.thresh, self.lens)
                    if masks is not None:
                        spk[l] = spk[l] * masks[f"hcnn_layers.{l}.scnn_fc"].view(1, -1, 1, 1)
                    parts.append(layer.pooled(spk[l]))
                if layer.rcnn_channels:
                    y[l] = rcnn_step(x, y[l], layer.rcnn_fc, layer.rcnn_fv, self.config["rcnn"])
                    if masks is not None:
                        y[l] = y[l] * masks[f"hcnn_layers.{l}.rcnn_fc"].view(1, -1, 1, 1)
                    parts.append(layer.pooled(y[l]))
                x = torch.cat(parts, dim=1)
            if self.hcnn_layers[-1].scnn_channels:  # parts: the last layer's pooled outputs, SCNN first
                spike_sum = parts[0] if spike_sum is None else spike_sum + parts[0]
        return self.readout(spike_sum, parts[-1] if self.hcnn_layers[-1].rcnn_channels else None)

    def forward_fast(self, inputs, observer=None):
        """Layer-major execution, equal to the definition: layer l's input at step t is layer l-1's
        output at step t, so each layer can run over the whole window before the next one.
        observer: told each population's input frames [T*B, C, H, W] and output, observer.scnn(model, l,
        frames, spikes [T, B, C, H, W]) and observer.rcnn(model, l, frames, drive = rcnn_fc(frames)), then
        observer.conv_readout(model, spike_sum, last_y); common.cost.Counter counts from them."""
        T, B = inputs.shape[-1], inputs.shape[0]
        x = inputs.permute(4, 0, 1, 2, 3)  # [T, B, C, H, W]
        for l, layer in enumerate(self.hcnn_layers):
            frames = x.reshape(T * B, *x.shape[2:])
            parts = []
            if layer.scnn_channels:  # full-size maps are not kept past their use: only pooled ones are
                def scnn(f, layer=layer):
                    return lif_multistep(layer.scnn_fc(f).unflatten(0, (T, B)), self.decay, self.thresh, self.lens)
                # a conv over few input channels (the first layer's, whose maps are the largest) is cheap:
                # recompute its output in the backward instead of keeping it
                cheap = layer.scnn_fc.in_channels < RECOMPUTE_BELOW
                spikes = checkpoint(scnn, frames, use_reentrant=False) if cheap else scnn(frames)
                if observer is not None:
                    observer.scnn(self, l, frames, spikes)
                parts.append(pooled_unsaved(layer, spikes))
                del spikes
            if layer.rcnn_channels:
                drive = layer.rcnn_fc(frames).unflatten(0, (T, B))
                if observer is not None:
                    observer.rcnn(self, l, frames, drive)
                parts.append(rcnn_multistep(drive, layer.rcnn_fv, self.config["rcnn"], layer.pool))
                del drive
            x = torch.cat(parts, dim=2)
        last = self.hcnn_layers[-1]
        spike_sum = parts[0].sum(0) if last.scnn_channels else None
        last_y = parts[-1][-1] if last.rcnn_channels else None
        if observer is not None:
            observer.conv_readout(self, spike_sum, last_y)
        return self.readout(spike_sum, last_y)

    # -- selection support -------------------------------------------------------------------------------
    def probed_groups(self):
        """The weights whose Hessian scores each population: every layer's rcnn_fc and scnn_fc weight
        (not rcnn_fv, not biases), in module order; a filter is dim 0. Format of common.hessian."""
        groups = {}
        for l, layer in enumerate(self.hcnn_layers):
            for kind in TYPES:
                conv = getattr(layer, f"{kind}_fc", None)
                if conv is not None:
                    groups[f"hcnn_layers.{l}.{kind}_fc"] = ([conv.weight], 0, 0)
        return groups

    def population_sizes(self):
        return {f"hcnn_layers.{l}.{kind}_fc": layer[f"{kind}_channels"]
                for l, layer in enumerate(self.layer_config) for kind in TYPES}

    def masks_for(self, keep):
        """0/1 output masks equivalent to keeping only `keep` (for the shrink = mask proof)."""
        w = next(self.parameters())
        masks = {}
        for name, n in self.population_sizes().items():
            m = w.new_zeros(n)
            m[sorted(keep.get(name, []))] = 1
            masks[name] = m
        return masks

    def shrunk(self, keep):
        """A new, smaller model holding only the kept filters (keep: probed name -> indices).

        It computes exactly what this model computes with the dropped filters' outputs forced to zero:
        filters keep their order; layer l > 0 keeps the input channels of the kept filters of layer l-1
        (SCNN first, as the concatenation); rcnn_fv is cut on both axes; the readout's first Linear
        keeps the column blocks (one pooled map each) of the last layer's kept filters.
        The new model is built on this model's device and draws initial weights (then overwritten) from
        the random stream, as the authors' load_and_shrink did, so Restoration sees their random stream.
        """
        keep = {name: sorted(keep.get(name, [])) for name in self.population_sizes()}
        layer_config, buffer_config = copy.deepcopy(self.layer_config), copy.deepcopy(self.buffer_config)
        linear_config = copy.deepcopy(self.linear_config)
        state = {k: v.detach().clone() for k, v in self.state_dict().items()}
        in_idx = None  # layer 0 keeps all input channels
        for l, (layer, buf) in enumerate(zip(layer_config, buffer_config)):
            r_idx, s_idx = keep[f"hcnn_layers.{l}.rcnn_fc"], keep[f"hcnn_layers.{l}.scnn_fc"]
            if not r_idx and not s_idx:
                raise ValueError(f"keeping no filter at all in layer {l}")
            for key in ("rcnn_channels", "scnn_channels", "input_channels"):
                layer[f"old_{key}"] = layer[key]
            layer["rcnn_channels"] = buf["rcnn_channels"] = len(r_idx)
            layer["scnn_channels"] = buf["scnn_channels"] = len(s_idx)
            if l > 0:
                layer["input_channels"] = len(in_idx)
            for kind, idx in (("rcnn", r_idx), ("scnn", s_idx)):
                prefix = f"hcnn_layers.{l}.{kind}_"
                if f"{prefix}fc.weight" not in state:
                    continue
                for name in (f"{prefix}fc", f"{prefix}fv"):
                    if f"{name}.weight" not in state:
                        continue
                    if idx:
                        cols = in_idx if name.endswith("fc") else idx
                        w = state[f"{name}.weight"][idx]
                        state[f"{name}.weight"] = w if cols is None else w[:, cols]
                        state[f"{name}.bias"] = state[f"{name}.bias"][idx]
                    else:
                        del state[f"{name}.weight"], state[f"{name}.bias"]
            in_idx = s_idx + [i + layer["old_scnn_channels"] for i in r_idx]
        pooled = buffer_config[-1]["pooled_size"]
        lin = linear_config[0]
        lin["old_input_channels"] = lin["input_channels"]
        lin["input_channels"] = len(in_idx) * pooled * pooled
        w = state["linear_layers.0.weight"]
        state["linear_layers.0.weight"] = w.view(w.shape[0], -1, pooled * pooled)[:, in_idx].reshape(w.shape[0], -1)
        config = dict(self.config, layer_config=layer_config, buffer_config=buffer_config, linear_config=linear_config)
        small = type(self)(**config, device=w.device).to(w.dtype)
        small.load_state_dict(state)
        small.fast = self.fast
        return small


def accuracy(correct, total):
    """100 * correct / total rounded to float32, as the authors' tensor, so logs agree digit for digit."""
    return (torch.tensor(100.0 * int(correct), dtype=torch.float32) / int(total)).item()


# -- what both conv experiment scripts do the same way ----------------------------------------------------
def add_size_arguments(parser, default_nwin):
    """The flags that shrink a run: channel widths, time window, and the trace batch."""
    parser.add_argument("--channels", type=str, default="128,256,384",
                        help="base channels per layer, comma-separated (the number of entries is the number of layers); "
                             "the redundant hybrid has this many RCNN and as many SCNN channels. Small runs: e.g. 8,16,24")
    parser.add_argument("--nwin", type=int, default=default_nwin, help="time steps (frames) per sample")
    parser.add_argument("--hessian_batch", type=int, default=None,
                        help="samples in the Hessian trace batch; None: --batch_size")


def check_size_arguments(args):
    """Parse --channels into a list and check the size flags (KitError on bad input)."""
    try:
        args.channels = parse_channels(args.channels)
        if args.mode == "train1":  # refuse an invalid ffs ratio before loading any data
            population_channels(args.model, args.channels, args.ratio, args.truncate_counts)
    except ValueError as e:
        raise KitError(str(e))
    if args.nwin < 1:
        raise KitError(f"--nwin must be at least 1 (got {args.nwin})")
    if args.batch_size < 1:
        raise KitError(f"--batch_size must be at least 1 (got {args.batch_size})")
    args.hessian_batch = args.batch_size if args.hessian_batch is None else args.hessian_batch
    if args.hessian_batch < 1:
        raise KitError(f"--hessian_batch must be at least 1 (got {args.hessian_batch})")


def new_network(args, in_channels, input_size, nclass, neuron, device, first_padding=1):
    """The network of --model built from scratch with --channels on `device` (train1)."""
    try:
        rcnn, scnn = population_channels(args.model, args.channels, args.ratio, args.truncate_counts)
        configs = build_configs(args.channels, rcnn, scnn, in_channels, input_size, nclass, first_padding)
    except ValueError as e:
        raise KitError(str(e))
    return HybridConvNet(*configs, **neuron, device=device)


def network_from_checkpoint(ckpt, path, neuron, input_size, device=None):
    """Rebuild a network on `device` from the configs stored in a checkpoint of this kit or of the authors' scripts."""
    try:
        model = HybridConvNet(ckpt["layer_config"], ckpt["buffer_config"], ckpt["linear_config"], **neuron,
                              device=device)
    except (KeyError, TypeError, ValueError) as e:
        raise KitError(f"checkpoint {path} does not hold the conv network's configs ({type(e).__name__}: {e})")
    load_weights(model, ckpt["net"], path)
    if model.input_size != input_size:
        raise KitError(f"checkpoint {path} was trained on {model.input_size}x{model.input_size} frames, but the data "
                       f"flags give {input_size}x{input_size}: use the flags it was trained with")
    return model


def checkpoint_meta(model, seed):
    """The authors' checkpoint keys besides the weights and the accuracy record."""
    return dict(seed=seed, layer_config=copy.deepcopy(model.layer_config),
                buffer_config=copy.deepcopy(model.buffer_config), linear_config=copy.deepcopy(model.linear_config))


def log_channels(logger, model):
    for kind in TYPES:
        logger.info(f"model with {kind}_channels: {[layer[f'{kind}_channels'] for layer in model.layer_config]}")
