"""tools/compare-with-authors.py on a stand-in of the authors' layout: the one change it makes to their copy,
the log comparison (times masked, kit-only lines set aside) and the checkpoint differences."""
import os
import runpy

import torch

from conftest import ROOT

TOOL = runpy.run_path(os.path.join(ROOT, "tools", "compare-with-authors.py"), run_name="compare")

AUTHORS_SCRIPT = '''import torch
device = torch.device("cuda")
x = torch.zeros(2, device='cuda').cuda()
name = "cudagraph"  # not a device
'''


def test_the_copy_switches_only_the_device_and_leaves_the_clone_alone(tmp_path):
    folder = tmp_path / "clone" / "code" / "rnn-ptb-650-0.5-0.6"
    (folder / "utils").mkdir(parents=True)
    (folder / "rnn-ptb.py").write_text(AUTHORS_SCRIPT)
    (folder / "utils" / "u.py").write_text("y = t.cuda()\n")
    (folder / "data.txt").write_text('"cuda"\n')
    dest = tmp_path / "copy"
    changes = TOOL["copy_authors"](str(tmp_path / "clone"), "code/rnn-ptb-650-0.5-0.6", str(dest))
    assert changes == {"rnn-ptb.py": 3, os.path.join("utils", "u.py"): 1}
    assert (dest / "rnn-ptb.py").read_text() == AUTHORS_SCRIPT.replace('"cuda"', '"cpu"').replace("'cuda'", "'cpu'") \
        .replace(".cuda()", ".cpu()")
    assert (folder / "rnn-ptb.py").read_text() == AUTHORS_SCRIPT and (dest / "data.txt").read_text() == '"cuda"\n'
    exec(compile((dest / "rnn-ptb.py").read_text(), "copy", "exec"), {})  # runs without CUDA


def test_logs_compare_with_times_masked_and_kit_only_lines_set_aside(tmp_path):
    authors = ["| epoch   1 |    40/  100 batches | 12.34 ms/batch | loss  6.00", "| end of epoch   1 | time:  3.21s | x",
               "rnn1: [0, 2]"]
    kit = ["execution: definition", "| epoch   1 |    40/  100 batches |  9.99 ms/batch | loss  6.00",
           "| end of epoch   1 | time: 10.00s | x", "selection: hessian (Hessian-trace importance)", "rnn1: [0, 2]"]
    for path, lines in (("a.log", authors), ("k.log", kit)):
        (tmp_path / path).write_text("\n".join(lines) + "\n")
    a, k = (TOOL["log_lines"](str(tmp_path / p)) for p in ("a.log", "k.log"))
    assert TOOL["first_difference"](a, k) == (None, 2, 3)
    k[-1] = "rnn1: [0, 3]"
    assert TOOL["first_difference"](a, k) == ((3, "rnn1: [0, 2]", "rnn1: [0, 3]"), 2, 3)
    assert TOOL["first_difference"](a, k[:-1])[0] == (3, "rnn1: [0, 2]", "<end>")


def test_checkpoint_differences_per_tensor(tmp_path):
    w = torch.randn(3, 4)
    torch.save({"net": {"w": w, "b": torch.zeros(2), "only": torch.ones(1)}}, tmp_path / "a.t7")
    torch.save({"net": {"w": w + 1e-3, "b": torch.zeros(3)}}, tmp_path / "k.t7")
    rows = dict(TOOL["checkpoint_differences"](str(tmp_path / "a.t7"), str(tmp_path / "k.t7")))
    assert abs(rows["w"] - 1e-3) < 1e-6 and rows["b"] == "shapes (2,) vs (3,)" and rows["only"] == "only in the authors'"
