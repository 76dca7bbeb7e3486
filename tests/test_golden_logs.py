"""Characterisation: every script x model x mode at tiny size writes, line for line, the logs that a known-good
commit wrote (tests/golden/, times masked). Regenerate them only for an intended change of the logs, from a
clean checkout of the commit that makes it:
    rm -r tests/golden && python tests/golden_logs.py . tests/golden
"""
import os
import subprocess
import sys

from conftest import ROOT

GOLDEN = os.path.join(ROOT, "tests", "golden")


def logs(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, files in os.walk(folder) for f in files)


def test_logs_equal_the_golden_copies(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "golden_logs.py"), ROOT, str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert logs(str(tmp_path)) == logs(GOLDEN)
    assert len(logs(GOLDEN)) == 70
    changed = []
    for name in logs(GOLDEN):
        with open(os.path.join(GOLDEN, name)) as f:
            expected = f.read().splitlines()
        with open(os.path.join(tmp_path, name)) as f:
            got = f.read().splitlines()
        changed += [f"{name}:{i + 1}\n  golden: {e}\n  now:    {g}" for i, (e, g) in enumerate(zip(expected, got)) if e != g]
        if len(got) != len(expected):
            changed.append(f"{name}: {len(got)} lines, golden {len(expected)}")
    assert not changed, f"{len(changed)} lines differ:\n" + "\n".join(changed[:20])
