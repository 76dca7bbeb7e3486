"""The data-preparation scripts find the kit by themselves: without `source setup.sh`, from the repository
root or from data/ (as the original's README tells users to run them)."""
import os
import subprocess
import sys

import pytest

from conftest import ROOT

SCRIPTS = ("smnist-dataset-gen.py", "nmnist-dataset-gen.py", "dvs-hdf5-gen.py")


@pytest.mark.parametrize("script", SCRIPTS)
def test_runs_without_setup_from_root_and_from_data(script, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for cwd, path in ((ROOT, os.path.join("data", script)), (os.path.join(ROOT, "data"), script)):
        out = subprocess.run([sys.executable, path, "--help"], cwd=cwd, env=env, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, (cwd, out.stderr)
        assert out.stdout.startswith("usage: ") and "--root" in out.stdout and "setup.sh" not in out.stderr
