"""Both studies end to end, or every table, plot, verdict and sentence from the committed files: one command.

    HSTNN_STUDY_DATA=/path/to/data python studies/run.py     # every run of both studies (resumable), then all below
    python studies/run.py --aggregate-only                   # no data, no runs needed

/path/to/data holds MNIST/raw/ (the 5,000-digit sample) and penn-treebank/ (the real PTB splits). Without
--aggregate-only it runs studies/criteria/run.py and studies/replication/run.py (each: its launcher files in
order through the kit's launcher, then copies the finished logs and records into results/studies/). Then, from
the committed files under results/studies/ alone:
  studies/criteria/analysis.py     the criteria study's tables, tests, plot and sentences
  studies/replication/compare.py   the replication study's paired comparisons, tests and sentences
  studies/budget.py                the budgets in epochs and multiply-accumulates
  studies/tradeoff.py              accuracy against cost and robustness, where evaluate.py's records exist
  studies/verdicts.py              the verdict table, the summary and the families table
each of which also fills its blocks of results/REPLICATION.md. On the committed files, --aggregate-only leaves
every committed file byte-identical. The aggregator's per-experiment outputs of the replication study (CSV,
LaTeX, plots under results/studies/replication/<experiment>/) are rebuilt only where the runs are on this
machine (studies/replication/run.py does it); otherwise the committed ones are read.
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(ROOT, "results", "studies")
WRITEUP = os.path.join(ROOT, "results", "REPLICATION.md")


def steps(results, write_up):
    """The aggregation steps: script and arguments, on the files under `results` and the write-up `write_up`."""
    return [["replication/run.py", "--tables-from-copies", os.path.join(results, "replication")],
            ["criteria/analysis.py", "--out", os.path.join(results, "criteria"), "--writeup", write_up],
            ["replication/compare.py", "--runs", os.path.join(results, "replication"), "--out",
             os.path.join(results, "replication"), "--writeup", write_up],
            ["budget.py", "--results", results, "--writeup", write_up],
            ["tradeoff.py", "--results", results, "--writeup", write_up],
            ["verdicts.py", "--results", results, "--writeup", write_up]]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", default=os.environ.get("HSTNN_STUDY_DATA"),
                   help="folder with MNIST/raw and penn-treebank (default: $HSTNN_STUDY_DATA)")
    p.add_argument("--dry-run", action="store_true", help="print every command, run nothing")
    p.add_argument("--aggregate-only", action="store_true", help="only regenerate from the committed files")
    p.add_argument("--quiet", action="store_true", help="print only each step's last line")
    p.add_argument("--results", default=RESULTS, help="the committed logs, records and tables (default: results/studies)")
    p.add_argument("--writeup", default=WRITEUP, help="the write-up whose generated blocks are refilled")
    args = p.parse_args()
    prepared = all(os.path.isdir(os.path.join(HERE, study, "data")) for study in ("criteria", "replication"))
    given = args.data_root and os.path.isdir(args.data_root)
    if not args.aggregate_only and (not prepared or args.data_root) and not given:
        print(f"error: --data-root / HSTNN_STUDY_DATA must name the folder with MNIST/raw and penn-treebank (got "
              f"{args.data_root!r}); without data, --aggregate-only regenerates everything from the committed files",
              file=sys.stderr)
        return 2
    started, bad = time.time(), []
    if not args.aggregate_only:
        for study in ("criteria", "replication"):
            cmd = [sys.executable, os.path.join(HERE, study, "run.py")] + (["--dry-run"] if args.dry_run else [])
            if args.data_root:
                cmd += ["--data-root", args.data_root]
            print(f"\n#### {' '.join(cmd[1:])}  ({(time.time() - started) / 60:.1f} min)", flush=True)
            if subprocess.call(cmd, cwd=ROOT) != 0:
                bad.append(study)
    for step in steps(args.results, args.writeup):
        cmd = [sys.executable, os.path.join(HERE, step[0])] + step[1:]
        if args.dry_run:
            print(" ".join(cmd[1:]))
            continue
        done = subprocess.run(cmd, cwd=ROOT, capture_output=args.quiet, text=True)
        if args.quiet:
            print(f"{step[0]}: " + (done.stdout.strip().splitlines() or [""])[-1] if done.returncode == 0 else
                  f"{step[0]}: failed\n{done.stderr}")
        if done.returncode != 0:
            bad.append(step[0])
    if bad:
        print(f"problems in {bad}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
