"""tools/upgrade-records.py on records of format 1 left by tiny real PTB runs (the new fields stripped): the
bindings are recomputed from the files they name, the aggregator counts the upgraded records, a second run
changes nothing, and a record that cannot be upgraded says why."""
import hashlib
import json
import os
import runpy
import shutil

import pytest

from conftest import ROOT, run_script, write_corpus
from common import runs
from common.report import logs as R

SCRIPT = os.path.join(ROOT, "experiments", "rnn-ptb-650-0.5-0.6", "rnn-ptb.py")
SMALL = ["--nhid", 8, "--emsize", 8, "--bptt", 6, "--batch_size", 4, "--log-interval", 1000, "--device", "cpu",
         "--stage1_epochs", 1, "--stage2_epochs", 1, "--hessian_probes", 2]
FORMAT_1 = ("status", "name", "mode", "model", "stage", "metric", "value", "test_line", "protocol", "checkpoint", "log",
            "argv", "kit_version", "device", "execution", "wall_s", "peak_rss_mb", "peak_gpu_mb", "allow_unfinished",
            "unfinished_adaptation", "finished_at")


def upgrade(*argv):
    """tools/upgrade-records.py in this process: (exit code, printed lines)."""
    import contextlib
    import io
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = runpy.run_path(os.path.join(ROOT, "tools", "upgrade-records.py"))["main"]([str(a) for a in argv])
    return code, out.getvalue().strip().split("\n")


def as_format_1(path, **changes):
    """Rewrite a record as the earlier version wrote it: only its fields, its digest over them."""
    with open(path) as f:
        record = json.load(f)
    old = {k: record.get(k) for k in FORMAT_1}
    old.update(changes)
    old["digest"] = runs.record_digest(old)
    with open(path, "w") as f:
        json.dump(old, f, indent=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """rnn, the Adaptation and Selection + Restoration at 0.5 (seed 1111), and a re-test of the rnn."""
    folder = tmp_path_factory.mktemp("runs")
    corpus = write_corpus(str(folder / "ptb"), lines=(60, 20, 20))
    for stage in (["--model", "rnn"], ["--model", "hybrid"], ["--model", "hybrid", "--mode", "train2", "--ratio", 0.5],
                  ["--model", "rnn", "--mode", "test1"]):
        assert run_script(SCRIPT, SMALL + ["--data", corpus] + stage, str(folder)) == 0
    return str(folder)


@pytest.fixture
def old_tree(trained, tmp_path):
    """A copy of the runs with every record of format 1."""
    folder = str(tmp_path / "rnn-ptb-650")
    shutil.copytree(trained, folder, symlinks=True)
    for f in os.listdir(os.path.join(folder, "log")):
        if f.endswith(".json"):
            as_format_1(os.path.join(folder, "log", f))
    return folder


def record(folder, name):
    with open(os.path.join(folder, "log", name)) as f:
        return json.load(f)


def test_upgrade_recomputes_the_bindings_and_the_aggregator_counts_them(old_tree):
    [exp] = R.make_experiments(old_tree, ratios=[0.5])
    assert "upgrade it with python tools/upgrade-records.py" in R.collect(exp).cells[("rnn", None, 1111)].problem
    code, lines = upgrade(old_tree)
    assert code == 0 and lines[-1] == "4 upgraded, 0 already format 2, 0 cannot upgrade"
    restored = record(old_tree, "train_ptb_hybrid_1111_0.5.json")
    assert restored["format"] == 2 and restored["digest"] == runs.record_digest(restored)
    assert (restored["name"], restored["kind"], restored["mode"], restored["dataset"], restored["model"],
            restored["seed"], restored["ratio"]) == ("ptb_hybrid_1111_0.5", "train", "train2", "ptb", "hybrid", 1111, 0.5)
    assert restored["config"]["nhid"] == 8 and restored["config"]["hessian_probes"] == 2 and restored["config"]["cell"] == "rnn"
    adaptation = runs.file_facts(os.path.join(old_tree, "checkpoint", "ptb_hybrid_1111.t7"))
    assert restored["parent"]["role"] == "adaptation" and restored["parent"]["checkpoint"]["sha256"] == adaptation["sha256"]
    retest = record(old_tree, "test_ptb_rnn_1111.json")
    assert retest["parent"]["role"] == "trained"
    assert retest["parent"]["checkpoint"]["sha256"] == record(old_tree, "train_ptb_rnn_1111.json")["checkpoint"]["sha256"]
    assert record(old_tree, "train_ptb_rnn_1111.json")["parent"] is None
    data = restored["data"]  # recomputed where the readers note what they read, else said why not
    assert (len(data["sha256"] or "") == 64) or (data["sha256"] is None and data["why"])
    assert restored["upgraded"]["from_format"] == 1
    if data["sha256"] is None:
        assert any(n.startswith("data (") for n in restored["upgraded"]["not_recomputed"])

    res = R.collect(exp)
    for model, ratio in (("rnn", None), ("hybrid", 0.5)):
        cell = res.cells[(model, ratio, 1111)]
        assert cell.problem is None and cell.raw == runs.final_metric(
            os.path.join(old_tree, "log", f"train_{R.result_name(exp, model, 1111, ratio)}.log"))[0]

    for name in ("train_ptb_rnn_1111", "train_ptb_hybrid_1111", "train_ptb_hybrid_1111_0.5", "test_ptb_rnn_1111"):
        assert runs.verify(os.path.join(old_tree, "log", f"{name}.log"))[2] is None  # the launcher's check too

    before = {f: open(os.path.join(old_tree, "log", f), "rb").read() for f in os.listdir(os.path.join(old_tree, "log"))}
    code, lines = upgrade(old_tree)
    assert lines[-1] == "0 upgraded, 4 already format 2, 0 cannot upgrade"
    assert before == {f: open(os.path.join(old_tree, "log", f), "rb").read() for f in os.listdir(os.path.join(old_tree, "log"))}


def test_what_cannot_be_upgraded_says_why_and_is_left_alone(old_tree, tmp_path):
    log = os.path.join(old_tree, "log")
    damaged = record(old_tree, "train_ptb_rnn_1111.json")
    damaged["wall_s"] = 1.0
    with open(os.path.join(log, "train_ptb_rnn_1111.json"), "w") as f:
        json.dump(damaged, f)
    with open(os.path.join(log, "test_ptb_rnn_1111.json"), "w") as f:
        f.write("[" * 100000)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.move(os.path.join(log, "train_ptb_hybrid_1111.json"), elsewhere / "train_ptb_hybrid_1111.json")
    os.symlink(elsewhere / "train_ptb_hybrid_1111.json", os.path.join(log, "train_ptb_hybrid_1111.json"))
    linked = (elsewhere / "train_ptb_hybrid_1111.json").read_bytes()
    shutil.copytree(log, tmp_path / "before", symlinks=True)
    code, lines = upgrade(old_tree, "--no-data")
    said = {line.split(": ", 1)[0].split("/")[-1]: line.split(": ", 1)[1] for line in lines[:-1]}
    assert said["train_ptb_rnn_1111.json"] == "cannot upgrade: it is damaged (its digest does not match)"
    assert said["test_ptb_rnn_1111.json"] == "cannot upgrade: unreadable (RecursionError)"
    assert said["train_ptb_hybrid_1111.json"].startswith("cannot upgrade: it links to ")
    assert (elsewhere / "train_ptb_hybrid_1111.json").read_bytes() == linked
    # the Selection beside it is upgraded without its parent: the Adaptation record is read through the link
    assert said["train_ptb_hybrid_1111_0.5.json"] == "upgraded (not recomputed: data (not asked (--no-data)))"
    assert "format" not in record(old_tree, "train_ptb_rnn_1111.json")
    with open(os.path.join(log, "train_ptb_hybrid_1111_0.5.log"), "a") as f:
        f.write("appended\n")
    os.remove(os.path.join(log, "train_ptb_hybrid_1111_0.5.json"))
    shutil.copy(tmp_path / "before" / "train_ptb_hybrid_1111_0.5.json", log)
    code, lines = upgrade(old_tree, "--no-data")
    assert any(line.endswith("train_ptb_hybrid_1111_0.5.json: cannot upgrade: its log train_ptb_hybrid_1111_0.5.log is "
                             "missing or changed since the run finished") for line in lines)


def test_a_selection_older_than_its_adaptation_is_upgraded_stale(old_tree):
    adaptation = os.path.join(old_tree, "log", "train_ptb_hybrid_1111.json")
    as_format_1(adaptation, finished_at="2099-01-01T00:00:00+0000")  # retrained after the Selection
    code, lines = upgrade(old_tree, "--no-data")
    assert any("its Adaptation finished after it: retrained since" in line for line in lines)
    assert record(old_tree, "train_ptb_hybrid_1111_0.5.json")["parent"]["checkpoint"] is None
    [exp] = R.make_experiments(old_tree, ratios=[0.5])
    cell = R.collect(exp).cells[("hybrid", 0.5, 1111)]
    assert cell.raw is None and cell.problem.startswith("stale: its Adaptation")


def test_copied_records_and_the_data_digest(old_tree, tmp_path):
    """A copied record (paths made relative by common.runs.copy_record) is checked against its log and upgraded;
    a script whose reader notes its data gets the data's digest."""
    copies = tmp_path / "results" / "logs"
    copies.mkdir(parents=True)
    for f in ("train_ptb_rnn_1111.log", "train_ptb_rnn_1111.json"):
        src = os.path.join(old_tree, "log", f)
        with open(src) as fin:
            text = fin.read()
        if f.endswith(".json"):  # as a record written in experiments/<name>/ and copied
            rec = json.loads(text)
            rec["log"]["path"] = "/somewhere/experiments/x/log/" + f[:-5] + ".log"
            rec["digest"] = runs.record_digest(rec)
            (tmp_path / "orig.json").write_text(json.dumps(rec))
            runs.copy_record(str(tmp_path / "orig.json"), str(copies / f))
        else:
            (copies / f).write_text(text)
    script = tmp_path / "toy" / "toy.py"
    script.parent.mkdir()
    script.write_text(
        "import argparse, os\nfrom common import datadigest\nDATASET = 'ptb'\n"
        "parser = argparse.ArgumentParser()\nfor f in ('--model', '--mode', '--data'):\n    parser.add_argument(f)\n"
        "parser.add_argument('--seed', type=int)\nparser.add_argument('--ratio', type=float, default=0.5)\n"
        "def check_flags(args):\n    pass\n"
        "def load_data(args, device):\n    datadigest.note_file('train', os.path.join(args.data, 'ptb.train.txt'))\n")
    data = tmp_path / "toy" / "corpus"
    write_corpus(str(data), lines=(5, 2, 2))
    rec = json.loads((copies / "train_ptb_rnn_1111.json").read_text())
    rec["argv"] = [str(script), "--model", "rnn", "--mode", "train1", "--seed", "1111", "--data", str(data)]
    rec["digest"] = "stale"  # a copy's digest cannot match anyway
    (copies / "train_ptb_rnn_1111.json").write_text(json.dumps(rec))
    code, lines = upgrade(copies)
    assert lines[0].endswith("train_ptb_rnn_1111.json: upgraded"), lines
    new = json.loads((copies / "train_ptb_rnn_1111.json").read_text())
    digest = hashlib.sha256((data / "ptb.train.txt").read_bytes()).hexdigest()
    assert new["data"]["parts"] == {"train": digest} and len(new["data"]["sha256"]) == 64
    assert new["config"] == {"data": str(data), "mode": "train1", "model": "rnn", "ratio": 0.5, "seed": 1111}
    assert "copied record" in new["upgraded"]["how"]
