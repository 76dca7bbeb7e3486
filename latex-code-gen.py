"""Collect the test results of every experiment into the authors' CSV and LaTeX tables, a mean ± std
summary, plots beside the published numbers, and the profile table.

    python latex-code-gen.py                                   # every experiments/*/ and studies/*/ with logs
    python latex-code-gen.py --experiment rnn-ptb-650-0.5-0.6 --seeds 1111,2222 --ratios 0.1,0.5

A run counts only when its record (log/<train|test>_<name>.json, docs/records.md) says it finished, names
itself and still matches its log and checkpoint; --legacy-logs reads logs without records (the authors' own)
by their last three lines. A missing, unfinished, changed, stale or garbled run becomes an NA cell and a line in
the list printed at the end; a diverged run a div cell, left out of the averages. A cell is the training
run's number (its train_ log ends with the final test); a re-test (test_ log) counts only as a test of the same
checkpoint on the same data and fills only a cell without a training record (--logs test reads the re-tests).
A folder with logs/ instead of log/ is a folder of copied logs and records (results/studies/*/): its numbers are
bound by their logs' bytes, the checkpoints not being at hand.
Cells and rows that need a word (another protocol or configuration than the rest, --allow-unfinished, a re-test
that was ignored, stale runs) get a marker in the LaTeX (superscript, with footnotes under the table) and the
summary, and a line in <ds>-<TYPE>-notes.csv; a row that mixes protocols or configurations is not averaged.
A table with nothing to say has no notes file and the authors' CSV and LaTeX exactly.
Where evaluate.py has written cost or robustness results (log/cost_*.json, log/robust_*.json), it also writes
<ds>-<TYPE>-tradeoff.csv and the plots <ds>-<TYPE>-tradeoff-{metric,energy,robustness,pareto,firing-rates}.png.
Every experiment also gets <ds>-<TYPE>-curves.png: each run's metric per epoch, from its train log.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, ROOT)
from common.report import logs, profile, tables  # noqa: E402


def number_list(kind):
    def parse(text):
        try:
            return [kind(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    return parse


def experiment_folder(name):
    for candidate in (name, os.path.join(ROOT, "experiments", name), os.path.join(ROOT, "studies", name)):
        if os.path.isdir(candidate):
            return os.path.abspath(candidate)
    raise SystemExit(f"error: no experiment folder {name!r} (looked in ., experiments/ and studies/)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--experiment", action="append", default=[],
                   help="experiment folder (path, or name under experiments/ or studies/), or a folder of copied "
                        "logs/ (results/studies/*/); repeatable; default: every folder with a log/ directory")
    p.add_argument("--seeds", type=number_list(int), help="seeds, e.g. 1111,2222 (default: those in the logs)")
    p.add_argument("--ratios", type=number_list(float), help="SNN ratios (default: those in the logs)")
    p.add_argument("--logs", choices=("auto", "test", "train"), default="auto",
                   help="which logs to read; auto: the training runs (train_ logs), a re-test only where a run has no "
                        "training record; test: the re-tests, each bound to its training run; train: train_ logs only")
    p.add_argument("--legacy-logs", action="store_true",
                   help="read logs without completion records (the authors' own logs, trees from before records): "
                        "a run counts when its log ends with the final test block and no resume file is left")
    p.add_argument("--out", default=os.path.join(ROOT, "results"), help="output folder")
    p.add_argument("--profile-csv", default=os.path.join(ROOT, "results", "profile.csv"),
                   help="the launcher's profile records")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG/PDF plots")
    p.add_argument("--bold", choices=("hstnn", "better"), default="hstnn",
                   help="which cells the .tex bolds: hstnn = every HSTNN cell, as the authors' table; better = per seed "
                        "and ratio the better of ffs and HSTNN (none on a tie)")
    args = p.parse_args(argv)

    if args.experiment:
        experiments = logs.separate_outputs([e for name in args.experiment for e in logs.make_experiments(
            experiment_folder(name), args.seeds, args.ratios, args.logs, legacy=args.legacy_logs)])
    else:
        experiments = logs.discover(ROOT, args.seeds, args.ratios, args.logs, legacy=args.legacy_logs)
    if not experiments:
        print("No logs found (looked for experiments/*/log and studies/*/log). Run an mprun-*.py first, "
              "or name a folder with --experiment.")
    found = tables.write_report(experiments, args.out, plots=not args.no_plots, bold=args.bold)

    folders = sorted({e.folder for e in experiments})
    if folders or os.path.exists(args.profile_csv):
        table = profile.profile_text(folders, args.profile_csv)
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "profile.md"), "w") as fp:
            fp.write(table)
        print("Profile (jobs run by the launcher; epoch time from the train logs):\n" + table)
    print(tables.problems_text(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
