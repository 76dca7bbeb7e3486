"""Import hygiene of common/: every module imports on its own in a fresh interpreter, in any order; the
launcher and its Slurm backend share common/jobs.py instead of importing each other; the conv network
module does not depend on the method's Selection/Hessian layer."""
import ast
import os
import subprocess
import sys

import pytest

from conftest import ROOT

COMMON = os.path.join(ROOT, "common")
MODULES = sorted(f[:-3] for f in os.listdir(COMMON) if f.endswith(".py") and f != "__init__.py")


def imported(module):
    """The common modules that `module` imports anywhere in its file (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(open(os.path.join(COMMON, module + ".py")).read())):
        if isinstance(node, ast.ImportFrom) and node.module == "common":
            found |= {a.name for a in node.names if a.name in MODULES}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("common."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("common.")}
    return found


def reachable(module):
    seen, todo = set(), [module]
    while todo:
        for m in imported(todo.pop()) - seen:
            seen.add(m)
            todo.append(m)
    return seen


def test_launcher_and_slurm_do_not_import_each_other():
    for m in ("launcher", "slurm", "jobs"):
        assert m not in reachable(m), f"common/{m}.py is part of an import cycle"
    assert "launcher" not in reachable("slurm") and not reachable("jobs") & {"launcher", "slurm"}


def test_the_conv_network_does_not_import_the_method_layer():
    method = {"selection", "hessian", "stages", "criteria"}
    assert not reachable("hybrid_conv") & method and not reachable("hybrid_fc") & method


@pytest.mark.parametrize("order", ["slurm first", "sorted", "reversed"])
def test_every_module_imports_in_a_fresh_interpreter(order):
    pytest.importorskip("submitit")
    names = {"slurm first": ["slurm", "launcher"], "sorted": MODULES, "reversed": MODULES[::-1]}[order]
    code = "import importlib\n" + "".join(f"importlib.import_module('common.{m}')\n" for m in names)
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
