"""bench/run.py at smoke size: every section runs, and the fast paths equal the definition
(correctness only; timings are never asserted)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ["redundant hybrid", "restored hybrid", "S-MNIST", "DVS hybrid", "multi-step LIF T=10",
            "multi-step LIF T=35", "selection (fast, 1 probe", "selection (fast, 2 probes"]


def test_bench_smoke(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "run.py"), "--smoke", "--threads", "1",
                        "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads(out.read_text())
    rows = result["rows"]
    for name in SECTIONS:
        assert sum(name in row["section"] for row in rows) == 1, (name, [row["section"] for row in rows])
    for row in rows:
        assert row["max_rel_diff"] < 1e-5, row
        assert row["spike_mismatches"] == 0, row
        assert row["definition_s"] > 0 and row["fast_s"] > 0
    assert result["machine"]["peak_flops"] > 0
    assert "| DVS hybrid |" in r.stdout  # the markdown table
