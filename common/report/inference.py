"""Paired t statistics, Holm's correction within a family of tests, and the one verdict rule of the studies.

A test is a dict from paired(): n, mean, sd, the 95 % t interval (lo, hi), the two-sided p of the paired t test,
the seeds on each side and the minimum detectable difference at 80 % power. holm() adds, within one family:
p_holm (Holm's step-down adjusted p) and the Holm-adjusted interval (lo_holm, hi_holm): the t interval at level
1 - alpha / (m - j + 1), j the test's rank by raw p, or the rank of the first test Holm does not reject when
that comes earlier; so an adjusted interval excludes zero exactly when Holm rejects the test at alpha.
verdict() reads only the adjusted interval: supported / contradicted when it excludes zero on the claimed /
the opposite side, otherwise not detected, with no difference larger than the far end of the interval.
"""
import json
import math
import os
import re
import statistics

from scipy import stats

ALPHA = 0.05


def paired(diffs):
    """The statistics of a list of per-seed differences (also a one-sample test of any values against zero);
    None when empty."""
    n = len(diffs)
    if n == 0:
        return None
    mean = statistics.fmean(diffs)
    out = dict(n=n, mean=mean, sd=math.nan, half=math.nan, lo=math.nan, hi=math.nan, p=math.nan, mdd=math.nan,
               pos=sum(d > 0 for d in diffs), neg=sum(d < 0 for d in diffs))
    if n > 1:
        sd = statistics.stdev(diffs)
        t = stats.t.ppf(1 - ALPHA / 2, n - 1)
        se = sd / math.sqrt(n)
        p = (0.0 if mean else 1.0) if se == 0 else float(2 * stats.t.sf(abs(mean) / se, n - 1))
        out.update(sd=sd, half=t * se, lo=mean - t * se, hi=mean + t * se, p=p,
                   mdd=(t + stats.t.ppf(0.8, n - 1)) * se)
    return out


def holm(tests, alpha=ALPHA):
    """Holm's correction within one family (a list of paired() dicts, changed in place; None entries and tests
    with fewer than 2 seeds are left out of the family and get NaN). Sets m, rank, p_holm, level, lo_holm,
    hi_holm."""
    family = sorted((t for t in tests if t is not None and not math.isnan(t.get("p", math.nan))), key=lambda t: t["p"])
    m = len(family)
    running, first_kept = 0.0, m + 1
    for j, t in enumerate(family, 1):
        running = max(running, min(1.0, (m - j + 1) * t["p"]))
        t.update(m=m, rank=j, p_holm=running)
        if running >= alpha and first_kept > m:
            first_kept = j
    for t in family:
        level = alpha / (m - min(t["rank"], first_kept) + 1)
        half = stats.t.ppf(1 - level / 2, t["n"] - 1) * t["sd"] / math.sqrt(t["n"])
        t.update(level=1 - level, lo_holm=t["mean"] - half, hi_holm=t["mean"] + half)
    for t in tests:
        if t is not None and "p_holm" not in t:
            t.update(m=m, rank=math.nan, p_holm=math.nan, level=math.nan, lo_holm=math.nan, hi_holm=math.nan)
    return tests


def verdict(t, claimed=1):
    """('supported' | 'contradicted' | 'not detected' | 'untested', X): the rule, on the Holm-adjusted interval.
    claimed: +1 when the claim says the difference is positive, -1 negative. X: the largest difference the
    interval allows (its far end from zero) for 'not detected', else None."""
    if t is None or math.isnan(t.get("lo_holm", math.nan)):
        return "untested", None
    lo, hi = t["lo_holm"], t["hi_holm"]
    if lo > 0 or hi < 0:
        return ("supported" if (lo > 0) == (claimed > 0) else "contradicted"), None
    return "not detected", max(-lo, hi)


def ci(lo, hi, digits=2, signed=True):
    """'[+1.23, +4.56]'."""
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    return f"[{f.format(lo)}, {f.format(hi)}]"


def pval(p):
    """p for a table: three significant digits, 'p < 0.0001' style below."""
    if p is None or math.isnan(p):
        return "–"
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}" if p < 0.01 else f"{p:.3f}"


def cells(t, digits=2):
    """'difference [95 % CI] | p | Holm p | Holm-adjusted CI | better / worse of n | MDD' table cells."""
    if t is None:
        return "no finished pair | | | | |"
    if "p" not in t:
        return f"untested: {t.get('n', 0)} paired seed(s) | | | | |"
    f = f"{{:+.{digits}f}}"
    raw = "" if math.isnan(t["lo"]) else " " + ci(t["lo"], t["hi"], digits)
    adj = "–" if math.isnan(t.get("lo_holm", math.nan)) else ci(t["lo_holm"], t["hi_holm"], digits)
    mdd = "n/a" if math.isnan(t["mdd"]) else f"{t['mdd']:.{digits}f}"
    return (f"{f.format(t['mean'])}{raw} | {pval(t['p'])} | {pval(t.get('p_holm'))} | {adj} | "
            f"{t['pos']}+ / {t['neg']}- of {t['n']} | {mdd}")


CELL_HEADER = "difference [95 % CI] | p | Holm p | Holm-adjusted CI | better / worse | MDD"


def phrase(t, claimed=1, digits=2, unit=""):
    """The words of the rule for one test: 'supported: +4.95, Holm-adjusted [+3.10, +6.80]' /
    'not detected: no difference larger than 1.87 (+0.87, Holm-adjusted [−0.13, +1.87])'."""
    word, x = verdict(t, claimed)
    if word == "untested":
        return "untested (fewer than 2 paired seeds)"
    f = f"{{:+.{digits}f}}"
    where = f"{f.format(t['mean'])}{unit}, Holm-adjusted {ci(t['lo_holm'], t['hi_holm'], digits)}"
    if word == "not detected":
        return f"not detected: no difference larger than {x:.{digits}f}{unit} ({where})"
    return f"{word}: {where}"


def findings(items, what, claimed=1, digits=2, unit=""):
    """One generated sentence per verdict for a list of (label, test): which labels the rule calls supported,
    contradicted, not detected (with the largest difference the adjusted intervals allow) or untested."""
    groups = {}
    for label, t in items:
        groups.setdefault(verdict(t, claimed)[0], []).append((label, t))
    f = f"{{:+.{digits}f}}"
    show = lambda label, t: f"{label}: {f.format(t['mean'])} {ci(t['lo_holm'], t['hi_holm'], digits)}{unit}"
    out = []
    for word in ("supported", "contradicted", "not detected", "untested"):
        group = groups.get(word, [])
        if not group:
            continue
        where = f"at {len(group)} of {len(items)}" if len(items) > 1 else ""
        if word == "untested":
            out.append(f"- {what}: untested {where} (fewer than 2 paired seeds: {', '.join(l for l, _ in group)}).")
            continue
        listed = "; ".join(show(label, t) for label, t in group)
        side = ("the claimed side" if word == "supported" else "the opposite side")
        if word == "not detected":
            x = max(verdict(t, claimed)[1] for _, t in group)
            out.append(f"- {what}: **not detected** {where}, no difference larger than {x:.{digits}f}{unit} "
                       f"(Holm-adjusted intervals: {listed}).")
        else:
            out.append(f"- {what}: **{word}** {where} (Holm-adjusted interval on {side} of zero: {listed}).")
    return "\n".join(line.replace("  ", " ").replace(" ,", ",") for line in out)


def protocol(log):
    """The set that chose a run's checkpoint: the completion record's protocol where it names one, else what the
    log's per-epoch lines evaluate ('valid ...': val, 'test ...': test); '' when neither says."""
    record = log[:-4] + ".json"
    if os.path.exists(record):
        try:
            with open(record) as f:
                found = json.load(f).get("protocol")
            if found:
                return found
        except (OSError, ValueError):
            pass
    with open(log) as f:
        for line in f:
            m = re.search(r"\| end of epoch +\d+ .*\| (valid|test) (?:acc|ppl|loss)", line)
            if m:
                return "val" if m.group(1) == "valid" else "test"
    return ""
