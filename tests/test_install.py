"""The two install files agree, and CI installs the CPU set the README recommends, then runs its test command."""
import os

from conftest import ROOT


def requirements(name):
    lines = [line.split("#")[0].strip() for line in open(os.path.join(ROOT, name))]
    return [line for line in lines if line]


def test_cpu_requirements_are_the_full_set_without_cuda():
    full, cpu = requirements("requirements.txt"), requirements("requirements-cpu.txt")
    assert cpu[0] == "--extra-index-url https://download.pytorch.org/whl/cpu"
    assert "torch>=2.1" in full and any(r.startswith("torch==2.") for r in cpu)
    assert [r for r in cpu[1:] if not r.startswith("torch")] == [r for r in full if not r.startswith("torch")]
    assert not any(r.startswith("torchvision") for r in cpu)  # its only users, three tests, skip without it


def test_ci_installs_the_cpu_set_and_runs_the_readme_test_command():
    lines = [l for l in open(os.path.join(ROOT, ".ci", "run")).read().splitlines() if l and not l.startswith("#")]
    assert any(l.startswith("python -m pip install") and l.endswith("-r requirements-cpu.txt") for l in lines)
    assert lines[-1] == "python -m pytest -q"
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert "pip install -r requirements-cpu.txt" in readme and "pip install -r requirements.txt" in readme
    assert "python -m pytest -q" in readme
