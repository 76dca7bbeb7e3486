"""The mprun dicts are safe to edit: the scripts take exact flag names, the original abbreviated keys reach
their flags through the launcher's visible mapping, a key that no flag has stops the launch before any job,
and in every shipped file the stages share their settings."""
import argparse
import glob
import os
import runpy
import subprocess
import sys

import pytest

from conftest import ROOT, run_script
from common.launch import launcher as L
from common.cli import experiment_parser

# A training script without torch: exact flag names, and a file saying how it was called.
FAKE_SCRIPT = '''
import argparse, sys
p = argparse.ArgumentParser(allow_abbrev=False)
for flag in ("--ratio", "--seed", "--model", "--mode", "--gpu", "--stage1_epochs", "--stage2_lr"):
    p.add_argument(flag)
p.add_argument("--overwrite", action="store_true")
p.parse_args()
open("ran.txt", "a").write(" ".join(sys.argv[1:]) + "\\n")
'''


def fake_experiment(tmp_path, second_dict):
    folder = tmp_path / "rnn-ptb-10-0.5-0.6"
    folder.mkdir()
    (folder / "fake-ptb.py").write_text(FAKE_SCRIPT)
    (folder / "mprun-fake-ptb.py").write_text(
        f"import sys\nsys.path.insert(0, {ROOT!r})\nfrom common.launch.launcher import Launcher\n"
        f"ln = Launcher(gpus=[], cpu_jobs=1, profile_csv='profile.csv', progress_every_s=1000)\n"
        f"FAKE_XNN_Parameter = dict(stage1_epoch=7, mode='train1', seed=[1], ratio=[0], model=['rnn'])\n"
        f"ln.multi_task('.', FAKE_XNN_Parameter)\n"
        f"ln.multi_task('.', {second_dict})\n"
        f"ln.finish()\n")
    return folder


def launch(folder, *flags):
    return subprocess.run([sys.executable, "mprun-fake-ptb.py", *flags], cwd=folder, capture_output=True, text=True,
                          timeout=120)


def test_scripts_take_exact_flag_names_only(capsys):
    parser = experiment_parser("test")
    assert parser.parse_args(["--stage1_epochs", "3"]).stage1_epochs == 3
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["--stage1_epoch", "3"])  # argparse would have completed it to --stage1_epochs
    assert stop.value.code == 2 and "unrecognized arguments: --stage1_epoch" in capsys.readouterr().err


def test_original_keys_reach_their_flags(tmp_path):
    assert L.DICT_KEY_FLAGS == {"stage1_epoch": "stage1_epochs", "stage2_epoch": "stage2_epochs"}
    folder = fake_experiment(tmp_path, "dict(stage2_lr=0.1, mode='train1', seed=[2], ratio=[0], model=['rnn'])")
    launch(folder)
    ran = (folder / "ran.txt").read_text().splitlines()
    assert ran[0] == "--ratio 0 --seed 1 --model rnn --stage1_epochs 7 --mode train1"
    assert ran[1] == "--ratio 0 --seed 2 --model rnn --stage2_lr 0.1 --mode train1"


@pytest.mark.parametrize("dry", [True, False])
def test_an_unknown_key_stops_the_launch_before_any_job(tmp_path, dry):
    folder = fake_experiment(tmp_path, "dict(stage2_learning_rate=0.1, mode='train1', seed=[2], ratio=[0], model=['rnn'])")
    out = launch(folder, *(["--dry-run"] if dry else []))
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stderr.splitlines() == ["error: stage 2: the parameter dict in mprun-fake-ptb.py has a key that fake-ptb.py "
                                       "does not take: 'stage2_learning_rate' (did you mean 'stage2_lr'?)"]
    assert not (folder / "ran.txt").exists() and "jobs to run" not in out.stdout
    assert ("jobs would run" in out.stdout) == dry  # a dry run lists stage 1 first; a real launch checks all first


def test_a_script_that_cannot_be_read_is_a_clear_error(tmp_path):
    folder = fake_experiment(tmp_path, "dict(mode='train1', seed=[2], ratio=[0], model=['rnn'])")
    (folder / "fake-ptb.py").write_text("raise ImportError('no module named torch')\n")
    out = launch(folder, "--dry-run")
    assert out.returncode == 2 and out.stderr.startswith("error: stage 1: cannot read the flags of ")
    assert out.stderr.rstrip().endswith("ImportError: no module named torch")


def flag_dict(command):
    words = command.split(" python ", 1)[1].split()[1:]
    return {words[i][2:]: words[i + 1] for i in range(0, len(words), 2)}


def flags_in_this_process(script):
    """L.script_flags without a fresh interpreter (torch is already imported here): the script runs up to
    its parse_args call."""
    class Parsed(BaseException):
        pass

    def parsed(self, *args, **kwargs):
        found.update(flag for action in self._actions for flag in action.option_strings)
        raise Parsed

    found, saved = set(), (argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args, sys.argv)
    argparse.ArgumentParser.parse_args = argparse.ArgumentParser.parse_known_args = parsed
    sys.argv = [script]
    try:
        runpy.run_path(script, run_name="__main__")
    except Parsed:
        pass
    finally:
        argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args, sys.argv = saved
    assert "--model" in found, script
    return found


def test_every_shipped_file_checks_its_keys_and_its_stages_agree(monkeypatch, capsys):
    """Each shipped mprun file passes its dry run (every key a flag of its script), and the Restoration jobs
    have the data, network and batch settings of the Adaptation job of their seed."""
    monkeypatch.setattr(L, "script_flags", flags_in_this_process)
    files = sorted(glob.glob(os.path.join(ROOT, "experiments", "*", "mprun-*.py")))
    assert len(files) >= 6
    for f in files:
        assert run_script(f, ["--dry-run", "--gpus", "cpu"], os.path.dirname(f)) == 0, (f, capsys.readouterr().err)
        out = capsys.readouterr().out
        jobs = [flag_dict(line) for line in out.splitlines() if line.startswith("cd ")]
        adapted = {j["seed"]: j for j in jobs if j["model"] == "hybrid" and j["mode"] == "train1"}
        restored = [j for j in jobs if j["mode"] == "train2"]
        assert adapted and restored, f
        for j in restored:
            shared = set(j) & set(adapted[j["seed"]]) - {"mode", "ratio"}
            assert {"batch_size", "dropout"} <= shared, (f, shared)
            assert {k: j[k] for k in shared} == {k: adapted[j["seed"]][k] for k in shared}, f
            assert "stage1_epochs" not in j and "stage2_epochs" in j
    # the shipped keys are checked: one misspelt key fails the dry run
    f = os.path.join(ROOT, "experiments", "rnn-ptb-650-0.5-0.6", "mprun-rnn-ptb.py")
    monkeypatch.setattr(L, "DICT_KEY_FLAGS", {})
    assert run_script(f, ["--dry-run", "--gpus", "cpu"], os.path.dirname(f)) == 2
    assert "has a key that rnn-ptb.py does not take: 'stage1_epoch' (did you mean 'stage1_epochs'?)" in capsys.readouterr().err
