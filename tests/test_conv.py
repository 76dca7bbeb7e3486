"""Hybrid conv nets: the authors' shapes and names, layer-major = definition, shrink = masking, the conv
selection rule, and which ffs ratios are valid."""
import copy

import pytest
import torch
import torch.nn.functional as F

from common.fast.lif import lif_multistep
from common.hybrid_conv import (HybridConvNet, accuracy, build_configs, network_from_checkpoint, parse_channels,
                                population_channels, valid_ratios_text)
from common.selection import SelectionError, select_conv
from common.training import KitError

torch.set_num_threads(1)
DVS = dict(decay=0.3, thresh=0.5, lens=0.5, rcnn="tanh")
NMNIST = dict(decay=0.3, thresh=0.3, lens=0.25, rcnn="relu")
SMALL = [3, 5, 4]


def net(model="hybrid", channels=SMALL, ratio=0.5, neuron=DVS, size=12, padding=1, nclass=11, dtype=torch.float64):
    rc, sc = population_channels(model, channels, ratio)
    configs = build_configs(channels, rc, sc, 2, size, nclass, padding)
    return HybridConvNet(*configs, **neuron).to(dtype)


def events(size=12, T=6, B=3, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ((torch.rand(B, 2, size, size, T, generator=g) < 0.3).to(dtype) * 3)


# -- the authors' network ------------------------------------------------------------------------------------
def test_full_dvs_hybrid_has_the_authors_names_and_shapes():
    rc, sc = population_channels("hybrid", [128, 256, 384])
    model = HybridConvNet(*build_configs([128, 256, 384], rc, sc, 2, 32, 11), **DVS)
    shapes = {k: tuple(v.shape) for k, v in model.named_parameters()}
    assert list(shapes)[:6] == ["hcnn_layers.0.rcnn_fc.weight", "hcnn_layers.0.rcnn_fc.bias", "hcnn_layers.0.rcnn_fv.weight",
                                "hcnn_layers.0.rcnn_fv.bias", "hcnn_layers.0.scnn_fc.weight", "hcnn_layers.0.scnn_fc.bias"]
    assert shapes["hcnn_layers.1.rcnn_fc.weight"] == (256, 256, 3, 3)
    assert shapes["hcnn_layers.2.scnn_fc.weight"] == (384, 512, 3, 3)
    assert shapes["hcnn_layers.2.rcnn_fv.weight"] == (384, 384, 3, 3)
    assert shapes["linear_layers.0.weight"] == (256, 12288) and shapes["linear_layers.1.weight"] == (11, 256)
    assert model.input_size == 32


@pytest.mark.parametrize("model,inputs,linear", [("rnn", [2, 128, 256], 6144), ("snn", [2, 128, 256], 6144),
                                                 ("hybrid", [2, 256, 512], 12288), ("ffs", [2, 128, 256], 6144)])
def test_configs_match_the_authors_initialize_config(model, inputs, linear):
    rc, sc = population_channels(model, [128, 256, 384], 0.25)
    layers, buffers, linears = build_configs([128, 256, 384], rc, sc, 2, 32, 11)
    assert [l["input_channels"] for l in layers] == inputs and linears[0]["input_channels"] == linear
    assert [(b["output_size"], b["pooled_size"]) for b in buffers] == [(32, 16), (16, 8), (8, 4)]
    if model == "ffs":
        assert [(l["rcnn_channels"], l["scnn_channels"]) for l in layers] == [(96, 32), (192, 64), (288, 96)]


def test_nmnist_first_conv_is_unpadded():
    model = net("hybrid", [128, 256, 384], neuron=NMNIST, size=34, padding=0, nclass=10, dtype=torch.float32)
    assert [b["output_size"] for b in model.buffer_config] == [32, 16, 8]
    assert model.hcnn_layers[0].scnn_fc.padding == (0, 0) and model.hcnn_layers[1].scnn_fc.padding == (1, 1)
    assert model.linear_config[0]["input_channels"] == 768 * 16 and model.nclass == 10


def test_an_authors_checkpoint_loads_from_its_own_configs():
    """Their configs carry the base keys plus old_* keys after shrinking; the model is rebuilt from them."""
    src = net("hybrid", SMALL, dtype=torch.float32).shrunk({"hcnn_layers.0.rcnn_fc": [1], "hcnn_layers.0.scnn_fc": [0, 2],
                                                          "hcnn_layers.1.rcnn_fc": [0, 4], "hcnn_layers.1.scnn_fc": [3],
                                                          "hcnn_layers.2.rcnn_fc": [2], "hcnn_layers.2.scnn_fc": [1]})
    ckpt = dict(net=src.state_dict(), seed=1111, layer_config=src.layer_config, buffer_config=src.buffer_config,
                linear_config=src.linear_config, test_acc_record=[torch.tensor(50.0)])
    assert ckpt["layer_config"][1]["old_input_channels"] == 6 and ckpt["layer_config"][1]["input_channels"] == 3
    model = network_from_checkpoint(ckpt, "x.t7", DVS, 12)
    x = events(dtype=torch.float32)
    assert torch.equal(model(x), src(x))
    with pytest.raises(KitError, match="trained on 12x12 frames"):
        network_from_checkpoint(ckpt, "x.t7", DVS, 16)


# -- layer-major = definition ------------------------------------------------------------------------------
@pytest.mark.parametrize("neuron,padding", [(DVS, 1), (NMNIST, 0)])
@pytest.mark.parametrize("model", ["hybrid", "ffs", "rnn", "snn"])
def test_layer_major_path_equals_the_definition(model, neuron, padding):
    torch.manual_seed(1)
    m = net(model, [4, 6, 4], neuron=neuron, padding=padding)
    x = events()
    if model != "rnn":  # the comparison means something only if neurons fire
        cur = m.hcnn_layers[0].scnn_fc(x.permute(4, 0, 1, 2, 3).flatten(0, 1))
        assert lif_multistep(cur.view(6, 3, *cur.shape[1:]), neuron["decay"], neuron["thresh"], neuron["lens"]).sum() > 0
    grads = []
    for fast in (True, False):
        m.fast = fast
        m.zero_grad()
        out = m(x)
        F.mse_loss(out, torch.eye(11, dtype=x.dtype)[:3]).backward()
        grads.append((out.detach(), [p.grad.clone() for p in m.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-12, atol=1e-12)
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


# -- shrink = masking --------------------------------------------------------------------------------------
KEEP = {"hcnn_layers.0.rcnn_fc": [0, 2], "hcnn_layers.0.scnn_fc": [1],
        "hcnn_layers.1.rcnn_fc": [1, 3, 4], "hcnn_layers.1.scnn_fc": [0, 4],
        "hcnn_layers.2.rcnn_fc": [3], "hcnn_layers.2.scnn_fc": [0, 1, 3]}


@pytest.mark.parametrize("neuron,padding", [(DVS, 1), (NMNIST, 0)])
def test_shrunk_network_equals_the_masked_one(neuron, padding):
    torch.manual_seed(2)
    big = net("hybrid", neuron=neuron, padding=padding)
    x = events()
    small = big.shrunk(KEEP)
    assert [(l["rcnn_channels"], l["scnn_channels"], l["input_channels"]) for l in small.layer_config] == \
        [(2, 1, 2), (3, 2, 3), (1, 3, 5)]
    assert small.linear_config[0]["input_channels"] == 4 * small.buffer_config[-1]["pooled_size"] ** 2
    assert small.hcnn_layers[1].rcnn_fv.weight.shape == (3, 3, 3, 3)
    masked = big(x, masks=big.masks_for(KEEP))
    torch.testing.assert_close(small(x), masked, rtol=1e-12, atol=1e-12)
    small.fast = False
    torch.testing.assert_close(small(x), masked, rtol=1e-12, atol=1e-12)
    # masking changes the output (the proof is not vacuous), and keeping everything changes nothing
    assert not torch.allclose(masked, big(x))
    everything = {k: list(range(n)) for k, n in big.population_sizes().items()}
    torch.testing.assert_close(big(x, masks=big.masks_for(everything)), big(x), rtol=1e-12, atol=1e-12)


def test_shrinking_a_network_with_empty_populations_and_its_random_stream():
    torch.manual_seed(3)
    big = net("ffs", [4, 4, 8], ratio=0.25)
    keep = {"hcnn_layers.0.rcnn_fc": [0, 2], "hcnn_layers.0.scnn_fc": [0],
            "hcnn_layers.1.rcnn_fc": [], "hcnn_layers.1.scnn_fc": [0],
            "hcnn_layers.2.rcnn_fc": [1, 5], "hcnn_layers.2.scnn_fc": []}
    state = torch.get_rng_state()
    small = big.shrunk(keep)
    after = torch.get_rng_state()  # as the authors' load_and_shrink: the RNG moves as building the small net
    torch.set_rng_state(state)
    HybridConvNet(small.layer_config, small.buffer_config, small.linear_config, **DVS)
    assert torch.equal(after, torch.get_rng_state()) and not torch.equal(after, state)
    assert not hasattr(small.hcnn_layers[1], "rcnn_fc") and not hasattr(small.hcnn_layers[2], "scnn_fc")
    x = events()
    torch.testing.assert_close(small(x), big(x, masks=big.masks_for(keep)), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="no filter at all in layer 1"):
        big.shrunk(dict(keep, **{"hcnn_layers.1.scnn_fc": []}))


def test_probed_groups_are_the_input_conv_weights_filter_wise():
    m = net("hybrid")
    groups = m.probed_groups()
    assert list(groups) == [f"hcnn_layers.{l}.{k}_fc" for l in range(3) for k in ("rcnn", "scnn")]
    for l in range(3):
        w, cat_dim, neuron_dim = groups[f"hcnn_layers.{l}.rcnn_fc"]
        assert w[0] is m.hcnn_layers[l].rcnn_fc.weight and cat_dim == 0 and neuron_dim == 0
    assert "hcnn_layers.0.scnn_fc" not in net("rnn").probed_groups()


# -- selection ---------------------------------------------------------------------------------------------
def scores(r0, s0, r1, s1, r2=None, s2=None):
    out = {"hcnn_layers.0.rcnn_fc": r0, "hcnn_layers.0.scnn_fc": s0, "hcnn_layers.1.rcnn_fc": r1,
           "hcnn_layers.1.scnn_fc": s1}
    if r2 is not None:
        out.update({"hcnn_layers.2.rcnn_fc": r2, "hcnn_layers.2.scnn_fc": s2})
    return out


def test_selection_keeps_each_layers_best_filter_then_the_global_best():
    imp = scores([9, 8, 7, 6], [1, 2, 3, 4], [0.1, 0.3, 0.2, 0.0], [5, 6, 7, 8])
    keep = select_conv(imp, 0.5)  # 4 of 8 of each type
    assert list(keep) == list(imp)  # the authors' module order
    assert keep["hcnn_layers.0.rcnn_fc"] == [0, 1, 2] and keep["hcnn_layers.1.rcnn_fc"] == [1]  # weak layer keeps its best
    assert keep["hcnn_layers.0.scnn_fc"] == [3] and keep["hcnn_layers.1.scnn_fc"] == [1, 2, 3]


def test_selection_ties_are_broken_by_layer_then_index_as_the_stable_sort():
    imp = scores([1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 1, 1])
    keep = select_conv(imp, 4 / 9)  # 5 of 9 RCNN: best of each layer (index 0), then layer 0 first
    assert keep["hcnn_layers.0.rcnn_fc"] == [0, 1, 2] and keep["hcnn_layers.1.rcnn_fc"] == [0]
    assert keep["hcnn_layers.2.rcnn_fc"] == [0]
    assert keep["hcnn_layers.0.scnn_fc"] == [0, 1] and keep["hcnn_layers.2.scnn_fc"] == [0]


def test_selection_refuses_to_keep_fewer_filters_than_layers():
    """The original's slice vec[0:needed - 3] went negative here and silently kept nearly everything."""
    imp = scores(*[[float(i) for i in range(4)]] * 6)  # 12 filters of each type in 3 layers
    with pytest.raises(SelectionError, match="keeps 2 SCNN filter.*fewer than the 3 layers"):
        select_conv(imp, 1 / 6)
    keep = select_conv(imp, 0.25)  # exactly one per layer: the best one
    assert [keep[f"hcnn_layers.{l}.scnn_fc"] for l in range(3)] == [[3], [3], [3]]


def test_selection_counts_are_exact_or_truncated_on_request():
    imp = scores(*[[float(i) for i in range(4)]] * 6)
    with pytest.raises(SelectionError, match=r"12 x 0.7 = 8.4 of the 12 RCNN .*multiple of 1/12.*--truncate_counts"):
        select_conv(imp, 0.3)
    keep = select_conv(imp, 0.3, truncate=True)  # int(8.4) = 8 RCNN, int(3.6) = 3 SCNN
    assert sum(len(v) for k, v in keep.items() if "rcnn" in k) == 8
    assert sum(len(v) for k, v in keep.items() if "scnn" in k) == 3


# -- ffs ratios --------------------------------------------------------------------------------------------
def test_ffs_works_for_every_ratio_with_whole_channel_counts():
    assert population_channels("ffs", [128, 256, 384], 1 / 128) == ([127, 254, 381], [1, 2, 3])
    assert population_channels("ffs", [128, 256, 384], 0.75) == ([32, 64, 96], [96, 192, 288])
    m = net("ffs", [4, 8, 8], ratio=0.75)  # input widths are recomputed: any valid split builds and runs
    assert [l["input_channels"] for l in m.layer_config] == [2, 4, 8]
    assert m(events()).shape == (3, 11)


def test_ffs_invalid_ratio_says_which_ratios_are_valid():
    with pytest.raises(ValueError, match=r"(?s)12.8 SCNN channels in layer 0.*multiples of 1/128 .*0.0625"):
        population_channels("ffs", [128, 256, 384], 0.1)
    with pytest.raises(ValueError, match=r"multiples of 1/4 between 0 and 1 \(e.g. 0.25, 0.5, 0.75\)"):
        population_channels("ffs", [8, 12], 0.1)
    assert "no ratio" in valid_ratios_text([3, 5])
    assert population_channels("ffs", [128, 256, 384], 0.1, truncate=True) == ([115, 230, 345], [12, 25, 38])


def test_channels_flag_and_float32_accuracy():
    assert parse_channels("8,16,24") == [8, 16, 24]
    for bad in ("8,x", "8,0", ""):
        with pytest.raises(ValueError, match="--channels"):
            parse_channels(bad)
    assert "{:.5f}".format(accuracy(255, 288)) == "88.54166"  # the authors' float32 tensor, digit for digit
