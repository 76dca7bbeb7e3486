"""Which neurons the Selection stage keeps (the counts a ratio implies are in common/counts.py)."""
import csv

from common.counts import SelectionError, neuron_count  # noqa: F401 (part of this module's interface)
from common.fileio import write_atomic


def rank(scores):
    """Indices by descending score; ties in reverse index order, as the authors' sort-then-reverse."""
    return sorted(range(len(scores)), key=lambda i: (scores[i], i), reverse=True)


def select_fc(importance, ratio, truncate=False):
    """Keep the most important neurons of each type, ranked globally across both layers.

    importance: population key (snn1, snn2, rnn1, rnn2) -> list of scores (missing = empty).
    Keeps total*(1-ratio) RNN and total*ratio SNN neurons. If all picks of a type fall in one
    layer, the least important pick is swapped for the best neuron of that type in the other
    layer (the authors' rule; with 0 or 1 picks there is nothing to swap).
    Returns population key -> sorted kept indices.
    """
    keep = {}
    for kind, fraction in (("rnn", 1.0 - ratio), ("snn", ratio)):
        s1, s2 = (list(importance.get(f"{kind}{l}", [])) for l in (1, 2))
        n1 = len(s1)
        n_keep = neuron_count(n1 + len(s2), fraction, f"{kind.upper()} neurons kept", truncate)
        if n_keep == 0 and n1 + len(s2) > 0:  # the restored network would lose a kind: it would not be a hybrid
            raise SelectionError(f"ratio {ratio} keeps no {kind.upper()} neuron of the {n1 + len(s2)} "
                                 f"({'int' if truncate else 'round'}({n1 + len(s2)} x {fraction:g}) = 0"
                                 f"{' with --truncate_counts' if truncate else ''}); use a ratio that keeps at least "
                                 f"one of each kind, or a wider network")
        order = rank(s1 + s2)
        picks = order[:n_keep]
        if n_keep >= 2 and n1 > 0 and len(s2) > 0:
            layers = {i >= n1 for i in picks}
            if len(layers) == 1:
                other = next(i for i in order[n_keep:] if (i >= n1) not in layers)
                picks[-1] = other
        keep[f"{kind}1"] = sorted(i for i in picks if i < n1)
        keep[f"{kind}2"] = sorted(i - n1 for i in picks if i >= n1)
    for l in (1, 2):
        if not keep[f"rnn{l}"] and not keep[f"snn{l}"]:
            raise SelectionError(f"ratio {ratio} keeps no neuron at all in layer {l}; use a ratio that keeps more neurons")
    return keep


def log_selection(logger, keep):
    """The authors' log lines: sorted index lists, then the per-layer counts."""
    for key in ("rnn1", "rnn2", "snn1", "snn2"):
        logger.info(f"{key}: {keep[key]}")
    for kind in ("rnn", "snn"):
        for l in (1, 2):
            logger.info(f"{kind}_layer[{l - 1}]: {len(keep[f'{kind}{l}'])}")


def write_importance_csv(path, traces, scores, keep, columns=None):
    """Per-neuron table: param,neuron,trace,importance,kept, then one column per entry of `columns`
    (name -> population key -> per-neuron scores: the other selection criteria's scores)."""
    columns = columns or {}

    def write(f):
        out = csv.writer(f)
        out.writerow(["param", "neuron", "trace", "importance", "kept"] + list(columns))
        for key in traces:
            kept = set(keep.get(key, []))
            extra = [columns[c][key].tolist() for c in columns]
            for i, (t, s) in enumerate(zip(traces[key].tolist(), scores[key].tolist())):
                out.writerow([key, i, repr(t), repr(s), int(i in kept)] + [repr(e[i]) for e in extra])
    write_atomic(path, write, "w", newline="")


def select_conv(importance, ratio, truncate=False):
    """Keep conv filters per type (rcnn, scnn): each layer's best filter, then the global best.

    importance: ordered name -> list of scores, one entry per layer and type that has filters, the
    name containing 'rcnn' or 'scnn' (e.g. 'hcnn_layers.0.rcnn_fc'). Of the N filters of a type in
    all layers, N*(1-ratio) RCNN and N*ratio SCNN filters are kept: first the most important filter
    of every layer (so no layer loses a type), then the most important of all remaining filters,
    ranked together. Sorting is stable (ties: earlier layer, then lower index), as the authors'.
    The authors' pool slice [0:needed - n_layers] went negative when a ratio kept fewer filters than
    there are layers and then kept nearly everything; that case is refused here.
    Returns name -> sorted kept indices.
    """
    keep = {}
    for kind, fraction in (("rcnn", 1.0 - ratio), ("scnn", ratio)):
        names = [n for n in importance if kind in n]
        total = sum(len(importance[n]) for n in names)
        if total == 0:
            continue
        try:
            needed = neuron_count(total, fraction, f"{kind.upper()} filters kept", truncate)
        except SelectionError:
            raise SelectionError(f"ratio {ratio} keeps {total} x {fraction:g} = {total * fraction:g} of the {total} "
                                 f"{kind.upper()} filters, not a whole number: the ratio must be a multiple of "
                                 f"1/{total} (or pass --truncate_counts for the original int() truncation)") from None
        if needed < len(names):
            raise SelectionError(f"ratio {ratio} keeps {needed} {kind.upper()} filter(s), fewer than the {len(names)} "
                                 f"layers; every layer keeps its best filter of each type, so at least {len(names)} "
                                 f"are needed: use a ratio that keeps more {kind.upper()} filters")
        picks, pool = [], []
        for layer, name in enumerate(names):
            order = sorted(((s, i, layer) for i, s in enumerate(importance[name])), key=lambda e: e[0], reverse=True)
            picks.append(order[0])
            pool += order[1:]
        picks += sorted(pool, key=lambda e: e[0], reverse=True)[:needed - len(names)]
        for layer, name in enumerate(names):
            keep[name] = sorted(i for _, i, l in picks if l == layer)
    return {name: keep[name] for name in importance if name in keep}  # the authors' (module) order


def log_conv_selection(logger, keep):
    """The authors' print_eff_index lines (sorted indices per layer and type), then the counts."""
    for name, idx in keep.items():
        logger.info(f"{name}: [{', '.join(map(str, idx))}]")
    for name, idx in keep.items():
        logger.info(f"{name}: {len(idx)}")
