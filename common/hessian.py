"""Per-neuron Hessian traces by Hutchinson's estimator (the Selection stage's score).

For a neuron (or conv filter) c with weight block w_c, the trace of the Hessian's diagonal block
H_cc is estimated as the mean over Rademacher probes v of  v_c . (H v)_c, where H is the Hessian
of the loss with respect to ALL probed weights jointly and v covers all of them. This is what the
authors' code computes; the per-probe loop below is the definition.
"""
import hashlib
import os

import numpy as np
import torch


def draw_probes(groups):
    """One Rademacher (+1/-1) probe per tensor, drawn in the authors' order and shapes.

    The authors drew one tensor per 'union' weight (input and recurrent weights stacked), so we
    draw the union shape and split it: the same random numbers land on the same weights.
    """
    probes = []
    for tensors, cat_dim, _ in groups.values():
        shape = list(tensors[0].shape)
        shape[cat_dim] = sum(t.shape[cat_dim] for t in tensors)
        v = torch.randint(0, 2, shape, dtype=tensors[0].dtype, device=tensors[0].device) * 2 - 1
        probes.extend(v.split([t.shape[cat_dim] for t in tensors], dim=cat_dim))
    return probes


def per_neuron(products, groups):
    """Sum elementwise products over each neuron's block: population key -> [n_neurons]."""
    out, k = {}, 0
    for key, (tensors, cat_dim, neuron_dim) in groups.items():
        total = 0
        for t in tensors:
            p = products[k]
            total = total + p.movedim(neuron_dim, 0).reshape(p.shape[neuron_dim], -1).sum(1)
            k += 1
        out[key] = total
    return out


def hutchinson_traces(loss, groups, n_probes=300):
    """Per-probe, per-neuron values v_c . (H v)_c: population key -> tensor [n_probes, n_neurons].

    `loss` must have been computed with a graph through the probed weights (no torch.no_grad);
    `groups` comes from the model's probed_groups().
    """
    params = [t for tensors, _, _ in groups.values() for t in tensors]
    grads = torch.autograd.grad(loss, params, create_graph=True)
    values = {key: [] for key in groups}
    for i in range(n_probes):
        v = draw_probes(groups)
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=i < n_probes - 1)
        for key, val in per_neuron([a * b for a, b in zip(hv, v)], groups).items():
            values[key].append(val.detach())
    return {key: torch.stack(vals) for key, vals in values.items()}


def importance(mean_traces, groups):
    """trace_c * ||w_c||^2 / numel(w_c), with w_c the neuron's whole (union) weight block."""
    sq_norms = per_neuron([t.detach() ** 2 for tensors, _, _ in groups.values() for t in tensors], groups)
    out = {}
    for key, (tensors, cat_dim, neuron_dim) in groups.items():
        numel = sum(t.numel() for t in tensors) // tensors[0].shape[neuron_dim]
        out[key] = mean_traces[key].float() * sq_norms[key].float() / numel
    return out


def cache_key(*parts):
    """A short hash of everything that determines the traces (bytes, tensors, numbers, strings)."""
    h = hashlib.sha1()
    for part in parts:
        if isinstance(part, torch.Tensor):
            part = part.detach().cpu().contiguous().numpy().tobytes()
        elif not isinstance(part, bytes):
            part = repr(part).encode()
        h.update(part)
    return h.hexdigest()[:16]


def file_digest(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cached_traces(path, compute):
    """Load per-probe traces from `path` (.npz) or compute and write them atomically."""
    if os.path.exists(path):
        with np.load(path) as f:
            return {key: torch.from_numpy(f[key]) for key in f.files}, True
    values = compute()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}.npz"
    np.savez(tmp, **{key: v.cpu().numpy() for key, v in values.items()})
    os.replace(tmp, path)
    return values, False
