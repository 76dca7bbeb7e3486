"""The PTB experiment end to end: every model and mode, resume, errors, and the authors' checkpoints."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT, SHARED_DATA, ptb_text, real_data_missing, run_script, write_corpus

SCRIPT = os.path.join(ROOT, "experiments", "rnn-ptb-650-0.5-0.6", "rnn-ptb.py")
SMALL = ["--nhid", 8, "--emsize", 8, "--bptt", 6, "--batch_size", 4, "--log-interval", 20, "--device", "cpu",
         "--stage1_epochs", 2, "--stage2_epochs", 1, "--hessian_probes", 8]


def last_ppl(log):
    lines = open(log).read().splitlines()
    assert lines[-3] == "=" * 89 and lines[-1] == "=" * 89, lines[-3:]
    assert lines[-2].startswith("| Performance on Test Set | test loss")
    return float(lines[-2].split()[-1])


def run(cwd, *args):
    return run_script(SCRIPT, SMALL + [str(a) for a in args], cwd)


def test_every_model_and_mode(tmp_path, corpus):
    d = str(tmp_path)
    for model, extra in [("rnn", []), ("snn", []), ("ffs", ["--ratio", 0.5]), ("hybrid", [])]:
        assert run(d, "--data", corpus, "--model", model, "--mode", "train1", *extra) == 0
        assert run(d, "--data", corpus, "--model", model, "--mode", "test1", *extra) == 0
    for name in ["ptb_rnn_1111", "ptb_snn_1111", "ptb_ffs_1111_0.5", "ptb_hybrid_1111"]:
        trained, tested = last_ppl(f"{d}/log/train_{name}.log"), last_ppl(f"{d}/log/test_{name}.log")
        assert trained == tested and 1 < trained < 60  # 40-word vocabulary
        assert not os.path.exists(f"{d}/checkpoint/{name}.resume.t7")
    ckpt = torch.load(f"{d}/checkpoint/ptb_ffs_1111_0.5.t7", weights_only=True)
    assert ckpt["rnn_shape"] == [4, 4] and ckpt["snn_shape"] == [4, 4] and len(ckpt["val_loss_record"]) >= 1
    assert {"net", "seed", "rnn_shape", "snn_shape", "ntoken", "ninp", "snn_func", "val_loss_record"} <= set(ckpt)
    log = open(f"{d}/log/train_ptb_ffs_1111_0.5.log").read()
    assert "model with rnn_shape: [  4,   4]" in log and "| end of epoch   2 |" in log

    assert run(d, "--data", corpus, "--model", "hybrid", "--mode", "train2", "--ratio", 0.25) == 0
    assert run(d, "--data", corpus, "--model", "hybrid", "--mode", "test2", "--ratio", 0.25) == 0
    assert last_ppl(f"{d}/log/train_ptb_hybrid_1111_0.25.log") == last_ppl(f"{d}/log/test_ptb_hybrid_1111_0.25.log")
    lines = open(f"{d}/log/train_ptb_hybrid_1111_0.25.log").read().splitlines()
    counts = {l.split(":")[0]: int(l.split(":")[1]) for l in lines if "_layer[" in l}
    assert counts["rnn_layer[0]"] + counts["rnn_layer[1]"] == 12 and counts["snn_layer[0]"] + counts["snn_layer[1]"] == 4
    assert sum(l.startswith("| Performance on Test Set") for l in lines) == 3  # full, selected, restored
    small = torch.load(f"{d}/checkpoint/ptb_hybrid_1111_0.25.t7", weights_only=True)
    assert [small["rnn_shape"][0], small["snn_shape"][0]] == [counts["rnn_layer[0]"], counts["snn_layer[0]"]]
    table = open(f"{d}/traces/ptb_hybrid_1111_0.25_importance.csv").read().splitlines()
    assert table[0].startswith("param,neuron,trace,importance,kept,") and len(table) == 1 + 32
    assert sum(int(r.split(",")[4]) for r in table[1:]) == 16  # the kept column
    traces = [f for f in os.listdir(f"{d}/traces") if f.startswith("trace_ptb_hybrid_1111_")]
    assert len(traces) == 1
    # a second ratio of the same seed reuses the cached traces (same checkpoint, batch, probes, RNG)
    assert run(d, "--data", corpus, "--model", "hybrid", "--mode", "train2", "--ratio", 0.5) == 0
    assert "using cached Hessian traces" in open(f"{d}/log/train_ptb_hybrid_1111_0.5.log").read()


def test_epoch_time_covers_training_and_validation(tmp_path, corpus):
    # as the original: the end-of-epoch time starts before the epoch's first batch
    d = str(tmp_path)
    assert run(d, "--data", corpus, "--model", "rnn", "--stage1_epochs", 1, "--log-interval", 1) == 0
    lines = open(f"{d}/log/train_ptb_rnn_1111.log").read().splitlines()
    batches = [float(l.split("|")[3].split()[0]) for l in lines if l.startswith("| epoch   1 |")]
    epoch = next(float(l.split("time:")[1].split("s")[0]) for l in lines if l.startswith("| end of epoch   1 |"))
    assert len(batches) > 10 and epoch >= sum(batches) / 1000 - 0.011  # printed with 2 decimals


def test_ffs_on_hstnn_schedule(tmp_path, corpus, capsys):
    """--ffs_schedule hstnn: stage 1's epochs at its rate, then stage 2's epochs at Restoration's rate and decay."""
    d = str(tmp_path)
    flags = ["--data", corpus, "--model", "ffs", "--ratio", 0.5, "--stage1_epochs", 1, "--stage1_lr", 1.0,
             "--stage2_epochs", 3, "--stage2_lr", 0.25, "--stage2_decay", 2, "--ffs_schedule", "hstnn"]
    assert run(d, *flags) == 0
    rates = [float(l.split()[-1]) for l in capsys.readouterr().out.splitlines() if l.startswith("reset optimizer")]
    assert rates == [0.25, 0.25, 0.125, 0.125]
    log = open(f"{d}/log/train_ptb_ffs_1111_0.5.log").read()
    assert "| end of epoch   4 |" in log and "| end of epoch   5 |" not in log
    assert len(torch.load(f"{d}/checkpoint/ptb_ffs_1111_0.5.t7", weights_only=True)["val_loss_record"]) == 4
    assert run(d, "--data", corpus, "--model", "hybrid", "--ffs_schedule", "hstnn") == 2
    assert "--ffs_schedule hstnn: a schedule for ffs training" in capsys.readouterr().err


def test_lstm_cell_and_definition_path(tmp_path, corpus):
    d = str(tmp_path)
    assert run(d, "--data", corpus, "--model", "lstm", "--mode", "train1", "--stage1_epochs", 1) == 0
    assert run(d, "--data", corpus, "--model", "lstm", "--mode", "test1", "--definition") == 0
    assert last_ppl(f"{d}/log/train_ptb_lstm_1111.log") == last_ppl(f"{d}/log/test_ptb_lstm_1111.log")
    assert "lstm_wh2" in torch.load(f"{d}/checkpoint/ptb_lstm_1111.t7", weights_only=True)["net"]


def test_errors_are_clear_messages(tmp_path, corpus, capsys):
    d = str(tmp_path)
    cases = [
        (["--data", str(tmp_path / "nowhere"), "--model", "rnn"], "does not exist. Put the standard Mikolov PTB files"),
        (["--data", str(tmp_path), "--model", "rnn"], "missing ptb.train.txt, ptb.valid.txt, ptb.test.txt"),
        (["--data", corpus, "--model", "hybrid", "--mode", "train2"], "train2 (ratio 0.5) needs the checkpoint checkpoint/ptb_hybrid_1111.t7"),
        (["--data", corpus, "--model", "rnn", "--mode", "test1"], "python rnn-ptb.py --model rnn --mode train1 --seed 1111"),
        (["--data", corpus, "--model", "ffs", "--ratio", 1.2], "--ratio must lie strictly between 0 and 1"),
        (["--data", corpus, "--model", "hybrid", "--mode", "test2", "--ratio", 0], "--ratio must lie strictly between 0 and 1"),
        (["--data", corpus, "--model", "rnn", "--mode", "train2"], "Selection/Restoration stage of --model hybrid only"),
        (["--data", corpus, "--model", "ffs", "--ratio", 0.3], "8 x 0.3 = 2.4 is not a whole number of neurons"),
    ]
    for args, message in cases:
        assert run(d, *args) == 2, args
        assert message in capsys.readouterr().err
    for args in (["--model", "gru"], ["--mode", "train3"]):  # argparse's own message and exit code 2
        assert run(d, "--data", corpus, *args) == 2
        assert "invalid choice" in capsys.readouterr().err

    os.makedirs(f"{d}/checkpoint", exist_ok=True)
    open(f"{d}/checkpoint/ptb_rnn_1111.t7", "wb").write(b"not a checkpoint")
    assert run(d, "--data", corpus, "--model", "rnn", "--mode", "test1") == 2
    assert "cannot read checkpoint checkpoint/ptb_rnn_1111.t7" in capsys.readouterr().err
    assert run(d, "--data", corpus, "--model", "rnn", "--mode", "train1") == 2
    assert "already holds a checkpoint from an earlier run (finished or not" in capsys.readouterr().err
    assert run(d, "--data", corpus, "--model", "rnn", "--mode", "train1", "--stage1_epochs", 1, "--overwrite") == 0
    assert any(f.startswith("ptb_rnn_1111.replaced-") for f in os.listdir(f"{d}/checkpoint"))  # kept, not lost
    ckpt = torch.load(f"{d}/checkpoint/ptb_rnn_1111.t7", weights_only=True)
    ckpt["rnn_shape"] = [9, 9]
    torch.save(ckpt, f"{d}/checkpoint/ptb_rnn_1111.t7")
    assert run(d, "--data", corpus, "--model", "rnn", "--mode", "test1") == 2
    assert "does not fit the model built from its own shapes" in capsys.readouterr().err


def reference_test_ppl(state, corpus_dir, bsz, bptt):
    """An independent evaluation of an authors'-format checkpoint: the published recurrence written
    out directly (no kit code), with the test formula sum(len * CE) / (len(test) - 1)."""
    from common.data.ptb import Corpus, batchify
    corpus = Corpus(corpus_dir)
    data = batchify(corpus.test, bsz, "cpu")
    w = state["net"]
    s0, s1 = state["snn_shape"]
    r0, r1 = state["rnn_shape"]
    h1, h2 = torch.zeros(bsz, r0), torch.zeros(bsz, r1)
    total = 0.0
    for i in range(0, data.size(0) - 1, bptt):
        L = min(bptt, len(data) - 1 - i)
        x, y = data[i:i + L], data[i + 1:i + 1 + L].reshape(-1)
        m1 = sp1 = torch.zeros(bsz, s0)
        m2 = sp2 = torch.zeros(bsz, s1)
        outs = []
        for t in range(L):
            e = w["encoder.weight"][x[t]]
            m1 = m1 * (1 - sp1) * 0.6 + e @ w["snn_fc1"]
            sp1 = (m1 - 0.6 > 0).float()
            h1 = torch.sigmoid(e @ w["rnn_fc1"] + h1 @ w["rnn_fv1"])
            o1 = torch.cat([sp1, h1], 1)
            m2 = m2 * (1 - sp2) * 0.6 + o1 @ w["snn_fc2"]
            sp2 = (m2 - 0.6 > 0).float()
            h2 = torch.sigmoid(o1 @ w["rnn_fc2"] + h2 @ w["rnn_fv2"])
            outs.append(torch.cat([sp2, h2], 1))
        logits = torch.stack(outs).view(L * bsz, -1) @ w["decoder.weight"].t() + w["decoder.bias"]
        total += L * torch.nn.functional.cross_entropy(logits, y).item()
    return math.exp(total / (len(data) - 1))


def test_authors_checkpoint_loads_and_gives_the_same_perplexity(tmp_path, corpus):
    d = str(tmp_path)
    assert run(d, "--data", corpus, "--model", "hybrid", "--mode", "train1", "--stage1_epochs", 1) == 0
    ours = torch.load(f"{d}/checkpoint/ptb_hybrid_1111.t7", weights_only=True)
    # exactly the keys the authors' script saves, in their parameter order, as it would come off the GPU
    names = ["snn_fc1", "snn_fc2", "rnn_fc1", "rnn_fc2", "rnn_fv1", "rnn_fv2", "encoder.weight", "decoder.weight", "decoder.bias"]
    theirs = {"net": {k: ours["net"][k] * 1.5 if k.startswith(("snn", "rnn")) else ours["net"][k] for k in names},
              "seed": 1111, "rnn_shape": [8, 8], "snn_shape": [8, 8], "ntoken": ours["ntoken"], "ninp": 8,
              "snn_func": "window", "val_loss_record": [123.4]}
    os.remove(f"{d}/checkpoint/ptb_hybrid_1111.t7")
    torch.save(theirs, f"{d}/checkpoint/ptb_hybrid_1111.t7")
    assert run(d, "--data", corpus, "--model", "hybrid", "--mode", "test1") == 0
    expected = reference_test_ppl(theirs, corpus, 4, 6)
    assert last_ppl(f"{d}/log/test_ptb_hybrid_1111.log") == float(f"{expected:.2f}")
    # their checkpoint has no completion record of this kit: Selection uses it only when asked, and says so
    assert run(d, "--data", corpus, "--model", "hybrid", "--mode", "train2", "--ratio", 0.5) == 2
    assert run(d, "--data", corpus, "--model", "hybrid", "--mode", "train2", "--ratio", 0.5, "--allow-unfinished") == 0
    assert "although it is not a finished run" in open(f"{d}/log/train_ptb_hybrid_1111_0.5.log").read()
    assert json.load(open(f"{d}/log/train_ptb_hybrid_1111_0.5.json"))["allow_unfinished"] is True


def test_interrupted_training_resumes_to_the_same_model(tmp_path):
    corpus = write_corpus(str(tmp_path / "ptb"), lines=(1500, 60, 60))
    args = [sys.executable, SCRIPT, "--data", corpus, "--model", "hybrid", "--mode", "train1"] + \
           [str(a) for a in SMALL] + ["--stage1_epochs", "4"]
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    straight.mkdir(), broken.mkdir()
    subprocess.run(args, cwd=straight, env=env, check=True, capture_output=True)
    proc = subprocess.Popen(args, cwd=broken, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = broken / "log" / "train_ptb_hybrid_1111.log"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and "| end of epoch   2 |" in log.read_text()):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (broken / "checkpoint" / "ptb_hybrid_1111.resume.t7").exists(), "the run finished before it was killed"
    resumed = subprocess.run(args, cwd=broken, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from checkpoint/ptb_hybrid_1111.resume.t7" in resumed.stdout
    a = torch.load(straight / "checkpoint" / "ptb_hybrid_1111.t7", weights_only=True)
    b = torch.load(broken / "checkpoint" / "ptb_hybrid_1111.t7", weights_only=True)
    assert a["val_loss_record"] == b["val_loss_record"]
    assert all(torch.equal(a["net"][k], b["net"][k]) for k in a["net"])
    assert not (broken / "checkpoint" / "ptb_hybrid_1111.resume.t7").exists()


@pytest.mark.skipif(not all(os.path.exists(os.path.join(SHARED_DATA, "penn-treebank", f"ptb.{s}.txt"))
                            for s in ("train", "valid", "test")),
                    reason=real_data_missing("the Penn Treebank text of Mikolov's release (docs/data.md)",
                                             "penn-treebank/ptb.{train,valid,test}.txt"))
def test_pipeline_on_real_ptb_text(tmp_path):
    """The real training split (its first 3,400 sentences, about as many words as the validation text, to
    stay fast) and the real validation and test splits: most of the real 10,000-word vocabulary."""
    data = tmp_path / "ptb"
    ptb_text(str(data), lines=(3400, None, None))
    d = str(tmp_path)
    real = ["--data", str(data), "--nhid", 16, "--emsize", 16, "--bptt", 35, "--batch_size", 32, "--stage1_epochs", 1,
            "--stage2_epochs", 1, "--hessian_probes", 4, "--device", "cpu", "--stage1_lr", 5, "--log-interval", 50]
    assert run_script(SCRIPT, real + ["--model", "hybrid", "--mode", "train1"], d) == 0
    assert run_script(SCRIPT, real + ["--model", "hybrid", "--mode", "train2", "--ratio", 0.5], d) == 0
    ppl = last_ppl(f"{d}/log/train_ptb_hybrid_1111_0.5.log")
    vocab = len(set(" ".join(open(data / f"ptb.{s}.txt").read() for s in ("train", "valid", "test")).split())) + 1
    assert vocab > 8000  # the real vocabulary (10,000 words with <eos>, less those only in the unused train text)
    assert 50 < ppl < vocab  # it learned something: far better than uniform over the vocabulary
