"""The write-up's tables are regenerated from the committed logs, and every interval its prose quotes is one of
theirs."""
import os
import shutil
import subprocess
import sys

import pytest

from common.report import writeup
from conftest import ROOT

WRITEUP = os.path.join(ROOT, "results", "REPLICATION.md")
CRITERIA = os.path.join(ROOT, "results", "studies", "criteria")
REPLICATION = os.path.join(ROOT, "results", "studies", "replication")


def test_fill_replaces_only_the_marked_tables_and_refuses_unknown_names(tmp_path):
    path = tmp_path / "w.md"
    path.write_text("intro 1.0 [0.5, 1.5]\n<!-- begin generated: a -->\n| old |\n<!-- end generated: a -->\nmiddle\n"
                    "<!-- begin generated: b -->\n| keep |\n<!-- end generated: b -->\nend\n")
    assert writeup.fill(str(path), {"a": "| new |\n|---|"}) == ["a"]
    text = path.read_text()
    assert "| new |\n|---|\n<!-- end generated: a -->" in text and "| old |" not in text and "| keep |" in text
    assert writeup.fill(str(path), {"a": "| new |\n|---|"}) == []        # nothing changed the second time
    with pytest.raises(ValueError, match=r"\['c'\]"):
        writeup.fill(str(path), {"c": "| x |"})
    assert path.read_text() == text                                       # refused before writing
    assert writeup.blocks(text)["b"] == "| keep |\n"


def test_intervals_in_prose_must_be_in_the_sources_at_the_quoted_precision():
    text = ("a +4.2 [+2.6, +5.8] b −0.19 [−1.90, +1.52] c 0.40 [0.36, 0.43] d +9.9 [+1.0, +2.0]\n"
            "<!-- begin generated: t -->\n| +7.77 [+7.00, +8.00] |\n<!-- end generated: t -->\n")
    sources = ["| +4.21 [+2.57, +5.84] |", "| -0.19 [-1.90, +1.52] |", "| 0.40 [0.36, 0.43] (8) |"]
    assert writeup.unsupported_intervals(text, sources) == ["+9.9 [+1.0, +2.0]"]  # generated blocks are not prose
    assert writeup.unsupported_intervals("x +4.3 [+2.6, +5.8]", sources) == ["+4.3 [+2.6, +5.8]"]  # 4.21 is 4.2


def test_every_interval_quoted_in_the_write_up_comes_from_a_generated_table_or_results_file():
    with open(WRITEUP, encoding="utf-8") as f:
        text = f.read()
    sources = list(writeup.blocks(text).values())
    for path in (os.path.join(CRITERIA, "tables.md"), os.path.join(REPLICATION, "comparisons.md")):
        with open(path, encoding="utf-8") as f:
            sources.append(f.read())
    assert len(writeup.intervals(writeup.prose(text))) > 20
    assert writeup.unsupported_intervals(text, sources) == []


def test_the_write_up_tables_are_what_the_committed_logs_give(tmp_path):
    """analysis.py and compare.py, run on the committed logs into a scratch folder and a copy of the write-up,
    leave the copy byte-identical: no table of the write-up is stale."""
    pytest.importorskip("matplotlib")
    copy = tmp_path / "REPLICATION.md"
    shutil.copy(WRITEUP, copy)
    criteria = tmp_path / "criteria"
    criteria.mkdir()
    for name in ("no-retraining.csv", "profile.csv"):
        shutil.copy(os.path.join(CRITERIA, name), criteria / name)
    subprocess.run([sys.executable, os.path.join(ROOT, "studies", "criteria", "analysis.py"), "--out", str(criteria),
                    "--logs", os.path.join(CRITERIA, "logs"), "--writeup", str(copy)], check=True, capture_output=True)
    for name in ("tables.md", "paired-differences.csv"):
        with open(os.path.join(CRITERIA, name), encoding="utf-8") as f:
            assert (criteria / name).read_text(encoding="utf-8") == f.read(), name
    subprocess.run([sys.executable, os.path.join(ROOT, "studies", "replication", "compare.py"), "--runs", REPLICATION,
                    "--out", str(tmp_path / "replication"), "--writeup", str(copy)], check=True, capture_output=True)
    with open(os.path.join(REPLICATION, "comparisons.md"), encoding="utf-8") as f:
        assert (tmp_path / "replication" / "comparisons.md").read_text(encoding="utf-8") == f.read()
    with open(WRITEUP, encoding="utf-8") as f:
        assert copy.read_text(encoding="utf-8") == f.read()
    assert len(writeup.blocks(copy.read_text(encoding="utf-8"))) >= 15


def test_holm_adjusts_p_step_down_and_its_intervals_exclude_zero_exactly_when_it_rejects():
    from common.report.inference import holm, paired, verdict
    tests = [paired(d) for d in ([5.0, 5.2, 4.9, 5.1], [1.0, 3.0, 0.5, 2.0], [0.3, -0.2, 0.1, 0.4], [2.0, 2.1, 1.9, 2.2])]
    raw = [t["p"] for t in tests]
    holm(tests)
    order = sorted(range(4), key=lambda i: raw[i])
    expected, running = {}, 0.0
    for j, i in enumerate(order):  # Holm: (m - j) * p, made monotone
        running = max(running, min(1.0, (4 - j) * raw[i]))
        expected[i] = running
    assert [t["p_holm"] for t in tests] == pytest.approx([expected[i] for i in range(4)])
    for t in tests:
        assert (t["lo_holm"] > 0 or t["hi_holm"] < 0) == (t["p_holm"] < 0.05)
        assert t["lo_holm"] <= t["lo"] and t["hi_holm"] >= t["hi"]  # never narrower than the raw interval
    assert verdict(tests[0]) == ("supported", None) and verdict(tests[0], -1) == ("contradicted", None)
    word, x = verdict(tests[2])
    assert word == "not detected" and x == pytest.approx(max(-tests[2]["lo_holm"], tests[2]["hi_holm"]))
