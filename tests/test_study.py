"""--selection random (the replication study's ablation): the same counts and rule as the Hessian
selection, reproducible for a seed, a different pick; and the study's launcher files parse."""
import csv
import json
import os
import runpy
import statistics
import subprocess
import sys
import types

import pytest

from common.report import writeup
from common.runs import record_digest
from conftest import ROOT, run_script
from idx import write_fake_mnist

SCRIPT = os.path.join(ROOT, "experiments", "rnn-smnist-800-0.5-0.6", "rnn-smnist.py")
SMALL = ["--nhid", 8, "--batch_size", 50, "--device", "cpu", "--stage1_epochs", 1, "--stage2_epochs", 1,
         "--hessian_probes", 4, "--stage1_lr", 3e-3, "--stage2_lr", 3e-3]


def kept(folder, name):
    with open(os.path.join(folder, "traces", f"{name}_importance.csv")) as f:
        return {(r["param"], int(r["neuron"])) for r in csv.DictReader(f) if r["kept"] == "1"}


def test_random_selection_same_counts_reproducible_and_not_the_hessian_pick(tmp_path):
    data = write_fake_mnist(str(tmp_path / "data"), n_train=100, n_test=50)
    runs = {}
    for label, selection, seed in [("hessian", "hessian", 1111), ("random", "random", 1111),
                                   ("again", "random", 1111), ("other", "random", 2222)]:
        d = str(tmp_path / label)
        os.makedirs(d)
        for mode in ("train1", "train2"):
            assert run_script(SCRIPT, SMALL + ["--data", data, "--model", "hybrid", "--mode", mode, "--seed", seed,
                                               "--ratio", 0.25, "--selection", selection], d) == 0
        runs[label] = kept(d, f"mnist_hybrid_{seed}_0.25")
        log = open(os.path.join(d, "log", f"train_mnist_hybrid_{seed}_0.25.log")).read()
        assert f"selection: {selection}" in log
    counts = lambda picks: {kind: sum(p.startswith(kind) for p, _ in picks) for kind in ("rnn", "snn")}
    assert all(counts(picks) == {"rnn": 12, "snn": 4} for picks in runs.values())  # 16 x 0.75, 16 x 0.25
    assert runs["random"] == runs["again"]
    assert runs["random"] != runs["hessian"] and runs["random"] != runs["other"]


def test_study_files_compile_and_ablation_shares_stage_one(tmp_path):
    folder = os.path.join(ROOT, "studies", "replication")
    for name in ("run.py", "study.py", "compare.py", "selection_probe.py", "mprun-rnn-smnist.py", "mprun-lstm-smnist.py",
                 "mprun-rnn-ptb.py", "mprun-ptb-ffs-macs.py", "mprun-ptb-tradeoff.py", "../run.py", "../families.py", "../verdicts.py", "../budget.py",
                 "../tradeoff.py"):
        with open(os.path.join(folder, name)) as f:
            compile(f.read(), name, "exec")
    share_stage1 = runpy.run_path(os.path.join(folder, "study.py"))["share_stage1"]
    source, target = tmp_path / "rnn-smnist", tmp_path / "rnn-smnist-random-selection"
    for f in ("checkpoint/mnist_hybrid_1111.t7", "log/train_mnist_rnn_1111.log", "log/train_mnist_ffs_1111_0.5.log",
              "log/train_mnist_hybrid_1111.log", "log/train_mnist_hybrid_1111_0.5.log"):
        (source / f).parent.mkdir(parents=True, exist_ok=True)
        (source / f).write_text(f)
    share_stage1(str(source), str(target), "mnist", [1111])
    shared = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert shared == ["checkpoint/mnist_hybrid_1111.t7", "log/train_mnist_ffs_1111_0.5.log",
                      "log/train_mnist_hybrid_1111.log", "log/train_mnist_rnn_1111.log"]  # not the train2 log
    assert (target / "log/train_mnist_rnn_1111.log").read_text() == "log/train_mnist_rnn_1111.log"


def test_criteria_study_files_compile_link_adaptation_and_analysis_counts_only_finished_runs(tmp_path):
    folder = os.path.join(ROOT, "studies", "criteria")
    for name in ("run.py", "study.py", "analysis.py", "no_retraining.py", "mprun-adaptation.py", "mprun-criteria.py",
                 "mprun-ffs.py", "mprun-ffs-macs.py", "mprun-w800.py", "mprun-tradeoff.py"):
        with open(os.path.join(folder, name)) as f:
            compile(f.read(), name, "exec")
    study = runpy.run_path(os.path.join(folder, "study.py"))
    assert study["criterion_flags"]("random-2") == {"selection": "random", "selection_draw": 2}
    assert study["criterion_flags"]("taylor") == {"selection": "taylor"}
    source, target = tmp_path / "w60", tmp_path / "w60-taylor"
    for f in ("checkpoint/mnist_hybrid_1111.t7", "log/train_mnist_hybrid_1111.log", "log/train_mnist_hybrid_1111.json"):
        (source / f).parent.mkdir(parents=True, exist_ok=True)
        (source / f).write_text(f)
    study["link_adaptation"](str(source), str(target), [1111])
    assert (target / "log/train_mnist_hybrid_1111.json").read_text() == "log/train_mnist_hybrid_1111.json"
    assert os.path.islink(target / "checkpoint/mnist_hybrid_1111.t7")

    def log(folder, name, acc=None, status=None):
        path = tmp_path / "logs" / folder
        path.mkdir(parents=True, exist_ok=True)
        block = "" if acc is None else f"{'=' * 83}\n| Performance on Test Set | test loss 0.50000 | test acc {acc:.5f}\n{'=' * 83}\n"
        (path / f"train_{name}.log").write_text("| end of epoch   1 | ...\n" + block)
        if status:
            (path / f"train_{name}.json").write_text(json.dumps({"status": status}))
    hessian, random0, random1 = [80.0, 82.0, 85.0], [79.0, 80.0, 86.0], [77.0, 80.0, 84.0]
    for i, seed in enumerate((1111, 2222, 3333)):
        log("w60-hessian", f"mnist_hybrid_{seed}_0.5", hessian[i], "finished")
        log("w60-random-0", f"mnist_hybrid_{seed}_0.5", random0[i])
        log("w60-random-1", f"mnist_hybrid_{seed}_0.5", random1[i])
    log("w60-hessian", "mnist_hybrid_4444_0.5", 99.0, "failed")   # a record that does not say finished
    log("w60-random-0", "mnist_hybrid_4444_0.5")                  # no final test block
    analysis = runpy.run_path(os.path.join(folder, "analysis.py"))
    runs = analysis["read_runs"](str(tmp_path / "logs"))
    assert len(runs) == 9 and ("w60-hessian", "hybrid", 4444, 0.5) not in runs
    acc, _ = analysis["q2"](runs)
    diffs = [h - (a + b) / 2 for h, a, b in zip(hessian, random0, random1)]  # 2.0, 2.0, 0.0
    p = analysis["paired"]([acc[("hessian", 0.5)][s] - acc[("random", 0.5)][s] for s in (1111, 2222, 3333)])
    sd = statistics.stdev(diffs)
    assert p["n"] == 3 and p["mean"] == pytest.approx(4 / 3) and p["pos"] == 2 and p["neg"] == 0
    assert p["half"] == pytest.approx(4.302653 * sd / 3 ** 0.5, rel=1e-5)  # t_0.975 with 2 degrees of freedom
    assert p["p"] == pytest.approx(0.1835, abs=1e-4)  # paired t, 2 degrees of freedom
    analysis["holm"]([p])  # a family of one: the adjusted interval is the raw one
    assert (p["lo_holm"], p["hi_holm"]) == pytest.approx((p["lo"], p["hi"]))
    assert analysis["verdict"](p) == ("not detected", pytest.approx(p["hi"]))
    assert analysis["verdict"](analysis["holm"]([analysis["paired"]([3.0, 3.1, 2.9])])[0], -1)[0] == "contradicted"
    # question 3: the MAC-matched ffs joins criteria-q3 once its runs exist, paired by seed with HSTNN
    tests_q3 = lambda: {(t["a"], t["b"], t["ratio"]): t for t in analysis["tests_q3"](runs, acc)}
    assert not any(b == "ffs (matched MACs)" for _, b, _ in tests_q3())
    for i, seed in enumerate((1111, 2222, 3333)):
        runs[("w60-ffs-macs", "ffs", seed, 0.5)] = hessian[i] - 1.0 - i
    t = tests_q3()[("HSTNN", "ffs (matched MACs)", 0.5)]
    assert t["n"] == 3 and t["mean"] == pytest.approx(2.0) and t["family"] == "criteria-q3"
    assert ("HSTNN with random selection", "ffs (matched MACs)", 0.5) in tests_q3()
    assert ("HSTNN", "ffs (matched MACs)", 0.25) not in tests_q3()  # no runs at that ratio


def test_replication_compare_pairs_seeds_and_states_the_t_interval(tmp_path):
    def log(name, *ppls, folder="rnn-ptb-real"):
        path = tmp_path / "runs" / folder / "log"
        path.mkdir(parents=True, exist_ok=True)
        blocks = "".join(f"| Performance on Test Set | test loss 6.00 | test ppl {p:8.2f}\n" for p in ppls)
        (path / f"train_ptb_{name}.log").write_text("| end of epoch   1 | ...\n" + blocks)
    hstnn, ffs = [300.0, 310.0, 290.0], [320.0, 311.0, 300.0]
    for i, seed in enumerate((1111, 2222, 3333)):
        log(f"rnn_{seed}", 400.0)
        log(f"snn_{seed}", 500.0)
        log(f"ffs_{seed}_0.5", ffs[i])
        log(f"hybrid_{seed}_0.5", 280.0, 900.0, hstnn[i])   # redundant, selected, restored
    log("hybrid_4444_0.5", 280.0, 900.0)                    # Restoration unfinished: not paired
    log("ffs_4444_0.5", 305.0)
    for seed, ppl in ((1111, 295.0), (2222, 300.0), (3333, 301.0)):   # ffs given HSTNN's epochs
        log(f"ffs_{seed}_0.5", ppl, folder="rnn-ptb-real-ffs-matched")
        log(f"ffs_{seed}_0.5", ppl - 10, folder="rnn-ptb-real-ffs-macs-lr")  # matched MACs, HSTNN's schedule
        log(f"rnn_{seed}", 1.0, folder="rnn-ptb-real-tradeoff")              # the trade-off's runs: no experiment
    shown = tmp_path / "writeup.md"  # a table of a budget without runs (any more) empties; one with runs fills
    shown.write_text("".join(f"<!-- begin generated: replication-rnn-ptb-real-{k} -->\n| stale |\n"
                             f"<!-- end generated: replication-rnn-ptb-real-{k} -->\n" for k in ("ffs-matched-lr", "ffs-macs-lr")))
    subprocess.run([sys.executable, os.path.join(ROOT, "studies", "replication", "compare.py"), "--runs",
                    str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--writeup", str(shown)], check=True,
                   capture_output=True)
    filled = writeup.blocks(shown.read_text())
    assert filled["replication-rnn-ptb-real-ffs-matched-lr"] == "" and "| 0.5 | 300.00" in filled[
        "replication-rnn-ptb-real-ffs-macs-lr"]
    text = (tmp_path / "out" / "comparisons.md").read_text()
    diffs = [f - h for h, f in zip(hstnn, ffs)]  # perplexity: > 0 means HSTNN is better; 20, 1, 10
    half = 4.302653 * statistics.stdev(diffs) / 3 ** 0.5
    mean = statistics.fmean(diffs)
    assert f"| 0.5 | +20.00, +1.00, +10.00 | {mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}] |" in text
    assert "| 0.5 | 300.00 ± 8.16 | 298.67 ± 2.62 | -5.00, -10.00, +11.00 | -1.33 [-28.58, +25.92] |" in text
    assert "| 0.5 | 300.00 ± 8.16 | 288.67 ± 2.62 | -15.00, -20.00, +1.00 | -11.33 [-38.58, +15.92] |" in text
    assert "rnn-ptb-real-ffs-macs-lr: as many epochs as make its training multiply-accumulates HSTNN's; on HSTNN's " \
        "learning-rate schedule" in text
    assert text.count("### ") == 1  # the matched ffs folders and the trade-off's are not experiments of their own
    row = next(line for line in text.splitlines() if line.startswith("| 0.5 | 300.00"))
    assert row.count("(3/3 seeds)") == 2  # seed 4444 has no restored network, so it is not paired


def criteria_study_module(name, tmp_path, calls):
    """A file of studies/criteria run with its study.py, whose launcher records each multi_task call."""
    folder = os.path.join(ROOT, "studies", "criteria")
    study = runpy.run_path(os.path.join(folder, "study.py"))

    class Recorder:
        def multi_task(self, path, params):
            calls.append((os.path.basename(path), params))

        def finish(self):
            pass

    def run_folder(name):
        (tmp_path / name).mkdir(exist_ok=True)
        return str(tmp_path / name)
    fake = types.ModuleType("study")
    fake.__dict__.update(study, launcher=Recorder, need=lambda path: None, folder=run_folder)
    sys.modules["study"] = fake
    try:
        runpy.run_path(os.path.join(folder, name), run_name="__main__")
    finally:
        del sys.modules["study"]
    return study


def test_width_800_runs_seed_by_seed_adaptation_then_question_2_and_is_not_in_the_other_adaptations(tmp_path):
    calls = []
    study = criteria_study_module("mprun-w800.py", tmp_path, calls)
    seeds = study["WIDTH_SEEDS"][800]
    assert study["WIDE"] == 800 and 800 in study["WIDTHS"] and len(seeds) >= 5 and study["ORACLE_NEURONS"][800] >= 400
    expected = [(folder, seed) for seed in seeds for folder in ("w800", "w800-hessian", "w800-random-0", "w800-reversed")]
    assert [(folder, params["seed"][0]) for folder, params in calls] == expected
    for folder, params in calls:
        assert params["nhid"] == 800 and params["threads"] == 1 and len(params["seed"]) == 1
        assert params["stage1_lr"] == params["stage2_lr"] == study["WIDE_LR"]
        if folder == "w800":
            assert params["mode"] == "train1" and params["stage1_epochs"] == study["ADAPTATION_EPOCHS"]
        else:
            assert params["mode"] == "train2" and params["ratio"] == 0.5 and params["stage2_epochs"] == study["RESTORATION_EPOCHS"]
            assert params["selection"] == folder.split("-")[1]
            assert params.get("selection_draw") == (0 if folder.endswith("random-0") else None)
    assert os.readlink(tmp_path / "w800-reversed" / "checkpoint" / f"mnist_hybrid_{seeds[-1]}.t7") == \
        f"../../w800/checkpoint/mnist_hybrid_{seeds[-1]}.t7"
    calls.clear()
    criteria_study_module("mprun-adaptation.py", tmp_path, calls)
    assert [p["nhid"] for _, p in calls] == [w for w in study["WIDTHS"] if w != 800]


def test_no_retraining_oracle_on_a_stratified_subset_batched_equals_the_definition(tmp_path):
    import torch
    sys.path.insert(0, os.path.join(ROOT, "studies", "criteria"))
    try:
        no_retraining = runpy.run_path(os.path.join(ROOT, "studies", "criteria", "no_retraining.py"), run_name="test")
    finally:
        sys.path.remove(os.path.join(ROOT, "studies", "criteria"))
    from common.criteria import oracle, oracle_subset
    script = runpy.run_path(SCRIPT, run_name="test")
    torch.manual_seed(0)
    model = script["SMNISTModel"]([5, 5], [5, 5])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(("snn_", "rnn_")):
                p.mul_(3.0)
    path = str(tmp_path / "adapted.t7")
    torch.save(dict(net=model.state_dict(), rnn_shape=[5, 5], snn_shape=[5, 5], cell="rnn"), path)
    g = torch.Generator().manual_seed(1)
    batch = lambda n: (torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g))
    data = {"trace": batch(20), "val": [batch(10), batch(10)], "test": [batch(10)]}
    rows, losses = no_retraining["rows_for"](script, path, 1111, [0.5], 2, 4, data, oracle_neurons=3)
    scored = oracle_subset(model.population_sizes(), 3, 1111)
    assert {k: sorted(v) for k, v in losses.items()} == scored
    definition = oracle(model, lambda m: script["evaluate"](m, data["val"], "cpu")[1])
    for key, per in losses.items():
        assert list(per.values()) == pytest.approx(definition[key][scored[key]].tolist(), abs=2e-6)
    values = {(c, r, m): v for c, r, m, v in rows}
    assert all(values[("oracle", "", f"scored_{k}")] == 3 for k in scored)
    assert not any(c == "oracle" and r != "" for c, r, _, _ in rows)  # a subset ranks no network
    assert {m for c, _, m, _ in rows if c == "hessian" and m.startswith("spearman_oracle_")} == \
        {f"spearman_oracle_{k}" for k in scored}
    rows, losses = no_retraining["rows_for"](script, path, 1111, [0.5], 2, 4, data)  # default: every neuron
    assert ("oracle", 0.5, "test_acc") in {(c, r, m) for c, r, m, _ in rows}
    assert all(len(per) == 5 for per in losses.values())


def test_tradeoff_reads_cost_and_robust_records_and_gives_its_claims_verdicts(tmp_path):
    """studies/tradeoff.py on synthetic evaluate.py records (PTB layout): per-seed slopes, HSTNN − ffs tests with
    Holm, the Pareto words, and 'untested' with the missing records named where none exist."""
    tradeoff = runpy.run_path(os.path.join(ROOT, "studies", "tradeoff.py"))
    logs = tmp_path / "replication" / "rnn-ptb-real-tradeoff" / "logs"
    logs.mkdir(parents=True)
    first = tmp_path / "replication" / "rnn-ptb-real" / "logs"  # the study's first runs, checkpoints not kept
    first.mkdir(parents=True)
    ratios, seeds = (0.1, 0.3, 0.5, 0.7, 0.9), (1111, 2222, 3333)

    def record(name, ppl, energy, noise_auc, folder=logs, measured=None):
        (folder / f"train_{name}.log").write_text("| end of epoch   1 | valid ppl 1.0\n")
        run = dict(status="finished", name=name, value=ppl, checkpoint=dict(sha256=f"sha-of-{name}"))
        (folder / f"train_{name}.json").write_text(json.dumps(dict(run, digest=record_digest(run))))
        bound = dict(checkpoint_sha256=measured or f"sha-of-{name}")
        (folder / f"cost_{name}.json").write_text(json.dumps(dict(
            bound, kind="cost", convention="standard", metric=ppl, macs=energy / 4.6, acs=1.0, energy_pj=energy,
            firing_rate={"snn1": 0.1})))
        (folder / f"robust_{name}.json").write_text(json.dumps(dict(
            bound, kind="robust", clean=ppl, perturbations={"input_noise": {"strengths": [0.1], "values": [noise_auc],
                                                                             "auc": noise_auc}})))
    for i, seed in enumerate(seeds):
        for ratio in ratios:   # more SNN: cheaper and worse; HSTNN better and no dearer than ffs
            record(f"ptb_hybrid_{seed}_{ratio}", 300 + 50 * ratio + i, 1000 - 800 * ratio + 3 * i, 400 + i)
            record(f"ptb_ffs_{seed}_{ratio}", 340 + 50 * ratio + 2 * i, 1000 - 800 * ratio + 4 * i, 420 + i)
        record(f"ptb_rnn_{seed}", 390 + i, 1100 + i, 450)
        record(f"ptb_snn_{seed}", 500 + 5 * i, 150 + i, 600)
    record("ptb_rnn_4444", 1.0, 1.0, 1.0, measured="sha-of-another-checkpoint")  # not bound to its run: left out
    record("ptb_hybrid_1111_0.5", 326.0, 1.0, 1.0, folder=first)  # its repeat's test number is 325
    criteria = tmp_path / "criteria" / "logs"
    for folder in ("tradeoff-w60-hessian", "w60-hessian"):  # a run repeated with its checkpoint kept, and its first run
        (criteria / folder).mkdir(parents=True)
        record("mnist_hybrid_1111_0.5", 88.5, 100.0, 80.0, folder=criteria / folder)
    text, rows, tests, points = tradeoff["summarize"](str(tmp_path))
    ptb = {r["claim"].split(" (")[0]: r for r in rows if r["evidence"].startswith("PTB")}
    energy = ptb["raising the SNN ratio lowers the inference energy"]
    assert energy["verdict"] == "supported" and energy["numbers"].startswith("-800 [")
    accuracy = next(r for c, r in ptb.items() if c.startswith("… at a cost in accuracy"))
    assert accuracy["verdict"] == "supported" and "energy per point of metric: -16 pJ" in accuracy["numbers"]
    front = next(r for c, r in ptb.items() if c.startswith("HSTNN is on or beyond"))["verdict"]
    assert front.startswith("ratio 0.1: beyond ffs, beyond pure RNN, on (no dominance detected) pure SNN")
    vs_ffs = [t for t in tests if t["b"] == "ffs" and t["what"] == "metric" and t["setup"].startswith("PTB")]
    assert len(vs_ffs) == 5 and all(t["mean"] == pytest.approx(40 + 1) for t in vs_ffs)  # perplexity, negated
    assert all(t["m"] == len([u for u in tests if u["setup"] == t["setup"] and u["n"] > 1]) for t in vs_ffs)
    assert "auc_input_noise" in {t["what"] for t in tests}
    assert "| pure RNN |  | 3 | 391 [" in text  # seed 4444 left out, and said so:
    assert "replication/rnn-ptb-real-tradeoff/logs/train_ptb_rnn_4444: its cost and robust record measured another checkpoint" in text
    smnist = [r for r in rows if r["evidence"].startswith("S-MNIST")]
    assert smnist[0]["verdict"].startswith("untested: no cost or robustness record of ffs, pure RNN, pure SNN, random pick")
    assert all("untested" in r["verdict"] and "supported" not in r["verdict"] for r in smnist)
    assert "1 of the 1 runs evaluated here repeat the test number of the study's first run of the same flags and seed " \
        "(questions 2 and 3): the same runs" in text
    assert "0 of the 1 runs evaluated here repeat the test number of the study's first run of the same flags and seed " \
        "(mprun-rnn-ptb.py)." in text
    assert "| HSTNN | 0.5 | 3 | 326 [" in text and "robustness: input_noise" in text


def test_question_one_takes_any_width_into_its_families(tmp_path):
    """Rows of a new width (800) in no-retraining.csv join every Q1 table and family; Holm counts them."""
    analysis = runpy.run_path(os.path.join(ROOT, "studies", "criteria", "analysis.py"))
    rows = [("width", "seed", "criterion", "ratio", "metric", "value")]
    for width in (60, 800):
        for i, seed in enumerate((1111, 2222, 3333)):
            rows.append((width, seed, "redundant", "", "test_acc", 85.0))
            for c, acc in (("hessian", 30.0), ("reversed", 25.0), ("magnitude", 26.0), ("trace", 29.0),
                           ("taylor", 31.0), ("oracle", 28.0), ("random-0", 40.0), ("random-1", 42.0)):
                for ratio in ("0.25", "0.5", "0.75"):
                    rows.append((width, seed, c, ratio, "test_acc", acc + i * (1 + (c == "hessian"))))
                for pop in ("rnn1", "rnn2", "snn1", "snn2"):
                    rows.append((width, seed, c, "", f"spearman_oracle_{pop}", 0.3 + 0.01 * i - 0.2 * (width == 800)))
                    rows.append((width, seed, c, "", f"spearman_probe_halves_{pop}", 0.6))
    path = tmp_path / "no-retraining.csv"
    path.write_text("\n".join(",".join(map(str, r)) for r in rows) + "\n")
    data = analysis["read_q1"](str(path))
    tests = analysis["tests_q1"](data, {60: "val", 800: "val"})
    for name in ("criteria-q1-random", "criteria-q1-criteria", "criteria-q1-oracle-pick", "criteria-q1-agreement"):
        analysis["holm"]([t for t in tests if t["family"] == name])
    random = [t for t in tests if t["family"] == "criteria-q1-random"]
    assert sorted({t["width"] for t in random}) == [60, 800] and all(t["m"] == 6 for t in random)
    assert all(t["mean"] == pytest.approx(30 + 1 - 41) for t in random)  # Hessian − the mean of the draws, every seed
    lines, spear, blocks = analysis["table_q1"](data, tests)
    assert "| 800 | 0.5 | Hessian − random | -10.00 [" in blocks["criteria-q1-paired"]
    assert "| 800 | rnn1 |" in blocks["criteria-q1-agreement"] and (800, "hessian", "spearman_oracle_") in spear


def test_oracle_cost_per_scored_neuron_from_the_records_and_the_bench(tmp_path):
    analysis = runpy.run_path(os.path.join(ROOT, "studies", "criteria", "analysis.py"))
    rows = [("width", "seed", "criterion", "ratio", "metric", "value")]
    for seed, cpu in ((1111, 40.0), (2222, 80.0)):
        rows += [(30, seed, "oracle", "", f"scored_{k}", 10) for k in ("rnn1", "rnn2", "snn1", "snn2")]
        rows.append((30, seed, "oracle", "", "cpu_s", cpu))
    path = tmp_path / "no-retraining.csv"
    path.write_text("\n".join(",".join(map(str, r)) for r in rows) + "\n")
    bench = tmp_path / "ORACLE.json"
    bench.write_text(json.dumps({"rows": [
        {"width": 800, "population": "snn1", "neurons": 2, "one_at_a_time_s": 3.0, "batched_s": 1.0},
        {"width": 800, "population": "rnn1", "neurons": 6, "one_at_a_time_s": 3.0, "batched_s": 2.0}]}))
    lines, blocks = analysis["table_oracle_cost"](analysis["read_q1"](str(path)), str(bench))
    table = blocks["criteria-oracle-cost"].splitlines()
    assert table[2] == "| 30 | 2 | 40 | 1.500 [1.000, 2.000] | – | – | – |"  # 40 and 80 CPU-s over 40 neurons
    assert table[3] == "| 800 | 0 | – | – | 3.000 | 1.750 | 1.71× |"      # weighted by the neurons per population
    assert analysis["table_oracle_cost"](analysis["read_q1"](str(path)), str(tmp_path / "none.json"))[1][
        "criteria-oracle-cost"].splitlines()[2].endswith("| – | – | – |")


def test_budget_counts_training_macs_from_the_shapes_and_the_logged_kept_counts(tmp_path):
    budget = runpy.run_path(os.path.join(ROOT, "studies", "budget.py"))
    # layer 1: 3 inputs -> 1 SNN + 2 RNN, 2 x 2 recurrent; layer 2: 3 -> 3, 2 x 2; 4 steps; readout 3 x 5 once
    assert budget["forward_macs"]([2, 2], [1, 1], 3, 4, 5, False) == 4 * (3 * 3 + 4 + 3 * 3 + 4) + 3 * 5
    assert budget["forward_macs"]([2, 2], [1, 1], 3, 4, 5, True) == 4 * (3 * 3 + 4 + 3 * 3 + 4 + 3 * 5)
    logs = tmp_path / "criteria" / "logs" / "w60-hessian"
    logs.mkdir(parents=True)
    for seed, rnn0 in ((1111, 39), (2222, 21)):   # the kept counts a Selection logs, per layer and type
        (logs / f"train_mnist_hybrid_{seed}_0.5.log").write_text(
            f"rnn_layer[0]: {rnn0}\nrnn_layer[1]: {60 - rnn0}\nsnn_layer[0]: 30\nsnn_layer[1]: 30\n")
    rows = budget["budget_rows"](str(tmp_path))
    assert [(r["dataset"][:7], r["ratio"]) for r in rows] == [("S-MNIST", 0.5)]
    r = rows[0]
    mac = lambda rnn, snn: budget["forward_macs"](rnn, snn, 28, 28, 10, False)
    assert r["adaptation_macs"] == mac([60, 60], [60, 60]) and r["ffs_macs"] == mac([30, 30], [30, 30])
    assert r["restoration_macs"] == pytest.approx((mac([39, 21], [30, 30]) + mac([21, 39], [30, 30])) / 2)
    assert r["mac_matched_epochs"] == -(-(15 * r["adaptation_macs"] + 8 * r["restoration_macs"]) // r["ffs_macs"])
    assert r["mac_matched_runs"].startswith("not run: python studies/criteria/mprun-ffs-macs.py")


def test_one_command_without_data_stops_in_one_line_before_any_work(tmp_path):
    done = subprocess.run([sys.executable, os.path.join(ROOT, "studies", "run.py"), "--data-root", str(tmp_path / "nowhere")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "--data-root" in done.stderr and "--aggregate-only" in done.stderr


def test_replication_copies_the_logs_of_ended_runs_only(tmp_path, monkeypatch):
    """run.py's aggregate(): a run still running or interrupted (no completion record) stays out of results/."""
    folder = os.path.join(ROOT, "studies", "replication")
    for name in ("study", "compare"):  # another study's module of that name, imported by an earlier test
        monkeypatch.delitem(sys.modules, name, raising=False)
    sys.path.insert(0, folder)
    try:
        run = runpy.run_path(os.path.join(folder, "run.py"))
    finally:
        sys.path.remove(folder)
    log = tmp_path / "runs" / "rnn-ptb-real-ffs-macs-lr" / "log"
    log.mkdir(parents=True)
    (log / "train_ptb_ffs_1111_0.1.log").write_text("| Performance on Test Set | test loss 6.00 | test ppl 300.00\n")
    (log / "train_ptb_ffs_1111_0.1.json").write_text(json.dumps({"status": "finished"}))
    (log / "train_ptb_ffs_2222_0.1.log").write_text("| epoch   1 |   200/  663 batches\n")  # still training
    run["aggregate"].__globals__.update(RUNS=str(tmp_path / "runs"), RESULTS=str(tmp_path / "results"))
    run["aggregate"]("rnn-ptb-real-ffs-macs-lr")
    assert sorted(os.listdir(tmp_path / "results" / "rnn-ptb-real-ffs-macs-lr" / "logs")) == \
        ["train_ptb_ffs_1111_0.1.json", "train_ptb_ffs_1111_0.1.log"]
