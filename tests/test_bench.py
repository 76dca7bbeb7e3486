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


def test_oracle_bench_smoke_scores_the_same_neurons_on_both_paths(tmp_path):
    out = tmp_path / "oracle"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "oracle.py"), "--widths", "8,12", "--neurons", "3",
                        "--images", "100", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads((tmp_path / "oracle.json").read_text())
    assert [(row["width"], row["population"]) for row in result["rows"]] == \
        [(w, k) for w in (8, 12) for k in ("snn1", "snn2", "rnn1", "rnn2")]
    for row in result["rows"]:
        assert row["neurons"] == 3 and row["max_abs_difference"] <= 1e-4
        assert row["one_at_a_time_s"] > 0 and row["batched_s"] > 0
    table = (tmp_path / "oracle.md").read_text()
    assert table.count("| 8 |") == 5 and "| 12 | all | 12 |" in table


def test_oracle_bench_refuses_bad_widths_before_any_work(tmp_path):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "oracle.py"), "--widths", "8,x"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--widths must be comma-separated integers" in r.stderr
    assert "Traceback" not in r.stderr
