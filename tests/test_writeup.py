"""The write-up's tables, verdicts and result sentences are regenerated from the committed logs by one command that
needs no data; its prose states no number that a generated block (or the configuration) does not hold; Holm and
the verdict rule."""
import glob
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


def test_a_table_whose_rows_are_gone_is_emptied_not_kept(tmp_path):
    path = tmp_path / "w.md"
    path.write_text("<!-- begin generated: a -->\n| stale |\n<!-- end generated: a -->\n")
    assert writeup.fill(str(path), {"a": ""}) == ["a"]
    assert path.read_text() == "<!-- begin generated: a -->\n<!-- end generated: a -->\n"
    assert writeup.fill(str(path), {"a": "\n"}) == [] and writeup.blocks(path.read_text()) == {"a": ""}


def test_intervals_in_prose_must_be_in_the_sources_at_the_quoted_precision():
    text = ("a +4.2 [+2.6, +5.8] b −0.19 [−1.90, +1.52] c 0.40 [0.36, 0.43] d +9.9 [+1.0, +2.0]\n"
            "<!-- begin generated: t -->\n| +7.77 [+7.00, +8.00] |\n<!-- end generated: t -->\n")
    sources = ["| +4.21 [+2.57, +5.84] |", "| -0.19 [-1.90, +1.52] |", "| 0.40 [0.36, 0.43] (8) |"]
    assert writeup.unsupported_intervals(text, sources) == ["+9.9 [+1.0, +2.0]"]  # generated blocks are not prose
    assert writeup.unsupported_intervals("x +4.3 [+2.6, +5.8]", sources) == ["+4.3 [+2.6, +5.8]"]  # 4.21 is 4.2


def config_sources():
    """The configuration a method sentence may quote: the studies' code and the training scripts they run."""
    paths = glob.glob(os.path.join(ROOT, "studies", "**", "*.py"), recursive=True)
    paths += glob.glob(os.path.join(ROOT, "experiments", "*", "*.py"))
    out = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            out.append(f.read())
    return out


def test_prose_states_no_number_that_is_not_in_a_generated_block_or_the_configuration():
    with open(WRITEUP, encoding="utf-8") as f:
        text = f.read()
    sources = list(writeup.blocks(text).values())
    assert writeup.unsupported_intervals(text, sources) == []
    assert writeup.unsupported_numbers(text, sources + config_sources()) == []
    # a result typed by hand into the prose is caught, in either form
    stale = text.replace("## Summary\n", "## Summary\n\nHSTNN wins by +4.321 [+1.234, +7.409] points, 87.23 % of seeds.\n")
    assert writeup.unsupported_numbers(stale, sources + config_sources()) == ["+4.321", "+1.234", "+7.409", "87.23"]
    assert writeup.unsupported_intervals(stale, sources) == ["+4.321 [+1.234, +7.409]"]


def test_one_command_regenerates_every_committed_study_file_byte_identical_without_data(tmp_path):
    """studies/run.py --aggregate-only, on a copy of the committed results and write-up, needs no data and no runs
    and leaves every file as committed: no table, plot, test, verdict or generated sentence is stale."""
    pytest.importorskip("matplotlib")
    results, copy = tmp_path / "studies", tmp_path / "REPLICATION.md"
    shutil.copytree(os.path.join(ROOT, "results", "studies"), results)
    shutil.copy(WRITEUP, copy)
    done = subprocess.run([sys.executable, os.path.join(ROOT, "studies", "run.py"), "--aggregate-only", "--quiet",
                           "--results", str(results), "--writeup", str(copy)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    committed = os.path.join(ROOT, "results", "studies")
    listed = sorted(os.path.relpath(os.path.join(f, n), committed) for f, _, ns in os.walk(committed) for n in ns)
    assert sorted(str(p.relative_to(results)) for p in results.rglob("*") if p.is_file()) == listed
    for name in listed:
        with open(os.path.join(committed, name), "rb") as a, open(results / name, "rb") as b:
            assert a.read() == b.read(), name
    with open(WRITEUP, encoding="utf-8") as f:
        assert copy.read_text(encoding="utf-8") == f.read()
    blocks = writeup.blocks(copy.read_text(encoding="utf-8"))
    assert {"verdicts", "summary", "families", "budget", "tradeoff", "criteria-q2-findings"} <= set(blocks)


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


def test_generated_sentences_state_what_the_adjusted_interval_allows_and_nothing_more():
    from common.report.inference import findings, holm, paired
    up, flat, down = paired([3.0, 3.2, 2.9, 3.1]), paired([1.0, -1.0, 1.5, -0.5]), paired([-2.0, -2.1, -1.9, -2.2])
    holm([up, flat, down])
    text = findings([("ratio 0.25", up), ("ratio 0.5", flat), ("ratio 0.75", down)], "Hessian − random")
    far = max(-flat["lo_holm"], flat["hi_holm"])
    assert text.splitlines() == [
        f"- Hessian − random: **supported** at 1 of 3 (Holm-adjusted interval on the claimed side of zero: ratio 0.25: "
        f"+3.05 [{up['lo_holm']:+.2f}, {up['hi_holm']:+.2f}]).",
        f"- Hessian − random: **contradicted** at 1 of 3 (Holm-adjusted interval on the opposite side of zero: ratio 0.75: "
        f"-2.05 [{down['lo_holm']:+.2f}, {down['hi_holm']:+.2f}]).",
        f"- Hessian − random: **not detected** at 1 of 3, no difference larger than {far:.2f} (Holm-adjusted intervals: "
        f"ratio 0.5: +0.25 [{flat['lo_holm']:+.2f}, {flat['hi_holm']:+.2f}])."]
