"""The epoch loop's Checkpoint (best model, resume point) and the interface every experiment script offers."""
import glob
import inspect
import os

import pytest
import torch

from common.cli import load_script
from common.training import Checkpoint, load_resume, resume_path
from conftest import ROOT

SCRIPTS = sorted(p for p in glob.glob(os.path.join(ROOT, "experiments", "*", "*.py"))
                 if not os.path.basename(p).startswith("mprun"))
INTERFACE = {"check_flags": ["args"], "load_data": ["args", "device"],
             "model_from_checkpoint": ["ckpt", "path", "args", "device"], "test_metric": ["model", "data", "args"]}


def noisy_epochs(path, epochs, stop_after=None, keep="lowest"):
    """The scripts' loop on a small regression: SGD with momentum, noise from the global RNG in every step
    (so a resume must restore the random state), the lr halved every second epoch. Returns the checkpoint
    object and its model, or stops after `stop_after` epochs as a killed run would."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    ckpt = Checkpoint(path, {"seed": 0}, "loss_record", keep=keep, resume=load_resume(path))
    start = ckpt.restore(model, optimizer)
    for epoch in range(start, epochs + 1):
        for _ in range(5):
            x = torch.randn(8, 3)
            loss = ((model(x) - x.sum(1, keepdim=True)) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if epoch % 2 == 0:
            for group in optimizer.param_groups:
                group["lr"] *= 0.5
        ckpt.end_epoch(epoch, [1.0, 0.5, 0.7, 0.6, 0.4][epoch - 1] if keep == "lowest" else float(epoch % 3))
        if epoch == stop_after:
            return ckpt, None
    return ckpt, ckpt.finish()


def test_a_resumed_loop_ends_bit_identical_to_an_uninterrupted_one(tmp_path):
    straight, broken = str(tmp_path / "a" / "run.t7"), str(tmp_path / "b" / "run.t7")
    _, model = noisy_epochs(straight, 5)
    noisy_epochs(broken, 5, stop_after=2)
    assert load_resume(broken)["epoch"] == 2 and load_resume(broken)["record"] == [1.0, 0.5]
    torch.manual_seed(123)  # whatever ran in between: the resume point brings the random state back
    ckpt, resumed = noisy_epochs(broken, 5)
    a, b = (torch.load(p, weights_only=True) for p in (straight, broken))
    assert a["loss_record"] == b["loss_record"] == [1.0, 0.5, 0.7, 0.6, 0.4] and a["seed"] == 0
    assert all(torch.equal(a["net"][k], b["net"][k]) for k in a["net"])
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), resumed.parameters()))
    assert ckpt.best == 0.4 and os.path.exists(resume_path(broken))  # removed by the run's record, not here


def test_the_best_epoch_is_kept_by_its_score(tmp_path):
    path = str(tmp_path / "run.t7")
    _, model = noisy_epochs(path, 5, keep="highest")  # scores 1, 2, 0, 1, 2: the first 2 is kept
    saved = torch.load(path, weights_only=True)
    assert saved["loss_record"] == [1.0, 2.0] and load_resume(path)["best"] == 2.0
    assert all(torch.equal(saved["net"][k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError):
        Checkpoint(path, {}, "record", keep="best")


def test_no_epoch_keeps_the_model_as_it_is(tmp_path):
    path = str(tmp_path / "run.t7")
    model = torch.nn.Linear(2, 2)
    ckpt = Checkpoint(path, {"seed": 1}, "record", keep="lowest")
    assert ckpt.restore(model, torch.optim.SGD(model.parameters(), lr=0.1)) == 1
    assert load_resume(path)["epoch"] == 0  # a fresh run is marked unfinished at once
    assert ckpt.finish() is model
    saved = torch.load(path, weights_only=True)
    assert saved["record"] == [] and torch.equal(saved["net"]["weight"], model.weight.detach())


@pytest.mark.parametrize("script", SCRIPTS, ids=[os.path.basename(os.path.dirname(p)) for p in SCRIPTS])
def test_every_script_offers_the_same_interface(script):
    module = load_script(script, "interface_check")
    assert module.DATASET in ("ptb", "mnist", "dvsGesture", "nmnist")
    for name, params in INTERFACE.items():
        assert list(inspect.signature(getattr(module, name)).parameters) == params, name
    args = module.parser.parse_args(["--mode", "test1"])
    module.check_flags(args)  # the defaults are valid
