"""The aggregator on hand-built format-2 records (docs/records.md): every way a wrong number could reach a table
(diverged, re-tested on other data, interrupted re-test, copied seed files, stale Selection, mixed protocols or
configurations, other data, garbled records, --allow-unfinished) gives div, NA or a marked cell, and no wrong
number in the CSV, LaTeX or summary."""
import csv
import hashlib
import json
import os
import shutil

from conftest import aggregate
from common.report import logs as R
from common.runs import record_digest

SEEDS = (1111, 2222)
DATA = hashlib.sha256(b"ptb").hexdigest()
VALUES = {("rnn", None): 110.0, ("snn", None): 130.0, ("ffs", 0.5): 120.0, ("hybrid", 0.5): 105.0}


def facts(path, rel):
    with open(path, "rb") as f:
        return {"path": rel, "size": os.path.getsize(path), "sha256": hashlib.sha256(f.read()).hexdigest()}


def block(value):
    return "=" * 89 + f"\n| Performance on Test Set | test loss  4.63 | test ppl {value:>8}\n" + "=" * 89 + "\n"


def write_run(folder, kind, name, value, status="finished", data=DATA, protocol=None, config=None, parent=None,
              checkpoint=None, record=None, **extra):
    """A run as a script of format 2 leaves it: log/<kind>_<name>.log ending with the final test block (or, for a
    diverged run, the line saying so), checkpoint/<name>.t7 and the record, digest included. Returns the record."""
    dataset, model, seed = name.split("_")[:3]
    ratio = float(name.split("_")[3]) if name.count("_") == 3 else None
    mode = {"train": "train2", "test": "test2"}[kind] if model == "hybrid" and ratio else f"{kind}1"
    os.makedirs(os.path.join(folder, "log"), exist_ok=True)
    os.makedirs(os.path.join(folder, "checkpoint"), exist_ok=True)
    log, ckpt = os.path.join(folder, "log", f"{kind}_{name}.log"), os.path.join(folder, "checkpoint", f"{name}.t7")
    raw = None if value is None else f"{value:.2f}"
    with open(log, "a") as f:
        f.write("| end of epoch   1 | time: 1.00s | valid loss  5.00 | valid ppl   150.00\n")
        f.write(block(raw) if status == "finished" else "diverged at epoch 1: non-finite loss\n")
    if kind == "train":
        with open(ckpt, "wb") as f:
            f.write(checkpoint or f"weights of {name}".encode())
    argv = ["rnn-ptb.py", "--model", model, "--mode", mode, "--seed", str(seed)] + \
        (["--ratio", str(ratio)] if ratio else []) + (["--protocol", protocol] if protocol else [])
    cfg = {"model": model, "mode": mode, "seed": int(seed), "ratio": ratio or 0.5, "nhid": 8, "lr": 20.0,
           "data": "ptb", "device": "cpu", "protocol": protocol, **(config or {})}
    rec = {"format": 2, "status": status, "name": name, "kind": kind, "mode": mode, "dataset": dataset,
           "model": model, "seed": int(seed), "ratio": ratio, "stage": "training" if kind == "train" else "test",
           "metric": raw if status == "finished" else None, "value": value if status == "finished" else None,
           "test_line": None, "protocol": protocol, "config": cfg, "data": {"sha256": data, "parts": {}},
           "parent": parent, "checkpoint": facts(ckpt, f"checkpoint/{name}.t7") if os.path.exists(ckpt) else None,
           "log": facts(log, f"log/{kind}_{name}.log"), "argv": argv, "allow_unfinished": False,
           "finished_at": "2026-12-01T10:00:00+0000", **extra}
    if status == "diverged":
        rec["diverged"] = {"epoch": 1, "what": "non-finite loss"}
    rec.update(record or {})
    rec["digest"] = record_digest(rec)
    with open(os.path.join(folder, "log", f"{kind}_{name}.json"), "w") as f:
        json.dump(rec, f, indent=1)
    return rec


def adaptation_parent(folder, seed):
    return {"role": "adaptation", "name": f"ptb_hybrid_{seed}",
            "checkpoint": facts(os.path.join(folder, "checkpoint", f"ptb_hybrid_{seed}.t7"), f"checkpoint/ptb_hybrid_{seed}.t7"),
            "record_sha256": None}


def make_table(folder, skip=()):
    """Every run of a PTB table (2 seeds, ratio 0.5), the Adaptations included; `skip`: names not written."""
    for i, seed in enumerate(SEEDS):
        write_run(folder, "train", f"ptb_hybrid_{seed}", 140.0 + i)
        for (model, ratio), v in VALUES.items():
            name = f"ptb_{model}_{seed}" + ("" if ratio is None else f"_{ratio}")
            if name not in skip:
                parent = adaptation_parent(folder, seed) if model == "hybrid" else None
                write_run(folder, "train", name, v + i, parent=parent)


def table(tmp_path, folder, *flags):
    out = tmp_path / "out"
    assert aggregate("--experiment", folder, "--out", out, "--no-plots", "--profile-csv", tmp_path / "none.csv", *flags) == 0
    read = lambda f: (out / f).read_text() if (out / f).exists() else None
    return {k: read(f"ptb-RNN{k}") for k in ("-ffs.csv", "-hybrid.csv", ".tex", "-summary.md", "-notes.csv")}


def row(csv_text, label):
    return next(line for line in csv_text.split("\n") if line.startswith(label + ", "))


def notes_of(t):
    return list(csv.reader(t["-notes.csv"].splitlines()))


def nowhere(t, *numbers):
    """None of the numbers appears in the CSVs, the LaTeX or the summary."""
    for key in ("-ffs.csv", "-hybrid.csv", ".tex", "-summary.md"):
        for n in numbers:
            assert n not in t[key], (n, key)


def test_a_clean_table_is_the_authors_with_no_notes(tmp_path):
    folder = str(tmp_path / "rnn-ptb-650")
    make_table(folder)
    t = table(tmp_path, folder)
    assert t["-hybrid.csv"] == "type, 1111, 2222, avg, squ\nrnn, 110.0, 111.0, 110.5, 0.25\n0.50, 105.0, 106.0, 105.5, " \
                               "0.25\nsnn, 130.0, 131.0, 130.5, 0.25\n\n"
    assert t["-notes.csv"] is None and "footnotesize" not in t[".tex"] and "Notes:" not in t["-summary.md"]
    assert "All runs complete." in t["-summary.md"]


def test_a_diverged_run_is_div_and_left_out_of_the_average(tmp_path):
    folder = str(tmp_path / "rnn-ptb-650")
    make_table(folder, skip={"ptb_snn_2222"})
    write_run(folder, "train", "ptb_snn_2222", None, status="diverged")
    t = table(tmp_path, folder)
    assert row(t["-ffs.csv"], "snn") == "snn, 130.0, div, 130.0, 0.0"
    assert "snn & \\multicolumn{2}{c|}{130.00}  & \\multicolumn{2}{c|}{div}" in t[".tex"]
    assert "| snn | 130.00 ± 0.00 (n=1; 1 diverged, left out) |" in t["-summary.md"]
    assert "train_ptb_snn_2222.log: diverged at epoch 1 (non-finite loss)" in t["-summary.md"]


def test_a_retest_on_other_data_never_replaces_the_training_number(tmp_path):
    folder = str(tmp_path / "rnn-ptb-650")
    make_table(folder)
    trained = json.load(open(os.path.join(folder, "log", "train_ptb_rnn_1111.json")))
    parent = {"role": "trained", "name": "ptb_rnn_1111", "checkpoint": trained["checkpoint"], "record_sha256": None}
    write_run(folder, "test", "ptb_rnn_1111", 2195.82, data=hashlib.sha256(b"reordered").hexdigest(), parent=parent)
    t = table(tmp_path, folder)
    assert row(t["-ffs.csv"], "rnn") == "rnn, 110.0, 111.0, 110.5, 0.25"
    assert "110.00$^{a}$" in t[".tex"] and "$^{a}$ a re-test on other data was ignored" in t[".tex"]
    assert "[a] a re-test on other data was ignored" in t["-summary.md"]
    assert "ffs,rnn,1111,110.00,a,a re-test on other data was ignored" in t["-notes.csv"]
    nowhere(t, "2195.82")
    t = table(tmp_path, folder, "--logs", "test")  # asked for the re-tests: that one is refused
    assert row(t["-ffs.csv"], "rnn").startswith("rnn, NA, ") and "a re-test on other data" in t["-summary.md"]
    nowhere(t, "2195.82")


def test_an_interrupted_retest_keeps_the_training_number(tmp_path):
    folder = str(tmp_path / "rnn-ptb-650")
    make_table(folder)
    with open(os.path.join(folder, "log", "test_ptb_rnn_1111.log"), "w") as f:
        f.write("| end of epoch   1 | time: 1.00s\n")  # killed before its final test block and record
    write_run(folder, "test", "ptb_snn_1111", 999.0, status="failed", error="killed")
    t = table(tmp_path, folder)
    assert row(t["-ffs.csv"], "rnn") == "rnn, 110.0, 111.0, 110.5, 0.25"
    assert row(t["-ffs.csv"], "snn") == "snn, 130.0, 131.0, 130.5, 0.25"
    nowhere(t, "999")


def test_a_retest_without_a_training_record_fills_the_cell_marked(tmp_path):
    folder = str(tmp_path / "rnn-ptb-650")
    make_table(folder, skip={"ptb_rnn_2222"})
    write_run(folder, "train", "ptb_rnn_2222", 111.0)  # a checkpoint to test...
    os.remove(os.path.join(folder, "log", "train_ptb_rnn_2222.json"))  # ...whose training left no record (the authors')
    os.remove(os.path.join(folder, "log", "train_ptb_rnn_2222.log"))
    write_run(folder, "test", "ptb_rnn_2222", 112.5)
    t = table(tmp_path, folder)
    assert row(t["-ffs.csv"], "rnn") == "rnn, 110.0, 112.5, 111.25, 1.56"
    assert "112.50$^{a}$" in t[".tex"] and "from a re-test: no training record" in t["-summary.md"]


def test_files_of_one_seed_copied_under_another_seeds_names_are_refused(tmp_path):
    folder = str(tmp_path / "rnn-ptb-650")
    make_table(folder)
    for sub, base in (("log", "train_ptb_rnn_{}.log"), ("log", "train_ptb_rnn_{}.json"), ("checkpoint", "ptb_rnn_{}.t7")):
        shutil.copy(os.path.join(folder, sub, base.format(1111)), os.path.join(folder, sub, base.format(2222)))
    t = table(tmp_path, folder)
    assert row(t["-ffs.csv"], "rnn") == "rnn, 110.0, NA, 110.0, 0.0"
    assert "train_ptb_rnn_2222.log: its record names run 'ptb_rnn_1111', not ptb_rnn_2222" in t["-summary.md"]
    # a record edited to say the new name no longer matches its digest; re-digested, its argv still says 1111
    rec = json.load(open(os.path.join(folder, "log", "train_ptb_rnn_2222.json")))
    rec["name"] = "ptb_rnn_2222"
    rec["digest"] = record_digest(rec)
    json.dump(rec, open(os.path.join(folder, "log", "train_ptb_rnn_2222.json"), "w"))
    t = table(tmp_path, folder)
    assert row(t["-ffs.csv"], "rnn") == "rnn, 110.0, NA, 110.0, 0.0"
    assert "its record's configuration is run ptb_rnn_1111's, not ptb_rnn_2222's" in t["-summary.md"]
    rec["seed"] = rec["config"]["seed"] = 2222
    rec["digest"] = record_digest(rec)
    json.dump(rec, open(os.path.join(folder, "log", "train_ptb_rnn_2222.json"), "w"))
    t = table(tmp_path, folder)
    assert row(t["-ffs.csv"], "rnn") == "rnn, 110.0, NA, 110.0, 0.0"
    assert "disagrees with itself about its seed (2222.0, 2222.0, 1111.0)" in t["-summary.md"]  # its command line


def test_a_selection_whose_adaptation_was_retrained_is_stale(tmp_path):
    folder = str(tmp_path / "rnn-ptb-650")
    make_table(folder)
    os.remove(os.path.join(folder, "log", "train_ptb_hybrid_2222.log"))
    write_run(folder, "train", "ptb_hybrid_2222", 150.0, checkpoint=b"retrained")  # the Adaptation again
    t = table(tmp_path, folder)
    assert row(t["-hybrid.csv"], "0.50") == "0.50, 105.0, NA, 105.0, 0.0"
    assert "\\textbf{NA}$^{a}$" in t[".tex"] and "$^{a}$ stale: what it started from (its Adaptation" in t[".tex"]
    assert "train_ptb_hybrid_2222_0.5.log: stale: its Adaptation (ptb_hybrid_2222.t7) changed after" in t["-summary.md"]
    nowhere(t, "106.0")
    # without the checkpoints on disk, the Adaptation's record tells the same
    for seed in SEEDS:
        os.remove(os.path.join(folder, "checkpoint", f"ptb_hybrid_{seed}.t7"))
    assert row(table(tmp_path, folder)["-hybrid.csv"], "0.50") == "0.50, 105.0, NA, 105.0, 0.0"


def test_mixed_protocols_are_marked_and_never_averaged(tmp_path):
    folder = str(tmp_path / "rnn-ptb-650")
    make_table(folder, skip={"ptb_rnn_1111", "ptb_rnn_2222", "ptb_snn_1111", "ptb_snn_2222"})
    for model, v in (("rnn", 7.5), ("snn", 130.0)):
        write_run(folder, "train", f"ptb_{model}_1111", v, protocol="test")
        write_run(folder, "train", f"ptb_{model}_2222", v + 1, protocol="test" if model == "snn" else "val")
    t = table(tmp_path, folder)
    assert row(t["-ffs.csv"], "rnn") == "rnn, 7.5, 8.5, NA, NA"
    assert row(t["-ffs.csv"], "snn") == "snn, 130.0, 131.0, 130.5, 0.25"
    nowhere(t, "8.0")
    notes = notes_of(t)
    assert ["ffs", "rnn", "2222", "8.50", "a", "--protocol val (not the table's test)"] in notes
    assert ["ffs", "rnn", "avg", "NA", "b", "no average: the row mixes protocols test, val"] in notes
    assert "rnn$^{b}$ &" in t[".tex"] and "8.50$^{a}$" in t[".tex"]
    assert "| rnn | NA [a,b] |" in t["-summary.md"]


def test_a_row_of_mixed_configurations_is_marked_and_not_averaged(tmp_path):
    folder = str(tmp_path / "rnn-ptb-650")
    make_table(folder, skip={"ptb_snn_2222"})
    write_run(folder, "train", "ptb_snn_2222", 131.0, config={"max_batches": 3, "threads": 4})
    t = table(tmp_path, folder)
    assert row(t["-ffs.csv"], "snn") == "snn, 130.0, 131.0, NA, NA"
    notes = notes_of(t)
    assert ["ffs", "snn", "1111", "130.00", "a", "configuration differs from the rest of its row: max_batches=None"] in notes
    assert ["ffs", "snn", "2222", "131.00", "b", "a quick run (--max_batches 3): not the number of the full data"] in notes
    assert ["ffs", "snn", "2222", "131.00", "c", "configuration differs from the rest of its row: max_batches=3"] in notes
    assert ["ffs", "snn", "avg", "NA", "d", "no average: the row mixes configurations"] in notes
    assert "threads" not in t["-notes.csv"]  # a neutral flag


def test_a_run_on_other_data_than_its_table_is_stale(tmp_path):
    folder = str(tmp_path / "rnn-ptb-650")
    make_table(folder, skip={"ptb_ffs_2222_0.5"})
    write_run(folder, "train", "ptb_ffs_2222_0.5", 121.0, data=hashlib.sha256(b"other").hexdigest())
    t = table(tmp_path, folder)
    assert row(t["-ffs.csv"], "0.50") == "0.50, 120.0, NA, 120.0, 0.0"
    assert "stale: its data digest differs from the rest of its table" in t["-summary.md"]
    nowhere(t, "121.0")


def test_garbled_records_are_one_na_each_never_a_crash(tmp_path):
    folder = str(tmp_path / "rnn-ptb-650")
    make_table(folder)
    log = os.path.join(folder, "log")
    with open(os.path.join(log, "train_ptb_rnn_1111.json"), "w") as f:
        f.write("[" * 100000 + "]" * 100000)                                       # deeply nested
    with open(os.path.join(log, "train_ptb_rnn_2222.json"), "w") as f:
        f.write("[1, 2]")                                                          # not an object
    rec = json.load(open(os.path.join(log, "train_ptb_snn_1111.json")))
    rec["checkpoint"] = {"path": ["x"], "size": "big", "sha256": {"deep": [[[]]]}}  # wrong types
    rec["digest"] = record_digest(rec)
    json.dump(rec, open(os.path.join(log, "train_ptb_snn_1111.json"), "w"))
    rec = json.load(open(os.path.join(log, "train_ptb_snn_2222.json")))
    rec["config"] = {"nested": {"a": [[[[1]]]]}}  # deeper than any configuration
    rec["digest"] = record_digest(rec)
    json.dump(rec, open(os.path.join(log, "train_ptb_snn_2222.json"), "w"))
    t = table(tmp_path, folder)
    assert row(t["-ffs.csv"], "rnn") == "rnn, NA, NA, NA, NA" and row(t["-ffs.csv"], "snn") == "snn, NA, NA, NA, NA"
    assert "train_ptb_rnn_1111.log: record train_ptb_rnn_1111.json is garbled (RecursionError)" in t["-summary.md"]
    assert "train_ptb_rnn_2222.log: record train_ptb_rnn_2222.json is garbled (not a JSON object)" in t["-summary.md"]
    assert "is garbled (wrong type in checkpoint)" in t["-summary.md"]
    assert "is garbled (wrong type in config)" in t["-summary.md"]
    assert row(t["-hybrid.csv"], "0.50") == "0.50, 105.0, 106.0, 105.5, 0.25"


def test_allow_unfinished_is_marked(tmp_path):
    folder = str(tmp_path / "rnn-ptb-650")
    make_table(folder, skip={"ptb_hybrid_1111_0.5"})
    write_run(folder, "train", "ptb_hybrid_1111_0.5", 105.0, parent=adaptation_parent(folder, 1111),
              allow_unfinished=True, unfinished_adaptation="no completion record")
    t = table(tmp_path, folder)
    assert row(t["-hybrid.csv"], "0.50") == "0.50, 105.0, 106.0, 105.5, 0.25"
    assert "\\textbf{105.00}$^{a}$" in t[".tex"]
    assert "[a] selected from an Adaptation that was not a finished run (--allow-unfinished)" in t["-summary.md"]


def test_stage1_runs_linked_from_another_folder_count(tmp_path):
    """An ablation folder that links the stage-1 logs and records of its experiment (as the studies' share_stage1
    does) shows their rows: a linked run is verified where it lives, beside its checkpoint."""
    source, ablation = str(tmp_path / "real"), str(tmp_path / "real-random-selection")
    make_table(source)
    os.makedirs(os.path.join(ablation, "log"))
    os.makedirs(os.path.join(ablation, "checkpoint"))
    for f in os.listdir(os.path.join(source, "log")):
        if f.count("_") == 3:  # rnn, snn, hybrid (the Adaptation)
            os.symlink(os.path.join("..", "..", "real", "log", f), os.path.join(ablation, "log", f))
    os.symlink(os.path.join("..", "..", "real", "checkpoint", "ptb_hybrid_1111.t7"),
               os.path.join(ablation, "checkpoint", "ptb_hybrid_1111.t7"))
    write_run(ablation, "train", "ptb_hybrid_1111_0.5", 108.0, parent=adaptation_parent(ablation, 1111))
    [exp] = R.make_experiments(ablation)
    res = R.collect(exp)
    assert [c.raw for c in res.row("rnn")] == ["110.00", "111.00"] and [c.raw for c in res.row("snn")] == ["130.00", "131.00"]
    assert res.cells[("hybrid", 0.5, 1111)].raw == "108.00"


def test_copied_logs_count_by_their_logs_bytes(tmp_path):
    """A folder of copied logs and records (results/studies/*/logs/, no checkpoints) is read as such: a number
    counts when its record names itself and matches its log, and the table says it was read from copies."""
    folder = str(tmp_path / "rnn-ptb-650")
    make_table(folder)
    copies = tmp_path / "results" / "rnn-ptb-650" / "logs"
    shutil.copytree(os.path.join(folder, "log"), copies)
    with open(copies / "train_ptb_snn_2222.log", "a") as f:
        f.write("edited\n")
    t = table(tmp_path, tmp_path / "results" / "rnn-ptb-650")
    assert row(t["-hybrid.csv"], "0.50") == "0.50, 105.0, 106.0, 105.5, 0.25"
    assert row(t["-ffs.csv"], "snn") == "snn, 130.0, NA, 130.0, 0.0"
    assert "read from copied logs and records (logs/)" in t[".tex"] and "the log changed since" in t["-summary.md"]


def test_a_bound_retest_counts_with_logs_test_and_an_unchecked_one_is_marked(tmp_path):
    folder = str(tmp_path / "rnn-ptb-650")
    make_table(folder)
    for seed, value, data in ((1111, 110.0, DATA), (2222, 2195.82, None)):  # the second: no data digest
        trained = json.load(open(os.path.join(folder, "log", f"train_ptb_snn_{seed}.json")))
        parent = {"role": "trained", "name": f"ptb_snn_{seed}", "checkpoint": trained["checkpoint"], "record_sha256": None}
        write_run(folder, "test", f"ptb_snn_{seed}", value, data=data, parent=parent)
    t = table(tmp_path, folder)
    assert row(t["-ffs.csv"], "snn") == "snn, 130.0, 131.0, 130.5, 0.25"
    assert "a re-test of the same checkpoint on the same data gives 110.00" in t["-summary.md"]
    assert "a re-test (its data cannot be compared with its training run's" in t["-summary.md"]
    nowhere(t, "2195.82")
    t = table(tmp_path, folder, "--logs", "test")
    assert row(t["-ffs.csv"], "snn").startswith("snn, 110.0, 2195.82, ")  # asked for: counted, the second marked
    assert ["ffs", "snn", "2222", "2195.82", "a", "its data cannot be compared with its training run's (a record "
            "without a data digest)"] in notes_of(t)


def test_a_copied_record_keeps_a_valid_digest_and_names_no_local_path(tmp_path):
    """A study copies its runs' records out of their folders with their paths made relative: the copy of an intact
    record is digested again (and says it is a copy); a damaged record stays damaged."""
    from common.runs import copy_record, load_record
    rec = {"format": 2, "status": "finished", "name": "mnist_rnn_1111",
           "config": {"data": "/home/someone/kit/studies/criteria/data"}, "argv": ["/home/someone/kit/experiments/x.py"]}
    rec["digest"] = record_digest(rec)
    (tmp_path / "orig.json").write_text(json.dumps(rec))
    copy_record(str(tmp_path / "orig.json"), str(tmp_path / "train_mnist_rnn_1111.json"))
    copy, problem = load_record(str(tmp_path / "train_mnist_rnn_1111.log"))
    assert problem is None and copy["copied"] is True
    assert copy["config"]["data"] == "studies/criteria/data" and copy["argv"] == ["experiments/x.py"]
    rec["status"] = "diverged"  # changed after its digest: damaged
    (tmp_path / "orig.json").write_text(json.dumps(rec))
    copy_record(str(tmp_path / "orig.json"), str(tmp_path / "train_mnist_rnn_1111.json"))
    assert "damaged" in load_record(str(tmp_path / "train_mnist_rnn_1111.log"))[1]
