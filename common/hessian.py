"""Per-neuron Hessian traces by Hutchinson's estimator (the Selection stage's score).

For a neuron (or conv filter) c with weight block w_c, the trace of the Hessian's diagonal block
H_cc is estimated as the mean over Rademacher probes v of  v_c . (H v)_c, where H is the Hessian
of the loss with respect to ALL probed weights jointly and v covers all of them. This is what the
authors' code computes.

hutchinson_traces_reference is the definition: one Hessian-vector product per probe, then the
authors' per-neuron bookkeeping (host copies, one dot and one .item() per neuron and probe).
hutchinson_traces computes the same values by tensor reductions, with probes optionally batched.
"""
import copy
import hashlib
import os
import time

import numpy as np
import torch

from common.datadigest import file_sha256
from common.errors import KitError
from common.fileio import write_atomic
from common.progress import progress
from common.runs import fault_point


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


def per_neuron(products, groups, batched=False):
    """Sum elementwise products over each neuron's block: population key -> [n_neurons]
    ([K, n_neurons] when batched: every tensor has a leading probe dim)."""
    out, k, b = {}, 0, int(batched)
    for key, (tensors, cat_dim, neuron_dim) in groups.items():
        total = 0
        for t in tensors:
            p = products[k]
            p = p.movedim(neuron_dim + b, b)
            total = total + p.reshape(*p.shape[:b + 1], -1).sum(-1)
            k += 1
        out[key] = total
    return out


def default_probe_batch(device):
    """Probes per batched Hessian-vector product: 1 (sequential) on CPU, where batching measured
    no faster; 10 on CUDA, where a sequential product is bound by kernel launches (PTB-650 on an
    H200: 13 ms per probe against 61 ms one at a time, 10 ms with 20 but twice the memory)."""
    return 10 if torch.device(device).type == "cuda" else 1


def hutchinson_traces(loss, groups, n_probes=300, probe_batch=None):
    """Per-probe, per-neuron values v_c . (H v)_c: population key -> tensor [n_probes, n_neurons].

    `loss` must have been computed with a graph through the probed weights (no torch.no_grad);
    `groups` comes from the model's probed_groups(). probe_batch: probes per Hessian-vector product
    (None: default_probe_batch). The probes are drawn from the RNG in the same order whatever the
    batch, so the values equal the sequential ones up to float rounding. On a CUDA out-of-memory
    error a batch is split in halves and retried.
    """
    began = time.perf_counter()
    params = [t for tensors, _, _ in groups.values() for t in tensors]
    grads = torch.autograd.grad(loss, params, create_graph=True)
    k = probe_batch or default_probe_batch(params[0].device)
    values = {key: [] for key in groups}
    clock = []
    for start in progress(range(0, n_probes, k), "Hessian probes", total=n_probes, unit="probe",
                          size=lambda start: min(k, n_probes - start)):
        probes = [draw_probes(groups) for _ in range(min(k, n_probes - start))]
        for key, val in _probe_values(grads, params, probes, groups).items():
            values[key].append(val)
        if len(clock) < MEASURED:
            clock.append(_now(params[0].device))
            if len(clock) == MEASURED and start + k < n_probes:
                project(began, clock, start + k, n_probes, k)
    return {key: torch.cat(vals) for key, vals in values.items()}


# -- how long the estimate takes --------------------------------------------------------------------
MEASURED = 3            # batches of probes timed before the whole estimate is projected
LONG_S = 3600           # an estimate projected to take longer stops unless --yes was given
MAX_PROBES = 100_000    # more probes are refused outright (check_probes)
_long_work = {"allowed": False}


def allow_long_work(yes):
    """--yes: go on with a Hessian estimate projected to take over an hour (common.cli.start_run sets it)."""
    _long_work["allowed"] = bool(yes)


def check_probes(n_probes):
    """Refuse an absurd --hessian_probes before any data are read. Every probe's per-neuron values are kept
    (probes x neurons x 4 bytes: 100,000 probes of the 2,600 neurons of the redundant PTB-650 network are
    1 GB, in memory and in the trace cache), and the estimate's error falls only as 1/sqrt(probes): the
    authors used 300."""
    if n_probes > MAX_PROBES:
        raise KitError(f"--hessian_probes {n_probes} is more than {MAX_PROBES:,}: every probe's values are kept "
                       f"(probes x neurons x 4 bytes) and the trace estimate's error falls only as 1/sqrt(probes); "
                       "the method uses 300")


def _now(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def project(began, clock, done, n_probes, k):
    """Print the projected time of the whole estimate from the first batches (the first one, which warms up,
    counts only as itself); stop with a KitError above LONG_S unless long work is allowed."""
    per_batch = (clock[-1] - clock[0]) / (len(clock) - 1)
    projected = clock[-1] - began + per_batch * -(-(n_probes - done) // k)
    print(f"Hessian trace estimate: {done} of {n_probes} probes took {clock[-1] - began:.2f} s; "
          f"all {n_probes} are projected to take {duration(projected)}")
    if projected > LONG_S and not _long_work["allowed"]:
        raise KitError(f"--hessian_probes {n_probes}: the Hessian trace estimate is projected to take "
                       f"{duration(projected)} ({done} probes took {clock[-1] - began:.2f} s); pass --yes to go on "
                       "with work projected to take over an hour, or use fewer probes")


def duration(seconds):
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def _probe_values(grads, params, probes, groups):
    """[len(probes), n_neurons] per population for a list of probes (each a list of tensors)."""
    try:
        if len(probes) == 1:
            hv = torch.autograd.grad(grads, params, grad_outputs=probes[0], retain_graph=True)
            return {key: val[None] for key, val in per_neuron([a * b for a, b in zip(hv, probes[0])], groups).items()}
        v = [torch.stack(vs) for vs in zip(*probes)]
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=True, is_grads_batched=True)
        return per_neuron([a * b for a, b in zip(hv, v)], groups, batched=True)
    except torch.OutOfMemoryError:
        if len(probes) == 1:
            raise
    half = len(probes) // 2  # retried outside the except block, so that its memory is released
    parts = [_probe_values(grads, params, p, groups) for p in (probes[:half], probes[half:])]
    return {key: torch.cat([part[key] for part in parts]) for key in groups}


def hutchinson_traces_reference(loss, groups, n_probes=300):
    """The definition, bookkeeping included: what the authors' get_trace_hut(channelwise=True) did.

    One Hessian-vector product per probe; then Hv and v go to the host and, for every probed
    ('union') tensor and every neuron c, both whole tensors are copied, permuted to put the neuron
    dim first, and v_c . (Hv)_c is taken with one .item() into nested lists [tensor][neuron][probe].
    Returns the format of hutchinson_traces.
    """
    params = [t for tensors, _, _ in groups.values() for t in tensors]
    grads = torch.autograd.grad(loss, params, create_graph=True)
    trace = [[[] for _ in range(tensors[0].shape[nd])] for tensors, _, nd in groups.values()]
    for i in range(n_probes):
        v = draw_probes(groups)
        hv = torch.autograd.grad(grads, params, grad_outputs=v, retain_graph=i < n_probes - 1)
        for per_tensor, dots in zip(trace, channel_dots_reference(hv, v, groups)):
            for per_channel, dot in zip(per_tensor, dots):
                per_channel.append(dot)
    dtype, device = params[0].dtype, params[0].device
    return {key: torch.tensor(trace[g], dtype=dtype).T.contiguous().to(device) for g, key in enumerate(groups)}


def channel_dots_reference(hv, v, groups):
    """The authors' bookkeeping of one probe: [per union tensor][per neuron] v_c . (Hv)_c as floats."""
    out = []
    for hv_u, v_u, neuron_dim in _unions(hv, v, groups):
        hv_u, v_u = hv_u.detach().cpu(), v_u.detach().cpu()
        dots = []
        for c in range(hv_u.shape[neuron_dim]):
            hv_c = copy.deepcopy(hv_u).movedim(neuron_dim, 0)  # the whole tensor, copied for every neuron
            v_c = copy.deepcopy(v_u).movedim(neuron_dim, 0)
            dots.append(hv_c[c].flatten().dot(v_c[c].flatten()).item())
        out.append(dots)
    return out


def _unions(hv, v, groups):
    """(Hv, v, neuron dim) of each group's 'union' tensor, the authors' stacked weight."""
    k = 0
    for tensors, cat_dim, neuron_dim in groups.values():
        n = len(tensors)
        yield torch.cat(hv[k:k + n], cat_dim), torch.cat(v[k:k + n], cat_dim), neuron_dim
        k += n


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
    """SHA-1 of a file: the trace cache's key of the Adaptation checkpoint."""
    return file_sha256(path, "sha1")


RNG_AFTER, CUDA_RNG_AFTER = "_rng_after", "_cuda_rng_after_"  # not trace groups: the random state after the probes


def cached_traces(path, compute):
    """Load per-probe traces from `path` (.npz) or compute and write them atomically."""
    if os.path.exists(path):
        try:
            with np.load(path, allow_pickle=False) as f:
                stored = {key: torch.from_numpy(f[key]) for key in f.files}
        except Exception as e:  # truncated or flipped (the zip's CRC), or pickled objects we refuse to run
                raise KitError(f"cannot read the trace cache {path} ({type(e).__name__}); delete it to compute the traces again")
        # the random state the probes left behind: what follows Selection draws the same numbers as after computing
        if RNG_AFTER in stored:
            torch.set_rng_state(stored.pop(RNG_AFTER))
        cuda = sorted((k for k in stored if k.startswith(CUDA_RNG_AFTER)), key=lambda k: int(k[len(CUDA_RNG_AFTER):]))
        states = [stored.pop(k) for k in cuda]
        if states and torch.cuda.is_available() and len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
        fault_point("traces-cached")
        return stored, True
    fault_point("selection")
    values = compute()
    rng = {RNG_AFTER: torch.get_rng_state().numpy()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng.update({f"{CUDA_RNG_AFTER}{i}": s.numpy() for i, s in enumerate(torch.cuda.get_rng_state_all())})
    write_atomic(path, lambda f: np.savez(f, **{key: v.cpu().numpy() for key, v in values.items()}, **rng))
    fault_point("traces-cached")
    return values, False
