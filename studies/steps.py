"""The run steps of a study's run.py: its launcher files and evaluate.py, in order."""
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_steps(order, here, dry_run=False):
    """Run each (script, flags) of `order` (a script relative to `here`, or an absolute path); an mprun file
    from `here`, evaluate.py from the repository root. --dry-run: only the mprun files, with --dry-run. Returns
    the steps that failed."""
    started, bad = time.time(), []
    for step, flags in order:
        cmd = [sys.executable, os.path.join(here, step)] + flags
        if dry_run and step.startswith("mprun"):
            cmd.append("--dry-run")
        elif dry_run:
            continue
        print(f"\n#### {' '.join(cmd[1:])}  ({(time.time() - started) / 60:.1f} min)", flush=True)
        if subprocess.call(cmd, cwd=ROOT if step.endswith("evaluate.py") else here) != 0:
            bad.append(step)
    print(f"\n#### runs finished in {(time.time() - started) / 60:.1f} min" + (f"; problems in {bad}" if bad else ""))
    return bad
