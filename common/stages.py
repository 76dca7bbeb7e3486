"""Pieces of the three HSTNN stages shared by the fully connected experiments."""
import os

import torch

from common.hessian import cache_key, cached_traces, file_digest, hutchinson_traces, importance
from common.selection import SelectionError, log_selection, neuron_count, select_fc, write_importance_csv
from common.training import KitError


def fc_shapes(model, nhid, ratio, truncate=False):
    """(rnn_shape, snn_shape) of a model built from scratch. ffs splits nhid by the SNN ratio."""
    if model in ("rnn", "lstm"):
        return [nhid, nhid], [0, 0]
    if model == "snn":
        return [0, 0], [nhid, nhid]
    if model == "hybrid":  # Adaptation: a full population of both kinds in every layer
        return [nhid, nhid], [nhid, nhid]
    try:
        snn = neuron_count(nhid, ratio, f"ffs SNN neurons per layer (--nhid {nhid}, --ratio {ratio})", truncate)
        rnn = neuron_count(nhid, 1.0 - ratio, f"ffs RNN neurons per layer (--nhid {nhid}, --ratio {ratio})", truncate)
    except SelectionError as e:
        raise KitError(str(e))
    return [rnn, rnn], [snn, snn]


def hessian_selection(model, loss_fn, inputs, ratio, n_probes, adaptation_checkpoint, trace_prefix,
                      importance_csv, logger, truncate=False, select=select_fc, log=log_selection,
                      selection="hessian", seed=0):
    """Selection: per-neuron Hessian traces (cached), importance, and the kept neurons.

    selection="random" (an ablation) ranks by uniform random scores from a generator seeded by `seed`
    instead of the importance, with the same counts and rule; the traces are still computed (so the
    global random stream is the same as with the Hessian) and the importance CSV lists the random
    scores in its importance column.

    select(importance lists, ratio, truncate) -> kept indices and log(logger, keep) are the rule and its
    log lines: the fc rule by default; the conv nets pass common.selection.select_conv / log_conv_selection.

    loss_fn() computes the loss on the trace batch with the model in eval mode. The trace cache
    is keyed by everything that determines it: the adaptation checkpoint's bytes, the trace batch
    (`inputs`), the number of probes and the RNG state that draws them.
    """
    key = cache_key(file_digest(adaptation_checkpoint), *inputs, n_probes, torch.get_rng_state())
    path = f"{trace_prefix}_{key}.npz"

    def compute():
        model.eval()
        return hutchinson_traces(loss_fn(), model.probed_groups(), n_probes)

    values, cached = cached_traces(path, compute)
    if cached:
        logger.info(f"using cached Hessian traces {path}")
    mean = {k: v.float().mean(0) for k, v in values.items()}
    scores = importance(mean, model.probed_groups())
    if selection == "random":
        generator = torch.Generator().manual_seed(seed)
        scores = {k: torch.rand(len(s), generator=generator, dtype=torch.float64) for k, s in scores.items()}
        logger.info(f"selection: random (uniform scores from a generator seeded with {seed}; the Hessian "
                    "importance is computed but not used)")
    elif selection == "hessian":
        logger.info("selection: hessian (Hessian-trace importance)")
    else:
        raise KitError(f"unknown selection {selection!r} (hessian or random)")
    try:
        keep = select({k: s.tolist() for k, s in scores.items()}, ratio, truncate)
    except SelectionError as e:
        raise KitError(str(e))
    log(logger, keep)
    write_importance_csv(importance_csv, mean, scores, keep)
    return keep


def ensure_dirs():
    for d in ("log", "checkpoint", "traces"):
        os.makedirs(d, exist_ok=True)
