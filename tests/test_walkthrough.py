"""The original README's walkthrough, step by step at a tiny size, in a copy of its folder:
edit mprun-rnn-ptb.py's dicts as the README says, run train1 -> test1 (rnn, snn, Adaptation),
ffs train1 -> test1 at ratio 0.75, train2 -> test2 at 0.75, then latex-code-gen.py: a filled table.
The text is the first lines of the real Penn Treebank when it is beside the checkout, else synthetic."""
import csv
import os
import shutil
import subprocess
import sys

import torch

from conftest import ROOT, ptb_text

WALK = "rnn-ptb-120-0.5-0.6-bias"
DICTS = ("PTB_XNN_Parameter", "PTB_FFS_Parameter", "PTB_HBR_Parameter")


def checkout(tmp_path):
    """A tree shaped like the repository holding a fresh copy of the walkthrough folder."""
    kit = tmp_path / "kit"
    (kit / "experiments").mkdir(parents=True)
    shutil.copytree(os.path.join(ROOT, "experiments", WALK), kit / "experiments" / WALK,
                    ignore=shutil.ignore_patterns("log", "checkpoint", "traces", "__pycache__"))
    os.symlink(os.path.join(ROOT, "experiments", "rnn-ptb-650-0.5-0.6"), kit / "experiments" / "rnn-ptb-650-0.5-0.6")
    os.symlink(os.path.join(ROOT, "common"), kit / "common")
    shutil.copy(os.path.join(ROOT, "latex-code-gen.py"), kit)
    return kit / "experiments" / WALK


def edit(mprun, changes):
    """Set `target = value` lines of the mprun file, as the walkthrough tells the user to; a dict key not
    yet in the file is added before the dict's multi_task call."""
    lines = open(mprun).read().splitlines()
    for target, value in changes.items():
        hits = [i for i, line in enumerate(lines) if line.split("=")[0].strip() == target]
        if hits:
            assert len(hits) == 1, target
            lines[hits[0]] = f"{lines[hits[0]].split('=')[0]}= {value!r}"
        else:
            call = lines.index(f"multi_task(path, {target.split('[')[0]})")
            lines.insert(call, f"{target} = {value!r}")
    open(mprun, "w").write("\n".join(lines) + "\n")


def launch(folder, stage):
    out = subprocess.run([sys.executable, "mprun-rnn-ptb.py", "--gpus", "cpu", "--stages", str(stage)], cwd=folder,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def final_block(folder, log):
    lines = open(folder / "log" / log).read().splitlines()
    assert lines[-3] == lines[-1] == "=" * 89 and lines[-2].startswith("| Performance on Test Set"), lines[-3:]
    return lines[-2]


def test_the_shipped_file_holds_the_walkthrough_settings():
    text = open(os.path.join(ROOT, "experiments", WALK, "mprun-rnn-ptb.py")).read()
    for d in DICTS:
        assert f'{d}["nhid"]         = 120' in text
    assert "\ngpus = 2 " in text and "gpus=gpus" in text
    assert 'PTB_XNN_Parameter["ratio"]        = [0]' in text and "seed_list = [1111 * i for i in range(1, 5)]" in text
    assert "ratio_list = [0.75] " in text and 'PTB_FFS_Parameter["ratio"]        = ratio_list' in text
    assert 'PTB_HBR_Parameter["mode"]         = "train2"' in text and '"test2" tests again' in text
    assert "basic_ratios = [0.05, 0.25, 0.5, 0.75, 0.95]" in text
    assert "extended_ratios = [0.15, 0.35, 0.55, 0.65, 0.85]" in text


def test_walkthrough_step_by_step(tmp_path):
    folder = checkout(tmp_path)
    mprun = folder / "mprun-rnn-ptb.py"
    data = ptb_text(str(tmp_path / "ptb"), lines=(150, 30, 30))
    tiny = {"nhid": 8, "emsize": 16, "bptt": 10, "batch_size": 5, "data": data}  # 6 SNNs and 2 RNNs at 0.75
    edit(mprun, {"seed_list": [1111], **{f'{d}["{k}"]': v for d in DICTS for k, v in tiny.items()},
                 'PTB_XNN_Parameter["stage1_epoch"]': 1, 'PTB_FFS_Parameter["stage1_epoch"]': 1,
                 'PTB_HBR_Parameter["stage2_epoch"]': 1, 'PTB_HBR_Parameter["hessian_probes"]': 4})

    # 1. rnn, snn and the HSTNN Adaptation model: train1, then test1 (each launch also runs the next step's
    # first half: --stages 1,2 tests stage 1 and trains ffs, as editing both dicts before one run would)
    launch(folder, 1)
    edit(mprun, {'PTB_XNN_Parameter["mode"]': "test1"})
    launch(folder, "1,2")  # and 2. ffs at ratio 0.75 (3/4 of each layer's neurons spike): train1
    for name in ("ptb_rnn_1111", "ptb_snn_1111", "ptb_hybrid_1111"):
        assert final_block(folder, f"test_{name}.log") == final_block(folder, f"train_{name}.log")
    log = open(folder / "log" / "train_ptb_ffs_1111_0.75.log").read()
    assert "model with rnn_shape: [  2,   2]" in log and "model with snn_shape: [  6,   6]" in log
    edit(mprun, {'PTB_FFS_Parameter["mode"]': "test1"})
    launch(folder, "2,3")  # ffs test1, and 3. Selection + Restoration at 0.75 (train2)
    assert final_block(folder, "test_ptb_ffs_1111_0.75.log") == final_block(folder, "train_ptb_ffs_1111_0.75.log")
    edit(mprun, {'PTB_HBR_Parameter["mode"]': "test2"})
    assert "0 jobs to run" not in launch(folder, 3)
    name = "ptb_hybrid_1111_0.75"
    assert final_block(folder, f"test_{name}.log") == final_block(folder, f"train_{name}.log")
    counts = [line for line in open(folder / "log" / f"train_{name}.log").read().splitlines() if "_layer[" in line]
    assert sum(int(line.split(":")[1]) for line in counts if line.startswith("snn")) == 12  # of 16
    # every model of the folder has input biases, and its checkpoint says so
    for ckpt in ("ptb_rnn_1111", "ptb_hybrid_1111", "ptb_ffs_1111_0.75", name):
        state = torch.load(folder / "checkpoint" / f"{ckpt}.t7", weights_only=True)
        assert state.get("bias") is True and any(k.endswith("_bias") for k in state["net"]), ckpt

    # 4. the tables
    out = subprocess.run([sys.executable, "../../latex-code-gen.py", "--experiment", WALK, "--out", str(tmp_path / "results"),
                          "--no-plots"], cwd=folder, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for kind in ("ffs", "hybrid"):
        rows = list(csv.reader(open(tmp_path / "results" / f"ptb-RNN-{kind}.csv")))
        rows = [r for r in rows if r]
        assert [r[0].strip() for r in rows[1:]] == ["rnn", "0.75", "snn"], rows
        assert all("NA" not in cell and float(cell) > 1 for r in rows[1:] for cell in r[1:2]), rows
    tex = open(tmp_path / "results" / "ptb-RNN.tex").read()
    assert "NA" not in tex and "0.75" in tex
