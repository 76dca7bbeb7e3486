"""Selection criteria: the per-neuron scores that Selection ranks.

Every criterion feeds the same rule (common.selection.select_fc or select_conv: the same kept counts
and per-layer rule); only the scores differ. A neuron's weight block w_c is the one the Hessian traces
are taken over (probed_groups: the neuron's input and recurrent weights, or a conv filter).
"""
import torch

from common.fast.lif import lif_multistep
from common.fast.rnn import rnn_multistep
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


def oracle(model, heldout_loss, neurons=None, heldout_losses=None, chunk=16):
    """Leave-one-out: heldout_loss(model without neuron c) - heldout_loss(model), for every neuron c.

    The neuron is removed by model.shrunk (equal to forcing its output to zero); heldout_loss(model)
    returns the loss (a number) of any model on the held-out data. The random stream is left as it was.
    neurons: population key -> the indices to score (oracle_subset); the others score nan. Default: all.
    heldout_losses(masks) -> the held-out losses of K copies of the model at once, copy k with its neuron
    outputs multiplied by masks[key][k] (0/1 rows, removal_masks): when given, `chunk` neurons are scored
    per call, and the loss they are compared with is the unmasked copy's by the same path (so that what every
    copy shares cancels to the last bit: a silent neuron scores 0). The loop over model.shrunk below is the
    definition; tests prove the batched path equal to it.
    """
    n = sizes(model.probed_groups())
    neurons = {key: range(m) for key, m in n.items()} if neurons is None else neurons
    was_training = model.training
    model.eval()
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        like = next(model.parameters())
        if heldout_losses is None:
            base = float(heldout_loss(model))
        else:
            base = float(heldout_losses({k: like.new_ones(1, m) for k, m in n.items()})[0])
        out = {}
        for key in n:
            values = torch.full((n[key],), float("nan"), dtype=torch.float64)
            chosen = [int(c) for c in neurons.get(key, [])]
            if heldout_losses is None:
                for c in chosen:
                    keep = {k: list(range(m)) for k, m in n.items()}
                    keep[key].remove(c)
                    values[c] = float(heldout_loss(model.shrunk(keep).eval())) - base
            else:
                for start in range(0, len(chosen), chunk):
                    part = chosen[start:start + chunk]
                    losses = heldout_losses(removal_masks(n, key, part, like))
                    values[part] = torch.tensor([float(v) for v in losses], dtype=torch.float64) - base
            out[key] = values
    model.train(was_training)
    return out


def oracle_subset(sizes_by_key, per_population, seed):
    """A stratified random subset: `per_population` neurons of every population (all of a smaller one), drawn
    without replacement from a generator seeded with `seed`, in the order of the keys; sorted indices per key."""
    generator = torch.Generator().manual_seed(seed)
    return {key: sorted(torch.randperm(n, generator=generator)[:per_population].tolist())
            for key, n in sizes_by_key.items()}


def removal_masks(sizes_by_key, key, neurons, like):
    """0/1 output masks of len(neurons) copies of a network, [copies, n] per population: copy k without
    neuron neurons[k] of population `key` (every other mask is all ones)."""
    masks = {k: like.new_ones(len(neurons), m) for k, m in sizes_by_key.items()}
    masks[key][torch.arange(len(neurons)), torch.tensor(neurons, dtype=torch.long)] = 0
    return masks


def masked_copies(model, x, masks):
    """Layer-2 spikes [T, K*B, s1] and RNN states [T, K*B, r1] of K copies of the HybridFC `model` on the same
    input x [T, B, ninp] from zero state, copy k with its neuron outputs multiplied by masks[key][k] (0/1);
    rows k*B..(k+1)*B-1 are copy k. What model.run(x repeated K times, zero state, the masks repeated per row)
    computes, to rounding (it runs layer-major, as forward_fast, with a layer's projection summed per block). For the sigmoid-RNN cell, what is the same in
    every copy is computed once: a population whose input is the same in every copy and that no copy masks,
    and each input block's share of a layer-2 projection; a masked SNN population (no connections within it)
    runs once and its masked neurons' share is taken out of the projection (the same count in every copy)."""
    T, B = x.shape[:2]
    K = len(next(iter(masks.values())))
    rows = {key: m.repeat_interleave(B, 0) for key, m in masks.items()}
    if model.cell != "rnn":
        spikes, states, _ = model.run(x.repeat(1, K, 1), model.init_hidden(K * B), rows)
        return spikes, states
    per_copy = lambda a: a if a.shape[1] == K * B else a.repeat(1, K, 1)
    # a population's output is (value, mask): per_copy(value) * the mask's rows when there is a mask
    output = lambda value, key, mask: value if mask is None else per_copy(value) * rows[key]
    blocks = [(x, None, None)]  # the input of layer 1
    for l in (1, 2):
        w_snn, w_in, w_rec = model.weights(l)
        outputs = []
        for key, w, bias in zip((f"snn{l}", f"rnn{l}"), (w_snn, w_in), model.input_biases(l)):
            if w is None:
                continue
            pre = projection(blocks, w, bias, per_copy, output, B)
            mask = None if bool(masks[key].all()) else masks[key]
            if key.startswith("snn"):  # no connections within the population: the mask applies to the output
                outputs.append((lif_multistep(pre, model.decay, model.thresh, model.lens), key, mask))
            elif mask is None:
                outputs.append((rnn_multistep(pre, pre.new_zeros(pre.shape[1], w.shape[-1]), w_rec), key, None))
            else:  # the recurrence sees the masked state, as in forward_definition
                pre, m = per_copy(pre), rows[key]
                states = torch.empty_like(pre)
                h = pre.new_zeros(K * B, w.shape[-1])
                for t in range(T):
                    h = torch.mul(torch.sigmoid(pre[t] + h @ w_rec), m, out=states[t])
                outputs.append((states, key, None))
        blocks = outputs
    last = {key: per_copy(output(value, key, mask)) for value, key, mask in blocks}
    return tuple(last.get(key, x.new_zeros(T, K * B, 0)) for key in ("snn2", "rnn2"))


def projection(blocks, w, bias, per_copy, output, B):
    """The input projection [T, B or K*B, out] of a layer whose input is cat(blocks) (value, key, mask), with
    w's rows split among the blocks in order: the sum of one product per block (whatever the masks, so that
    every copy's sum is rounded alike), where a masked block computed once (B rows) has its removed neurons'
    share subtracted from its one product."""
    T = blocks[0][0].shape[0]
    flat = lambda a, rows: (a.reshape(-1, a.shape[-1]) @ rows).view(T, -1, rows.shape[-1])
    parts, start = [], 0
    for value, key, mask in blocks:
        rows = w[start:start + value.shape[-1]]
        start += value.shape[-1]
        removed = None if mask is None else (mask == 0)
        if removed is not None and value.shape[1] == B and len(set(removed.sum(1).tolist())) == 1:
            idx = removed.nonzero()[:, 1].view(len(mask), -1)  # copy k lacks neurons idx[k]
            share = torch.einsum("tbkr,kro->tkbo", value[:, :, idx], rows[idx]).reshape(T, -1, rows.shape[-1])
            parts.append(per_copy(flat(value, rows)) - share)
        else:
            parts.append(flat(output(value, key, mask), rows))
    if len({p.shape[1] for p in parts}) > 1:
        parts = [per_copy(p) for p in parts]
    total = sum(parts[1:], parts[0])
    return total if bias is None else total + bias


def score_table(model, loss_fn, mean_traces, seed=0, draw=0, heldout_loss=None, heldout_losses=None,
                oracle_neurons=None):
    """Every criterion's score per neuron: column -> population key -> tensor. Columns: trace, importance
    (the Hessian importance), magnitude, taylor, random (draw `draw`), and oracle when heldout_loss is given
    (batched by heldout_losses, on the oracle_neurons only when given: see oracle)."""
    groups = model.probed_groups()
    table = {"trace": mean_traces, "importance": importance(mean_traces, groups), "magnitude": magnitude(groups)}
    model.eval()
    with torch.random.fork_rng(devices=[]):
        table["taylor"] = taylor(loss_fn(), groups)
    table["random"] = random_scores(groups, seed, draw)
    if heldout_loss is not None:
        table["oracle"] = oracle(model, heldout_loss, oracle_neurons, heldout_losses)
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
