"""Quick runs (--max_batches, --eval_batches): every script trains and evaluates on the batches they allow and
no more, its logs say so, the flags are checked with the others; the stage-1 command that train2 suggests
carries none of the Restoration-only flags; a data error is the only line a failed command prints."""
import json
import math
import os
import re

import pytest
import torch

from common.cli import experiment_parser, load_script, suggested_command
from common.quick import FirstBatches, first_batches, first_chunks
from conftest import ROOT, run_script
from idx import write_fake_mnist
from test_event_pipelines import dvs_root, nmnist_root  # noqa: F401 (fixtures)

PTB = os.path.join(ROOT, "experiments", "rnn-ptb-650-0.5-0.6", "rnn-ptb.py")
SMNIST = os.path.join(ROOT, "experiments", "rnn-smnist-800-0.5-0.6", "rnn-smnist.py")
DVS = os.path.join(ROOT, "experiments", "rcnn-dvs-ges-128-0.5-0.3-0.5", "rcnn-dvs-ges.py")
NMNIST = os.path.join(ROOT, "experiments", "rcnn-nmnist-128-0.25-0.3-0.3", "rcnn-nmnist.py")
PTB_FLAGS = ["--nhid", 6, "--emsize", 5, "--bptt", 5, "--batch_size", 4, "--log-interval", 1, "--stage1_epochs", 2,
             "--stage2_epochs", 1, "--hessian_probes", 2, "--device", "cpu", "--threads", 1]


def progress_totals(log):
    """The batch totals of the progress lines of a log, one per line."""
    return [int(m.group(1)) for m in re.finditer(r"\|\s+\d+/\s*(\d+) batches", open(log).read())]


def test_ptb_quick_run_trains_and_evaluates_on_the_first_chunks(tmp_path, corpus):
    flags = PTB_FLAGS + ["--data", corpus, "--max_batches", 3, "--eval_batches", 2]
    assert run_script(PTB, flags, str(tmp_path)) == 0
    log = tmp_path / "log" / "train_ptb_hybrid_1111.log"
    lines = log.read_text().splitlines()
    assert lines[0] == ("quick run: at most 3 training batches per epoch (--max_batches), at most 2 batches per "
                        "evaluation (--eval_batches); its numbers are not those of the full data")
    assert progress_totals(str(log)) == [3, 3] * 2  # batches 1 and 2 of 3 (batch 0 is never logged), 2 epochs
    # the test block's perplexity is the one of the first 2 chunks of the test split
    script = load_script(PTB, "quick_ptb")
    args = script.parser.parse_args([str(a) for a in flags])
    ckpt = torch.load(tmp_path / "checkpoint" / "ptb_hybrid_1111.t7", weights_only=True)
    data = script.load_data(args, torch.device("cpu"))
    assert data["test"].size(0) == 2 * 5 + 1 and data["train"].size(0) == 3 * 5 + 1
    model = script.model_from_checkpoint(ckpt, "ckpt", args, torch.device("cpu"))
    assert f"test ppl {math.exp(script.evaluate(model, data['test'], args)):8.2f}" in lines[-2]
    record = json.loads((tmp_path / "log" / "train_ptb_hybrid_1111.json").read_text())
    assert record["status"] == "finished" and "--max_batches" in record["argv"]
    assert (record["config"]["max_batches"], record["config"]["eval_batches"]) == (3, 2)
    # a test of the same checkpoint states the limits too; without them the splits are whole
    assert run_script(PTB, flags + ["--mode", "test1"], str(tmp_path)) == 0
    assert (tmp_path / "log" / "test_ptb_hybrid_1111.log").read_text().startswith("quick run: at most 3 training")
    whole = script.load_data(script.parser.parse_args(["--data", corpus, "--batch_size", "4"]), torch.device("cpu"))
    assert whole["test"].size(0) > 11 and first_chunks(whole["test"], None, 5) is whole["test"]
    # the table says that its number is a quick run's
    from common.report import logs as R
    [exp] = R.make_experiments(str(tmp_path))
    cell = R.read_cell(exp, "hybrid", 1111)
    assert cell.raw is not None and cell.notes == ["a quick run (--eval_batches 2, --max_batches 3): not the number "
                                                   "of the full data"]


def test_smnist_quick_run_limits_each_pass(tmp_path):
    data = write_fake_mnist(str(tmp_path / "mnist"), n_train=200, n_test=100)
    flags = ["--data", data, "--nhid", 4, "--batch_size", 20, "--log-interval", 1, "--stage1_epochs", 1, "--device",
             "cpu", "--threads", 1, "--max_batches", 2, "--eval_batches", 1]
    assert run_script(SMNIST, flags, str(tmp_path)) == 0
    log = str(tmp_path / "log" / "train_mnist_hybrid_1111.log")
    assert progress_totals(log) == [2]  # batch 1 of 2 (of the 10 the split holds)
    acc = float(re.search(r"test acc (\S+)", open(log).read().splitlines()[-2]).group(1))
    assert acc * 20 / 100 == pytest.approx(round(acc * 20 / 100))  # a whole number of the 20 images of one batch


def test_first_batches_reshuffle_and_keep_the_loader(tmp_path):
    torch.manual_seed(0)
    dataset = list(range(50))
    loader = torch.utils.data.DataLoader(dataset, batch_size=5, shuffle=True)
    quick = first_batches(loader, 3)
    assert isinstance(quick, FirstBatches) and len(quick) == 3 and quick.dataset is dataset
    one, two = [torch.cat(list(quick)) for _ in range(2)]
    assert len(one) == len(two) == 15 and not torch.equal(one, two)  # each pass a new shuffle, 3 batches
    assert len(first_batches(loader, 99)) == 10 and len(list(first_batches(loader, 99))) == 10
    assert first_batches(loader, None) is loader


def test_nmnist_quick_run_through_all_stages(tmp_path, nmnist_root):  # noqa: F811
    flags = ["--data", os.path.join(nmnist_root, "N-MNIST", "processed"), "--channels", "4,4,4", "--nwin", 3,
             "--batch_size", 25, "--stage1_epochs", 1, "--stage2_epochs", 1, "--log-interval", 1, "--hessian_probes", 2,
             "--hessian_batch", 10, "--device", "cpu", "--threads", 1, "--max_batches", 2, "--eval_batches", 1]
    assert run_script(NMNIST, flags, str(tmp_path)) == 0
    assert run_script(NMNIST, flags + ["--mode", "train2", "--ratio", 0.5], str(tmp_path)) == 0
    for log in ("train_nmnist_hybrid_1111.log", "train_nmnist_hybrid_1111_0.5.log"):
        text = (tmp_path / "log" / log).read_text()
        assert text.startswith("quick run: at most 2 training batches per epoch")
        assert progress_totals(str(tmp_path / "log" / log)) == [2]  # batch 1 of 2 (of the 4 the split holds)
        acc = float(re.search(r"test acc (\S+)", text.splitlines()[-2]).group(1))
        assert acc % 4 == 0  # a whole number of the 25 samples of one test batch


def test_dvs_eval_batches_evaluates_the_first_test_batches(tmp_path, dvs_root):  # noqa: F811
    flags = ["--data", os.path.join(dvs_root, "DvsGesture", "dvs_gestures_events.hdf5"), "--channels", "4,4,4",
             "--nwin", 3, "--ds", 16, "--batch_size", 2, "--test_interval", 1, "--stage1_epochs", 1, "--device", "cpu",
             "--threads", 1, "--eval_batches", 1]
    assert run_script(DVS, flags, str(tmp_path)) == 0
    text = (tmp_path / "log" / "train_dvsGesture_hybrid_1111.log").read_text()
    assert text.startswith("quick run: at most 1 batches per evaluation (--eval_batches)")
    assert float(re.search(r"test acc (\S+)", text.splitlines()[-2]).group(1)) in (0, 50, 100)  # 2 of the 6 gestures


@pytest.mark.parametrize("flag", ["--max_batches", "--eval_batches"])
def test_quick_flags_are_checked_before_the_data(tmp_path, capsys, flag):
    assert run_script(PTB, ["--data", str(tmp_path / "nowhere"), flag, 0], str(tmp_path)) == 2
    out = capsys.readouterr()
    assert out.err.strip() == f"error: {flag} must be at least 1 (got 0)" and out.out == ""


def test_dvs_refuses_max_batches(tmp_path, capsys):
    assert run_script(DVS, ["--data", str(tmp_path / "nowhere"), "--max_batches", 2], str(tmp_path)) == 2
    assert "--max_batches: an epoch of this script is already one mini-batch" in capsys.readouterr().err


def test_a_data_error_is_the_only_line(tmp_path, capsys):
    assert run_script(PTB, ["--data", str(tmp_path / "nowhere")], str(tmp_path)) == 2
    out = capsys.readouterr()
    assert out.out == "" and len(out.err.strip().splitlines()) == 1 and out.err.startswith("error: ")


def test_the_suggested_adaptation_command_leaves_restoration_flags_out():
    parser = experiment_parser("test")
    parser.prog = "rnn-ptb.py"
    argv = ["--model", "hybrid", "--mode", "train2", "--ratio", "0.25", "--stage2_epochs", "5", "--stage2_lr=0.1",
            "--selection", "random", "--selection_draw", "2", "--hessian_probes", "10", "--allow-unfinished",
            "--stage1_epochs", "3", "--data", "my data", "--max_batches", "4"]
    args = parser.parse_args(argv)
    assert suggested_command(parser, args, "train1", "hybrid", argv) == \
        "python rnn-ptb.py --model hybrid --mode train1 --seed 1111 --stage1_epochs 3 --data 'my data' --max_batches 4"
    # re-making a restored model keeps them
    assert suggested_command(parser, args, "train2", argv=argv) == \
        "python rnn-ptb.py --model hybrid --mode train2 --seed 1111 --ratio 0.25 --stage2_epochs 5 --stage2_lr=0.1 " \
        "--selection random --selection_draw 2 --hessian_probes 10 --allow-unfinished --stage1_epochs 3 " \
        "--data 'my data' --max_batches 4"


def test_train2_without_adaptation_suggests_a_clean_train1(tmp_path, corpus, capsys):
    flags = ["--data", corpus, "--mode", "train2", "--stage2_epochs", 3, "--selection", "magnitude", "--nhid", 4]
    assert run_script(PTB, flags, str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.rstrip().endswith(f"Create it first with: python rnn-ptb.py --model hybrid --mode train1 --seed 1111 "
                                 f"--data {corpus} --nhid 4")


# -- evaluate.py and tools/compare-with-authors.py: progress, Ctrl-C, the robustness numbers -----------------
def evaluate(*argv):
    import runpy
    import sys
    old = sys.argv
    sys.argv = ["evaluate.py"] + [str(a) for a in argv]
    try:
        runpy.run_path(os.path.join(ROOT, "evaluate.py"), run_name="__main__")
        return 0
    except SystemExit as e:
        return e.code
    finally:
        sys.argv = old


@pytest.fixture
def ptb_experiment(tmp_path, corpus):
    exp = tmp_path / "rnn-ptb-650-0.5-0.6"
    exp.mkdir()
    (exp / "rnn-ptb.py").write_text(open(PTB).read())
    flags = ["--nhid", 4, "--emsize", 4, "--bptt", 5, "--batch_size", 4, "--device", "cpu", "--stage1_epochs", 1,
             "--data", corpus, "--model", "rnn", "--max_batches", 4]
    assert run_script(str(exp / "rnn-ptb.py"), flags, str(exp)) == 0
    return exp


def test_evaluate_reports_progress_and_the_degradation(ptb_experiment, corpus, capsys):
    flags = ["--data", corpus, "--bptt", 5, "--batch_size", 4, "--device", "cpu", "--eval_batches", 3,
             "--input_noise", "0,0.5,1", "--weight_noise", ""]
    assert evaluate("robust", "--experiment", ptb_experiment, "--model", "rnn", *flags) == 0
    out = capsys.readouterr()
    steps = [re.sub(r"^\[\d+:\d\d\] ", "", line) for line in out.err.splitlines() if not line.startswith("warning")]
    assert "--eval_batches 3 evaluates the first 3 test batches only" in out.err
    assert steps == ["reading the data of rnn-ptb-650-0.5-0.6 (1 checkpoint to consider)",
                     "[1/1] ptb_rnn_1111: loading the checkpoint", "[1/1] ptb_rnn_1111: robust, clean (1/4)",
                     "[1/1] ptb_rnn_1111: robust, input_noise 0 (2/4)", "[1/1] ptb_rnn_1111: robust, input_noise 0.5 (3/4)",
                     "[1/1] ptb_rnn_1111: robust, input_noise 1 (4/4)", "done"]
    result = json.loads((ptb_experiment / "log" / "robust_ptb_rnn_1111.json").read_text())
    p = result["perturbations"]["input_noise"]
    assert p["degradation"] == [v - result["clean"] for v in p["values"]] and p["degradation"][0] == 0
    assert p["mean_degradation"] == pytest.approx((p["degradation"][1] + p["degradation"][2]) / 2)
    assert p["auc"] == pytest.approx((p["values"][0] + 2 * p["values"][1] + p["values"][2]) / 4)  # the mean metric
    assert "mean metric over the tested range" in result["definitions"]["auc"]
    assert f"mean {p['mean_degradation']:+.4g} over the strengths above 0; AUC {p['auc']:.4g} (the mean test ppl " \
           "over the range)" in out.out
    # --eval_batches: the clean number is the perplexity of the first 3 test chunks, as the script's own test1
    assert run_script(str(ptb_experiment / "rnn-ptb.py"), ["--data", corpus, "--bptt", 5, "--batch_size", 4,
                      "--model", "rnn", "--mode", "test1", "--eval_batches", 3], str(ptb_experiment)) == 0
    assert f"{result['clean']:8.2f}" in (ptb_experiment / "log" / "test_ptb_rnn_1111.log").read_text()


def test_evaluate_stops_on_ctrl_c_with_one_line(ptb_experiment, corpus, capsys, monkeypatch):
    import common.perturb

    def interrupt(*a):
        raise KeyboardInterrupt
    monkeypatch.setattr(common.perturb, "generator", interrupt)
    assert evaluate("robust", "--experiment", ptb_experiment, "--model", "rnn", "--data", corpus, "--bptt", 5,
                    "--batch_size", 4, "--device", "cpu") == 130
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "interrupted: the results written so far are kept; the checkpoint being evaluated has none"
    assert not any("Traceback" in line for line in err)


def test_compare_with_authors_says_what_runs_and_stops_on_ctrl_c(tmp_path, capsys, monkeypatch, request):
    import runpy
    import signal
    import sys
    import threading
    import time
    started = tmp_path / "started"
    folder = tmp_path / "clone" / "code" / "rnn-ptb-650-0.5-0.6"
    folder.mkdir(parents=True)
    (folder / "rnn-ptb.py").write_text(f"import time\nopen({str(started)!r}, 'w').close()\ntime.sleep(60)\n")
    data = tmp_path / "ptb"
    data.mkdir()
    for split, n in (("train", 30), ("valid", 5), ("test", 5)):
        (data / f"ptb.{split}.txt").write_text("".join(f" w{i} w{i + 1} \n" for i in range(n)))
    keep = tmp_path / "work"
    tool = runpy.run_path(os.path.join(ROOT, "tools", "compare-with-authors.py"), run_name="compare")
    tool["main"].__globals__["AUTHORS_NEEDS"] = ()  # the stand-in imports nothing

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # even when the suite runs in the background
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))

    def interrupt_once_started():
        for _ in range(600):
            if started.exists():
                return os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
    monkeypatch.setattr(sys, "argv", ["compare-with-authors.py", "--authors", str(tmp_path / "clone"), "--experiment",
                                      "ptb", "--data", str(data), "--lines", "10,2,3", "--keep", str(keep)])
    threading.Thread(target=interrupt_once_started, daemon=True).start()
    began = time.monotonic()
    with pytest.raises(SystemExit) as stop:
        tool["main"]()
    assert stop.value.code == 130 and time.monotonic() - began < 30  # the authors' script was stopped too
    err = capsys.readouterr().err.splitlines()
    assert re.fullmatch(r"\[0:\d\d\] train1: the authors' script runs \(its log: .*train_ptb_hybrid_1111\.log\)", err[1])
    assert err[-1] == f"interrupted: the stages already finished are kept in {keep}: the same command continues"
    assert [len((keep / "data" / "penn-treebank" / f"ptb.{s}.txt").read_text().splitlines())
            for s in ("train", "valid", "test")] == [10, 2, 3]
