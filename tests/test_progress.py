"""Progress bars: on stderr for a person at a terminal, never in the logs, stdout or launcher jobs."""
import io
import os
import re
import sys
import types

import pytest
import torch

from common.launch import jobs
from common.hessian import hutchinson_traces
from common.progress import epoch_bar
from common.training import Checkpoint, get_logger
from conftest import ROOT, run_script
from tiny import tiny_net


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def streams(monkeypatch):
    """Fresh stdout and stderr; call with tty=True to make stderr look like a terminal."""
    monkeypatch.delenv("HSTNN_PROGRESS", raising=False)

    def make(tty):
        out, err = io.StringIO(), (Terminal() if tty else io.StringIO())
        monkeypatch.setattr(sys, "stdout", out)
        monkeypatch.setattr(sys, "stderr", err)
        return out, err
    return make


def train_three_epochs(folder, resume=None):
    """Three epochs of the scripts' loop on a one-weight model, logging one line per epoch as the scripts do."""
    logger = get_logger("train_toy", os.path.join(folder, "log"))
    model = torch.nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    ckpt = Checkpoint(os.path.join(folder, "checkpoint", "toy.t7"), {}, "record", keep="lowest", resume=resume)
    start = ckpt.restore(model, optimizer)
    for epoch in epoch_bar(range(start, 3 + 1)):
        logger.info(f"| end of epoch {epoch:3d} | valid loss {1.0 / epoch:5.2f}")
        ckpt.end_epoch(epoch, 1.0 / epoch)
    ckpt.finish()
    logger.info("done")
    return open(os.path.join(folder, "log", "train_toy.log")).read()


def test_epoch_bar_on_a_terminal_only_and_never_in_the_log(tmp_path, streams):
    out_tty, err_tty = streams(tty=True)
    log_tty = train_three_epochs(str(tmp_path / "tty"))
    out_plain, err_plain = streams(tty=False)
    log_plain = train_three_epochs(str(tmp_path / "plain"))

    expected = "".join(f"| end of epoch {e:3d} | valid loss {1.0 / e:5.2f}\n" for e in (1, 2, 3)) + "done\n"
    assert log_tty == log_plain == expected
    assert out_tty.getvalue() == out_plain.getvalue() == expected  # console lines are written above the bar
    assert "epochs" in err_tty.getvalue() and "0/3 [" in err_tty.getvalue() and "epoch/s" in err_tty.getvalue()
    assert err_plain.getvalue() == ""


def test_resumed_run_starts_its_bar_at_the_finished_epochs(tmp_path, streams):
    _, err = streams(tty=True)
    model = torch.nn.Linear(1, 1)
    from common.training import rng_state
    resume = dict(net=model.state_dict(), optimizer=None, epoch=2, best=0.5, record=[1.0, 0.5], rng=rng_state())
    log = train_three_epochs(str(tmp_path), resume)
    assert log == "| end of epoch   3 | valid loss  0.33\ndone\n"
    assert "2/3 [" in err.getvalue() and "0/3" not in err.getvalue()


def test_hessian_probe_bar_leaves_the_values_unchanged(streams):
    net = tiny_net(ninp=3, rnn=(3, 2), snn=(2, 3))
    x = torch.randn(4, 2, 3, dtype=torch.float64)

    def traces(probe_batch):
        torch.manual_seed(1)
        out, _ = net(x, net.init_hidden(2))
        return hutchinson_traces(out.square().mean(), net.probed_groups(), 7, probe_batch)

    _, err = streams(tty=True)
    shown, shown_batched = traces(1), traces(3)
    _, quiet_err = streams(tty=False)
    quiet = traces(1)
    assert all(torch.equal(shown[k], quiet[k]) for k in quiet)
    assert all(torch.allclose(shown_batched[k], quiet[k]) for k in quiet)
    assert "Hessian probes" in err.getvalue() and "0/7 [" in err.getvalue() and "probe/s" in err.getvalue()
    assert quiet_err.getvalue() == ""


def test_switched_off_by_the_environment_and_by_the_launcher(tmp_path, streams, monkeypatch):
    _, err = streams(tty=True)
    monkeypatch.setenv("HSTNN_PROGRESS", "0")
    train_three_epochs(str(tmp_path))
    assert err.getvalue() == ""
    job = types.SimpleNamespace(profile_path=str(tmp_path / "profile.json"))
    monkeypatch.delenv("HSTNN_PROGRESS")
    assert jobs.job_env(job, None, True)["HSTNN_PROGRESS"] == "0"
    assert jobs.job_env(job, 0, False)["HSTNN_PROGRESS"] == "0"


TIMES = re.compile(r"(time: *|\d+\.\d+ ms/batch|\d+(\.\d+)?s\b)[0-9.]*")


def test_ptb_logs_are_the_same_with_bars(tmp_path, streams, corpus):
    script = os.path.join(ROOT, "experiments", "rnn-ptb-650-0.5-0.6", "rnn-ptb.py")
    small = ["--data", corpus, "--nhid", 6, "--emsize", 6, "--bptt", 6, "--batch_size", 4, "--device", "cpu",
             "--stage1_epochs", 2, "--stage2_epochs", 1, "--hessian_probes", 4, "--model", "hybrid"]
    logs, errs = {}, {}
    for tty in (True, False):
        folder = tmp_path / str(tty)
        folder.mkdir()
        _, err = streams(tty)
        assert run_script(script, small + ["--mode", "train1"], str(folder)) == 0
        assert run_script(script, small + ["--mode", "train2", "--ratio", 0.5], str(folder)) == 0
        logs[tty] = [TIMES.sub("", (folder / "log" / name).read_text())
                     for name in ("train_ptb_hybrid_1111.log", "train_ptb_hybrid_1111_0.5.log")]
        errs[tty] = err.getvalue()
    assert logs[True] == logs[False]
    assert "end of epoch" in logs[True][0] and "\r" not in "".join(logs[True])
    assert "epochs" in errs[True] and "Hessian probes" in errs[True] and errs[False] == ""
