"""The verdict table and the summary of both studies, generated from their tests (one rule, no hand-written result).

    python studies/verdicts.py [--writeup results/REPLICATION.md]

Reads results/studies/criteria/paired-differences.csv and results/studies/replication/tests.csv (written by
analysis.py and compare.py: every test with its family, raw and Holm-adjusted p and interval, and the set that
chose its checkpoints), and results/studies/budget.csv and tradeoff.csv where they exist. Every row of the
verdict table is a claim and one body of evidence; its verdict is common.report.inference.verdict on the
Holm-adjusted intervals; evidence whose checkpoints were chosen on the test set is marked "test-set selection,
not evidence". Writes results/studies/verdicts.md and the write-up's blocks "verdicts" and "summary".
"""
import argparse
import csv
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
from common.report import writeup  # noqa: E402
from common.report.inference import verdict  # noqa: E402
from studies.families import FAMILIES, family  # noqa: E402

RESULTS = os.path.join(ROOT, "results", "studies")
NOT_EVIDENCE = "test-set selection, not evidence"

# (the claim, [(the evidence in words, source, family, {column: value} the tests must match, label columns)])
CLAIMS = [
    ("HSTNN beats the directly trained hybrid (ffs) at every SNN ratio, at the paper's budgets (ffs trains as many "
     "epochs as Adaptation alone)",
     [("S-MNIST, criteria study, width 60", "criteria", "criteria-q3", {"a": "HSTNN", "b": "ffs (original budget)"}, ("ratio",)),
      ("PTB, replication study, width 30", "replication", "replication-rnn-ptb-real-ffs", {}, ("ratio",)),
      ("S-MNIST RNN, replication study, width 60", "replication", "replication-rnn-smnist-ffs", {}, ("ratio",)),
      ("S-MNIST LSTM, replication study, width 60", "replication", "replication-lstm-smnist-ffs", {}, ("ratio",))]),
    ("… and the gain is the method's: HSTNN beats ffs given as many epochs (Adaptation + Restoration)",
     [("S-MNIST, criteria study, width 60", "criteria", "criteria-q3", {"a": "HSTNN", "b": "ffs (matched epochs)"}, ("ratio",)),
      ("S-MNIST, criteria study, HSTNN with random selection", "criteria", "criteria-q3",
       {"a": "HSTNN with random selection", "b": "ffs (matched epochs)"}, ("ratio",)),
      ("PTB, replication study (ffs at 2 epochs)", "replication", "replication-rnn-ptb-real-ffs-matched", {}, ("ratio",)),
      ("PTB, replication study (ffs at 2 epochs on HSTNN's learning-rate schedule)", "replication",
       "replication-rnn-ptb-real-ffs-matched-lr", {}, ("ratio",))]),
    ("the Hessian-trace importance agrees with the oracle's ranking of the neurons (each neuron's loss increase when "
     "it alone is removed): Spearman correlation above zero",
     [("S-MNIST, criteria study, mean of the four populations", "criteria", "criteria-q1-agreement", {}, ("width",)),
      ("S-MNIST, criteria study, per population", "criteria", "criteria-q1-agreement-by-population", {}, ("width", "a"))]),
    ("right after Selection, the Hessian pick keeps a better network than a random pick",
     [("S-MNIST, criteria study (10 random draws per seed)", "criteria", "criteria-q1-random", {}, ("width", "ratio")),
      ("PTB, replication study (1 draw per seed)", "replication", "replication-rnn-ptb-real-random-selection", {}, ("ratio",)),
      ("S-MNIST RNN, replication study (1 draw per seed)", "replication", "replication-rnn-smnist-random-selection", {},
       ("ratio",))]),
    ("(ours) right after Selection, the oracle's own pick keeps a better network than a random pick",
     [("S-MNIST, criteria study", "criteria", "criteria-q1-oracle-pick", {}, ("width", "ratio"))]),
    ("after Restoration, Selection by the Hessian importance gives a better network than another choice of neurons",
     [("S-MNIST, criteria study, width 60: against random (3 draws per seed)", "criteria", "criteria-q2", {"b": "random"}, ("ratio",)),
      ("S-MNIST, criteria study, width 60: against the trace alone", "criteria", "criteria-q2", {"b": "trace"}, ("ratio",)),
      ("S-MNIST, criteria study, width 60: against Taylor", "criteria", "criteria-q2", {"b": "taylor"}, ("ratio",)),
      ("S-MNIST, criteria study, width 60: against the magnitude alone", "criteria", "criteria-q2", {"b": "magnitude"}, ("ratio",)),
      ("S-MNIST, criteria study, width 60: against the reversed pick", "criteria", "criteria-q2", {"b": "reversed"}, ("ratio",)),
      ("S-MNIST, criteria study, width 800 (the paper's): against random (draw 0)", "criteria", "criteria-q2-w800",
       {"b": "random-0"}, ("ratio",)),
      ("S-MNIST, criteria study, width 800 (the paper's): against the reversed pick", "criteria", "criteria-q2-w800",
       {"b": "reversed"}, ("ratio",)),
      ("PTB, replication study: against random (1 draw per seed)", "replication",
       "replication-rnn-ptb-real-random-restoration", {}, ("ratio",)),
      ("S-MNIST RNN, replication study: against random (1 draw per seed)", "replication",
       "replication-rnn-smnist-random-restoration", {}, ("ratio",))]),
    ("at some SNN ratio HSTNN beats both pure networks",
     [("PTB, replication study", "replication", "replication-rnn-ptb-real-pure", {}, ("ratio",)),
      ("S-MNIST RNN, replication study", "replication", "replication-rnn-smnist-pure", {}, ("ratio",)),
      ("S-MNIST LSTM, replication study", "replication", "replication-lstm-smnist-pure", {}, ("ratio",))]),
    ("… and HSTNN beats ffs given as many training multiply-accumulates",
     [("S-MNIST, criteria study, width 60", "criteria", "criteria-q3", {"a": "HSTNN", "b": "ffs (matched MACs)"}, ("ratio",)),
      ("S-MNIST, criteria study, HSTNN with random selection", "criteria", "criteria-q3",
       {"a": "HSTNN with random selection", "b": "ffs (matched MACs)"}, ("ratio",)),
      ("PTB, replication study (ffs on its own learning-rate schedule)", "replication", "replication-rnn-ptb-real-ffs-macs",
       {}, ("ratio",)),
      ("PTB, replication study (ffs on HSTNN's learning-rate schedule)", "replication",
       "replication-rnn-ptb-real-ffs-macs-lr", {}, ("ratio",))]),
]


def read_tests(path):
    """The tests of a CSV as dicts with numbers where numbers are."""
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for row in csv.DictReader(f):
            for k in ("n", "mean", "sd", "lo", "hi", "p", "p_holm", "lo_holm", "hi_holm", "pos", "neg", "mdd", "m"):
                if k in row:
                    row[k] = float(row[k]) if row[k] not in ("", None) else math.nan
            out.append(row)
    return out


def label(t, columns):
    parts = []
    for c in columns:
        v = t.get(c, "")
        parts.append(f"width {v}" if c == "width" else v.split(", ")[-1] if c == "a" else f"ratio {v}" if c == "ratio" else v)
    return " ".join(parts)


def evidence(tests, claimed):
    """The generated verdict cell and numbers cell of one body of evidence."""
    groups = {}
    for lab, t in tests:
        groups.setdefault(verdict(t, claimed)[0], []).append((lab, t))
    words, short = [], []
    for word in ("supported", "contradicted", "not detected", "untested"):
        g = groups.get(word, [])
        if not g:
            continue
        labels = [lab for lab, _ in g]
        where = ", ".join(labels)
        if len(labels) > 1 and all(lab.startswith("ratio ") for lab in labels):
            where = "ratios " + ", ".join(lab[6:] for lab in labels)
        if word == "not detected":
            words.append("**not detected**, no difference larger than " +
                         ", ".join(f"{verdict(t, claimed)[1]:.2f} at {lab}" for lab, t in g))
            short.append(f"**not detected** at {where} (at none of them a difference larger than "
                         f"{max(verdict(t, claimed)[1] for _, t in g):.2f})")
        else:
            words.append(f"**{word}** at {where}")
            short.append(words[-1])
    numbers = "; ".join(f"{lab}: {t['mean']:+.2f} [{t['lo_holm']:+.2f}, {t['hi_holm']:+.2f}]" for lab, t in tests
                        if not math.isnan(t["lo_holm"]))
    return "; ".join(words), numbers, "; ".join(short)


def verdict_rows(sources):
    """[(claim, evidence, protocol, n seeds, verdict cell, numbers cell, the verdict in short)] of every claim."""
    rows = []
    for claim, parts in CLAIMS:
        for what, source, fam, match, columns in parts:
            claimed = family(fam)[3]
            tests = [t for t in sources.get(source, []) if t["family"] == fam and all(t[k] == v for k, v in match.items())]
            if not tests:
                rows.append((claim, what, "", "", "untested (no runs)", "", "untested (no runs)"))
                continue
            protocols = sorted({t["protocol"] for t in tests})
            protocol = protocols[0] if len(protocols) == 1 else "mixed"
            seeds = sorted({int(t["n"]) for t in tests if not math.isnan(t["n"])})
            words, numbers, short = evidence([(label(t, columns), t) for t in tests], claimed)
            if protocol != "val":
                words = f"{NOT_EVIDENCE}: {words}"
            rows.append((claim, what, "validation set" if protocol == "val" else "test set" if protocol == "test"
                         else protocol, "–".join(map(str, sorted({seeds[0], seeds[-1]}))) if seeds else "", words, numbers,
                         short))
    return rows


def extra_rows(results):
    """Verdict rows of the trade-off, from tradeoff-verdicts.csv."""
    path = os.path.join(results, "tradeoff-verdicts.csv")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [tuple(r[k] for k in ("claim", "evidence", "protocol", "seeds", "verdict", "numbers", "verdict"))
                for r in csv.DictReader(f)]


def tables(rows):
    table = ["| the paper's claim | evidence | checkpoints chosen on | seeds | verdict (Holm-adjusted 95 % intervals) | "
             "difference, Holm-adjusted interval |", "|---|---|---|---|---|---|"]
    last = None
    for claim, what, protocol, seeds, words, numbers, _ in rows:
        table.append(f"| {claim if claim != last else '〃'} | {what} | {protocol} | {seeds} | {words} | {numbers} |")
        last = claim
    summary = []
    for claim in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == claim]
        evidence_ = [f"{what}: {short}" for _, what, protocol, _, _, _, short in mine if protocol == "validation set"]
        other = [what for _, what, protocol, *_ in mine if protocol not in ("validation set", "")]
        untested = [what for _, what, protocol, *_ in mine if protocol == ""]
        parts = [f"- **{claim[0].upper() + claim[1:]}.**"] + (["; ".join(evidence_) + "."] if evidence_ else [])
        if other:
            parts.append(f"Test-set selection, not evidence: {'; '.join(other)}.")
        if untested:
            parts.append(f"Untested (no runs or records yet, see the verdict table): {'; '.join(untested)}.")
        summary.append(" ".join(parts))
    return "\n".join(table), "\n".join(summary)


def families_table(sources):
    """Every declared family with the number of tests it holds now."""
    counts = {}
    for tests in sources.values():
        for t in tests:
            counts[t["family"]] = counts.get(t["family"], 0) + 1
    lines = ["| family | study | dataset | its tests | claimed sign | tests now |", "|---|---|---|---|---|---|"]
    for name, (study, dataset, what, claimed) in FAMILIES.items():
        sign = "> 0" if claimed > 0 else "< 0" if claimed < 0 else "per test"
        lines.append(f"| {name} | {study} | {dataset} | {what} | {sign} | {counts.get(name, 0)} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", default=RESULTS)
    p.add_argument("--writeup", default=os.path.join(ROOT, "results", "REPLICATION.md"),
                   help="the write-up whose blocks 'verdicts' and 'summary' are replaced ('' to leave it alone)")
    args = p.parse_args()
    sources = {"criteria": read_tests(os.path.join(args.results, "criteria", "paired-differences.csv")),
               "replication": read_tests(os.path.join(args.results, "replication", "tests.csv")),
               "tradeoff": read_tests(os.path.join(args.results, "tradeoff-tests.csv"))}
    rows = verdict_rows(sources) + extra_rows(args.results)
    table, summary = tables(rows)
    with open(os.path.join(args.results, "verdicts.md"), "w", encoding="utf-8") as f:
        f.write("# Verdicts of both studies (generated by studies/verdicts.py)\n\n" + table + "\n\n" + summary + "\n")
    print(table + "\n\n" + summary)
    if args.writeup:
        blocks = {"verdicts": table, "summary": summary, "families": families_table(sources)}
        print(writeup.summary(args.writeup, writeup.fill(args.writeup, blocks)))


if __name__ == "__main__":
    main()
