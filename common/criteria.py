"""Selection criteria: the per-neuron scores that Selection ranks.

Every criterion feeds the same rule (common.selection.select_fc or select_conv: the same kept counts
and per-layer rule); only the scores differ. A neuron's weight block w_c is the one the Hessian traces
are taken over (probed_groups: the neuron's input and recurrent weights, or a conv filter).
"""
import torch

from common.hessian import importance, per_neuron
from common.errors import KitError

CRITERIA = {
    "hessian": "Hessian-trace importance, trace x ||w||^2 / numel (the method)",
    "random": "uniform random scores",
    "reversed": "minus the Hessian importance (keeps the least important neurons)",
    "magnitude": "||w||^2 / numel of the neuron's weight block alone",
    "trace": "the Hessian trace alone",
    "taylor": "first-order Taylor |sum of g * w| over the neuron's weight block on the trace batch (Molchanov et al. 2019)",
    "oracle": "leave-one-out: the loss increase when the neuron alone is removed (its output zero)",
}


def sizes(groups):
    """Population key -> number of neurons."""
    return {key: tensors[0].shape[neuron_dim] for key, (tensors, _, neuron_dim) in groups.items()}


def magnitude(groups):
    """||w_c||^2 / numel(w_c) per neuron, w_c the neuron's whole weight block."""
    sq = per_neuron([t.detach() ** 2 for tensors, _, _ in groups.values() for t in tensors], groups)
    n = sizes(groups)
    return {key: sq[key].float() / (sum(t.numel() for t in tensors) // n[key])
            for key, (tensors, _, _) in groups.items()}


def random_scores(groups, seed, draw=0):
    """Draw number `draw` (0, 1, ...) of uniform scores from a generator seeded with `seed`: the draws are
    successive sets from one generator, so draw 0 is the first set (what --selection random always drew)."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(draw + 1):
        scores = {key: torch.rand(n, generator=generator, dtype=torch.float64) for key, n in sizes(groups).items()}
    return scores


def taylor(loss, groups):
    """|sum over the neuron's weight block of g * w|, g the gradient of `loss` (Molchanov et al. 2019)."""
    params = [t for tensors, _, _ in groups.values() for t in tensors]
    grads = torch.autograd.grad(loss, params)
    return {key: v.abs().float() for key, v in per_neuron([g * p.detach() for g, p in zip(grads, params)], groups).items()}


def oracle(model, heldout_loss):
    """Leave-one-out: heldout_loss(model without neuron c) - heldout_loss(model), for every neuron c.

    The neuron is removed by model.shrunk (equal to forcing its output to zero); heldout_loss(model)
    returns the loss (a number) of any model on the held-out data. The random stream is left as it was.
    """
    n = sizes(model.probed_groups())
    was_training = model.training
    model.eval()
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        base = float(heldout_loss(model))
        out = {}
        for key in n:
            values = []
            for c in range(n[key]):
                keep = {k: list(range(m)) for k, m in n.items()}
                keep[key].remove(c)
                values.append(float(heldout_loss(model.shrunk(keep).eval())) - base)
            out[key] = torch.tensor(values, dtype=torch.float64)
    model.train(was_training)
    return out


def score_table(model, loss_fn, mean_traces, seed=0, draw=0, heldout_loss=None):
    """Every criterion's score per neuron: column -> population key -> tensor. Columns: trace, importance
    (the Hessian importance), magnitude, taylor, random (draw `draw`), and oracle when heldout_loss is given."""
    groups = model.probed_groups()
    table = {"trace": mean_traces, "importance": importance(mean_traces, groups), "magnitude": magnitude(groups)}
    model.eval()
    with torch.random.fork_rng(devices=[]):
        table["taylor"] = taylor(loss_fn(), groups)
    table["random"] = random_scores(groups, seed, draw)
    if heldout_loss is not None:
        table["oracle"] = oracle(model, heldout_loss)
    return table


def ranking(criterion, table):
    """The scores Selection ranks (highest kept) under `criterion`, from score_table's columns."""
    column = {"hessian": "importance", "reversed": "importance"}.get(criterion, criterion)
    if criterion not in CRITERIA:
        raise KitError(f"unknown selection criterion {criterion!r} (one of {', '.join(CRITERIA)})")
    if column not in table:
        raise KitError(f"--selection {criterion} needs a held-out loss, which this experiment does not provide")
    sign = -1 if criterion == "reversed" else 1
    return {key: sign * s for key, s in table[column].items()}
