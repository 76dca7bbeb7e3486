"""tutorial/see-the-neurons.py at a tiny size: the figures exist and what they draw is the model's own numbers
(spikes and states of its forward pass, the autograd surrogate, the neurons Selection kept)."""
import os
import runpy

import numpy as np
import torch

from common.neurons import surrogate
from conftest import ROOT

TUTORIAL = runpy.run_path(os.path.join(ROOT, "tutorial", "see-the-neurons.py"), run_name="tutorial")


def check(out, paths, values, model, keep):
    for name in ("lif", "rnn", "surrogate", "selection"):
        with open(paths[name], "rb") as f:
            assert f.read(4) == b"\x89PNG", name
    saved = np.load(os.path.join(out, "values.npz"))
    assert set(saved.files) == set(values)
    # the drawn neurons are the model's: its own forward pass (the default, layer-major path) on the digit shown
    image = torch.from_numpy(values["image"])[None, None].float() / 255
    x = image.reshape(-1, 28, 28).transpose(1, 2).transpose(0, 1)
    with torch.no_grad():
        spikes, states, _ = model.run(x, model.init_hidden(1))
    assert np.array_equal(saved["spikes2"], spikes[:, 0].numpy())
    assert np.allclose(saved["states2"], states[:, 0].numpy(), atol=1e-6)
    for l in (1, 2):  # a spike wherever the membrane potential passed the threshold
        assert np.array_equal(saved[f"spikes{l}"], (saved[f"mem{l}"] > model.thresh).astype(np.float32))
    assert saved["spikes1"].any() and saved["mem1"].shape == (28, model.snn_shape[0])
    u = torch.from_numpy(saved["u"])
    assert np.array_equal(saved["surrogate_grad"], surrogate(u, model.thresh, model.lens).numpy())
    assert saved["surrogate_grad"].max() == 1 / (2 * model.lens)
    for key, kept in keep.items():  # the bars' colours are Selection's choice, the bars its importance
        assert np.flatnonzero(saved[f"kept_{key}"]).tolist() == kept
        assert len(saved[f"importance_{key}"]) == model.population_sizes()[key]


def test_the_figures_show_the_models_neurons(tmp_path):
    out = str(tmp_path / "train")
    paths, values, model, keep = TUTORIAL["see_the_neurons"](out, nhid=6, steps=3, probes=2, n_train=200, n_test=20,
                                                             quiet=True, synthetic=True)
    check(out, paths, values, model, keep)
    # a checkpoint loaded instead of trained: the same network, the same pictures
    again = str(tmp_path / "load")
    paths2, values2, model2, keep2 = TUTORIAL["see_the_neurons"](again, probes=2, n_train=200, n_test=20, quiet=True,
                                                                 synthetic=True,
                                                                 checkpoint=os.path.join(out, "adapted.t7"))
    check(again, paths2, values2, model2, keep2)
    assert np.array_equal(values2["mem1"], values["mem1"]) and keep2 == keep
