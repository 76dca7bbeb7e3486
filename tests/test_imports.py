"""Import hygiene of common/: every module (packages included) imports on its own in a fresh interpreter, in any
order; the launcher and its Slurm backend share common/launch/jobs.py instead of importing each other; the conv
network module does not depend on the method's Selection/Hessian layer; no package imports in a cycle."""
import ast
import os
import subprocess
import sys

import pytest

from conftest import ROOT

COMMON = os.path.join(ROOT, "common")
MODULES = sorted(os.path.relpath(os.path.join(folder, f), COMMON)[:-3].replace(os.sep, ".")
                 for folder, _, files in os.walk(COMMON) if "__pycache__" not in folder
                 for f in files if f.endswith(".py") and f != "__init__.py")
PACKAGES = sorted(os.path.relpath(folder, COMMON).replace(os.sep, ".") for folder, _, files in os.walk(COMMON)
                  if folder != COMMON and "__init__.py" in files)


def source(module):
    path = os.path.join(COMMON, *module.split("."))
    return path + ".py" if module in MODULES else os.path.join(path, "__init__.py")


def imported(module):
    """The common modules (or packages, for names from their __init__) that `module` imports anywhere in its file
    (module level or inside functions), as dotted names below common ("launch.jobs")."""
    found = set()
    for node in ast.walk(ast.parse(open(source(module)).read())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "common":
            package = node.module[len("common."):] if node.module != "common" else ""
            for a in node.names:
                name = f"{package}.{a.name}" if package else a.name
                found.add(name if name in MODULES else package)
        elif isinstance(node, ast.Import):
            found |= {a.name[len("common."):] for a in node.names if a.name.startswith("common.")}
    return found - {""}


def reachable(module):
    seen, todo = set(), [module]
    while todo:
        for m in imported(todo.pop()) - seen:
            seen.add(m)
            todo.append(m)
    return seen


def test_every_module_is_found():
    assert {"neurons", "stages", "data.ptb", "launch.launcher", "launch.slurm", "report.tables"} <= set(MODULES)
    assert all(m in MODULES + PACKAGES for mod in MODULES for m in imported(mod)), "an import names no module of common/"


def test_launcher_and_slurm_do_not_import_each_other():
    for m in ("launch.launcher", "launch.slurm", "launch.jobs"):
        assert m not in reachable(m), f"common/{m.replace('.', '/')}.py is part of an import cycle"
    assert "launch.launcher" not in reachable("launch.slurm")
    assert not reachable("launch.jobs") & {"launch.launcher", "launch.slurm"}


def test_no_data_launching_or_reporting_module_is_part_of_an_import_cycle():
    assert [m for m in MODULES if m.startswith(("data.", "launch.", "report.")) and m in reachable(m)] == []


def test_the_method_does_not_import_launching_or_reporting():
    for m in MODULES:
        if "." not in m:
            assert not {r for r in reachable(m) if r.startswith(("launch.", "report."))}, m


def test_the_conv_network_does_not_import_the_method_layer():
    method = {"selection", "hessian", "stages", "criteria"}
    assert not reachable("hybrid_conv") & method and not reachable("hybrid_fc") & method


@pytest.mark.parametrize("order", ["slurm first", "sorted", "reversed"])
def test_every_module_imports_in_a_fresh_interpreter(order):
    pytest.importorskip("submitit")
    names = {"slurm first": ["launch.slurm", "launch.launcher"], "sorted": MODULES, "reversed": MODULES[::-1]}[order]
    code = "import importlib\n" + "".join(f"importlib.import_module('common.{m}')\n" for m in names)
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
