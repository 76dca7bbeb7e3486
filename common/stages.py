"""Pieces of the three HSTNN stages shared by the experiments (fully connected and conv)."""
import os

import torch

from common import execution
from common.criteria import CRITERIA, ranking, score_table
from common.hessian import cache_key, cached_traces, file_digest, hutchinson_traces
from common.selection import (SelectionError, log_conv_selection, log_selection, neuron_count, select_conv, select_fc,
                              write_importance_csv)
from common.errors import KitError


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
    if not rnn or not snn:  # a hybrid needs both kinds: one without SNN (or RNN) neurons is another baseline
        raise KitError(f"--model ffs --nhid {nhid} --ratio {ratio}{' --truncate_counts' if truncate else ''} gives "
                       f"{snn} SNN and {rnn} RNN neurons per layer; a hybrid trained from scratch needs at least one "
                       "of each: use a larger --nhid")
    return [rnn, rnn], [snn, snn]


def fc_model_shapes(run, args):
    """train1 of a fully connected script: (rnn_shape, snn_shape) of the network to train (from --model and
    --nhid, or from the resumable state of an interrupted run), logged as the original did."""
    if run.resume is None:
        rnn_shape, snn_shape = fc_shapes(args.model, args.nhid, args.ratio, args.truncate_counts)
    else:
        rnn_shape, snn_shape = run.resume["rnn_shape"], run.resume["snn_shape"]
    run.logger.info("model with rnn_shape: [{:3d}, {:3d}]".format(*rnn_shape))
    run.logger.info("model with snn_shape: [{:3d}, {:3d}]".format(*snn_shape))
    return rnn_shape, snn_shape


def hessian_selection(model, loss_fn, inputs, ratio, n_probes, adaptation_checkpoint, trace_prefix,
                      importance_csv, logger, truncate=False, select=select_fc, log=log_selection,
                      selection="hessian", seed=0, draw=0, heldout_loss=None, heldout="the trace batch",
                      heldout_losses=None):
    """Selection: per-neuron Hessian traces (cached), importance, and the kept neurons.

    selection: the criterion whose scores are ranked (common.criteria.CRITERIA; "hessian" is the method,
    the others are ablations with the same counts and rule). The traces are computed for every criterion
    (so the global random stream is the same whichever is chosen). random uses draw `draw` of a
    generator seeded by `seed` (draw 0: what --selection random always drew). oracle needs
    heldout_loss(model) -> the loss of any model on held-out data (described by `heldout` in the log);
    heldout_losses, when given, scores several neurons per pass (common.criteria.oracle).
    The importance CSV lists every criterion's score (oracle only when it was the criterion).

    select(importance lists, ratio, truncate) -> kept indices and log(logger, keep) are the rule and its
    log lines: the fc rule by default; the conv nets pass common.selection.select_conv / log_conv_selection.

    loss_fn() computes the loss on the trace batch with the model in eval mode. The trace cache
    is keyed by everything that determines it: the adaptation checkpoint's bytes, the trace batch
    (`inputs`), the number of probes and the RNG state that draws them.
    """
    if selection == "oracle" and heldout_loss is None:
        raise KitError("--selection oracle needs a held-out loss, which this experiment does not provide")
    key = cache_key(file_digest(adaptation_checkpoint), *inputs, n_probes, torch.get_rng_state(),
                    *(["definition"] if execution.is_definition() else []))  # the definition's traces are its own
    path = f"{trace_prefix}_{key}.npz"

    def compute():
        model.eval()
        probe_batch = 1 if execution.is_definition() else None  # the definition: one probe per product
        return hutchinson_traces(loss_fn(), model.probed_groups(), n_probes, probe_batch)

    values, cached = cached_traces(path, compute)
    if cached:
        if set(values) != set(model.probed_groups()):
            raise KitError(f"the trace cache {path} does not hold this network's groups; delete it to compute the traces again")
        logger.info(f"using cached Hessian traces {path}")
    mean = {k: v.float().mean(0) for k, v in values.items()}
    table = score_table(model, loss_fn, mean, seed, draw, heldout_loss if selection == "oracle" else None,
                        None if execution.is_definition() else heldout_losses)  # the definition: one at a time
    scores = ranking(selection, table)
    bad = {k: int((~torch.isfinite(v)).sum()) for k, v in scores.items() if not torch.isfinite(v).all()}
    if bad:
        raise KitError(f"Selection refuses non-finite {selection} scores ({', '.join(f'{n} in {k}' for k, n in bad.items())}) "
                       f"computed from {adaptation_checkpoint}: the Adaptation diverged or its weights overflow")
    how = {"random": f"draw {draw} of a generator seeded with {seed}", "oracle": f"on {heldout}"}.get(selection)
    logger.info(f"selection: {selection} ({CRITERIA[selection]}" + (f"; {how})" if how else ")"))
    try:
        keep = select({k: s.tolist() for k, s in scores.items()}, ratio, truncate)
    except SelectionError as e:
        raise KitError(str(e))
    log(logger, keep)
    write_importance_csv(importance_csv, mean, table["importance"], keep,
                         {k: v for k, v in table.items() if k not in ("trace", "importance")})
    return keep


def select_filters(model, trace_loss, trace_batch, args, adapted_path, dataset, name, logger):
    """Selection for a conv hybrid: filter-wise Hessian traces of the input-conv weights (cached), importance,
    and the kept filters per layer and type (common.selection.select_conv)."""
    return hessian_selection(model, trace_loss, trace_batch, args.ratio, args.hessian_probes, adapted_path,
                             f"traces/trace_{dataset}_hybrid_{args.seed}", f"traces/{name}_importance.csv", logger,
                             args.truncate_counts, select=select_conv, log=log_conv_selection,
                             selection=args.selection, seed=args.seed, draw=args.selection_draw)


def ensure_dirs():
    for d in ("log", "checkpoint", "traces"):
        os.makedirs(d, exist_ok=True)
