"""Selection criteria (common.criteria): each score against a computation by hand from the same traces,
the random draws, the oracle against masking, and --selection through hessian_selection and the script."""
import csv
import logging
import os
import runpy

import pytest
import torch
import torch.nn.functional as F

from common.criteria import (CRITERIA, masked_copies, oracle, oracle_subset, random_scores, ranking, removal_masks,
                             score_table)
from common.hessian import hutchinson_traces
from common.hybrid_conv import HybridConvNet, build_configs, population_channels
from common.selection import select_conv, select_fc
from common.stages import hessian_selection
from common.training import KitError
from conftest import ROOT, run_script
from idx import write_fake_mnist
from tiny import tiny_net

torch.set_num_threads(1)
T, B = 5, 6


def setup(seed=0):
    net = tiny_net(rnn=(4, 4), snn=(4, 4), seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(T, B, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (T, B), generator=g)

    def loss_of(m, masks=None):
        return F.cross_entropy(m(x, m.init_hidden(B), masks)[0].reshape(-1, 3), y.reshape(-1))
    torch.manual_seed(0)
    traces = hutchinson_traces(loss_of(net), net.probed_groups(), 6)
    return net, loss_of, {k: v.mean(0) for k, v in traces.items()}


def blocks(net, key):
    """Each neuron's weight block as a list of tensors, by explicit indexing."""
    tensors, _, neuron_dim = net.probed_groups()[key]
    n = tensors[0].shape[neuron_dim]
    return [[t.detach().select(neuron_dim, c) for t in tensors] for c in range(n)]


def test_magnitude_trace_hessian_and_reversed_from_the_traces():
    net, loss_of, mean = setup()
    table = score_table(net, lambda: loss_of(net), mean)
    for key in mean:
        by_hand = torch.tensor([sum((b ** 2).sum().item() for b in blk) / sum(b.numel() for b in blk)
                                for blk in blocks(net, key)], dtype=torch.float64)
        torch.testing.assert_close(table["magnitude"][key].double(), by_hand)
        torch.testing.assert_close(table["trace"][key], mean[key])
        torch.testing.assert_close(table["importance"][key].double(), (mean[key] * by_hand).float().double())
        torch.testing.assert_close(ranking("reversed", table)[key], -table["importance"][key])
        torch.testing.assert_close(ranking("hessian", table)[key], table["importance"][key])
    # reversed keeps, per type, the neurons of lowest importance (the swap rule aside: ratio 0.5 keeps 4 of 8)
    keep = select_fc({k: v.tolist() for k, v in ranking("reversed", table).items()}, 0.5)
    for kind in ("rnn", "snn"):
        both = [(v, l, i) for l in (1, 2) for i, v in enumerate(table["importance"][f"{kind}{l}"].tolist())]
        lowest = sorted(both)[:4]
        if len({l for _, l, _ in lowest}) == 2:
            assert {(l, i) for _, l, i in lowest} == {(l, i) for l in (1, 2) for i in keep[f"{kind}{l}"]}


def test_taylor_is_the_absolute_sum_of_gradient_times_weight():
    net, loss_of, mean = setup(seed=3)
    table = score_table(net, lambda: loss_of(net), mean)
    net.zero_grad()
    loss_of(net).backward()
    for key, (tensors, _, neuron_dim) in net.probed_groups().items():
        by_hand = [abs(sum((t.grad.select(neuron_dim, c) * t.detach().select(neuron_dim, c)).sum().item()
                           for t in tensors)) for c in range(tensors[0].shape[neuron_dim])]
        torch.testing.assert_close(table["taylor"][key].double(), torch.tensor(by_hand, dtype=torch.float64))
        assert table["taylor"][key].min() >= 0


def test_oracle_is_the_loss_increase_of_masking_one_neuron():
    net, loss_of, _ = setup(seed=5)
    with torch.no_grad():
        base = loss_of(net).item()
        scores = oracle(net, lambda m: loss_of(m).item())
        sizes = net.population_sizes()
        for key, n in sizes.items():
            for c in range(n):
                keep = {k: [i for i in range(m) if (k, i) != (key, c)] for k, m in sizes.items()}
                masked = loss_of(net, net.masks_for(keep)).item()
                assert scores[key][c].item() == pytest.approx(masked - base, abs=1e-9)
    assert any(v.abs().max() > 1e-6 for v in scores.values())  # removing neurons changes the loss


def test_random_draws_reproducible_distinct_and_draw_zero_is_the_old_random():
    net, _, _ = setup()
    groups = net.probed_groups()
    old = torch.Generator().manual_seed(1111)  # what --selection random drew before draws existed
    old = {k: torch.rand(len(blocks(net, k)), generator=old, dtype=torch.float64) for k in groups}
    draws = [random_scores(groups, 1111, d) for d in range(3)]
    for k in groups:
        torch.testing.assert_close(draws[0][k], old[k], rtol=0, atol=0)
        torch.testing.assert_close(random_scores(groups, 1111, 2)[k], draws[2][k], rtol=0, atol=0)
    picks = [select_fc({k: v.tolist() for k, v in d.items()}, 0.5) for d in draws]
    assert picks[0] != picks[1] and picks[1] != picks[2]
    assert select_fc({k: v.tolist() for k, v in random_scores(groups, 2222, 0).items()}, 0.5) != picks[0]


def test_every_criterion_through_hessian_selection_same_counts_logged_and_in_the_csv(tmp_path, caplog):
    net, loss_of, _ = setup()
    ckpt = tmp_path / "adapted.t7"
    torch.save({"net": net.state_dict()}, ckpt)
    logger = logging.getLogger("criteria-test")
    picks = {}
    for criterion in CRITERIA:
        csv_path = tmp_path / f"{criterion}.csv"
        torch.manual_seed(0)
        with caplog.at_level(logging.INFO, logger="criteria-test"):
            picks[criterion] = hessian_selection(net, lambda: loss_of(net), (torch.zeros(1),), 0.25, 4, str(ckpt),
                                                 str(tmp_path / "trace"), str(csv_path), logger,
                                                 selection=criterion, seed=7, draw=1,
                                                 heldout_loss=lambda m: loss_of(m).item(), heldout="the test batch")
        assert any(r.message.startswith(f"selection: {criterion} (") for r in caplog.records)
        kinds = {kind: sum(len(picks[criterion][f"{kind}{l}"]) for l in (1, 2)) for kind in ("rnn", "snn")}
        assert kinds == {"rnn": 6, "snn": 2}
        rows = list(csv.DictReader(open(csv_path)))
        assert list(rows[0])[:5] == ["param", "neuron", "trace", "importance", "kept"]
        assert set(rows[0]) >= {"magnitude", "taylor", "random"} and ("oracle" in rows[0]) == (criterion == "oracle")
        kept = {(r["param"], int(r["neuron"])) for r in rows if r["kept"] == "1"}
        assert kept == {(k, i) for k, v in picks[criterion].items() for i in v}
        column = {"hessian": "importance", "reversed": "importance"}.get(criterion, criterion)
        scores = {k: [float(r[column]) * (-1 if criterion == "reversed" else 1) for r in rows if r["param"] == k]
                  for k in ("snn1", "snn2", "rnn1", "rnn2")}
        assert select_fc(scores, 0.25) == picks[criterion]  # the CSV's column is what was ranked
    assert any("draw 1 of a generator seeded with 7" in r.message for r in caplog.records)
    assert any("on the test batch" in r.message for r in caplog.records)
    assert len({str(sorted(p.items())) for p in picks.values()}) >= 4
    with pytest.raises(KitError, match="oracle needs a held-out loss"):
        hessian_selection(net, lambda: loss_of(net), (torch.zeros(1),), 0.25, 4, str(ckpt), str(tmp_path / "t"),
                          str(tmp_path / "x.csv"), logger, selection="oracle")


def test_criteria_on_a_conv_net_give_one_score_per_filter():
    rc, sc = population_channels("hybrid", [4, 4], 0.5)
    conv = HybridConvNet(*build_configs([4, 4], rc, sc, 2, 8, 5, 1), decay=0.3, thresh=0.5, lens=0.5,
                         rcnn="tanh").double()
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 2, 8, 8, 3, generator=g) < 0.3).double() * 3
    target = torch.rand(2, 5, generator=g, dtype=torch.float64)
    loss = lambda m: F.mse_loss(m(x), target)
    torch.manual_seed(0)
    mean = {k: v.mean(0) for k, v in hutchinson_traces(loss(conv), conv.probed_groups(), 2).items()}
    table = score_table(conv, lambda: loss(conv), mean, heldout_loss=lambda m: loss(m).item())
    for column in ("trace", "importance", "magnitude", "taylor", "random", "oracle"):
        assert {k: len(v) for k, v in table[column].items()} == conv.population_sizes()
    with torch.no_grad():
        for key, n in conv.population_sizes().items():
            keep = {k: [i for i in range(m) if (k, i) != (key, 0)] for k, m in conv.population_sizes().items()}
            masked = F.mse_loss(conv(x, masks=conv.masks_for(keep)), target).item() - loss(conv).item()
            assert table["oracle"][key][0].item() == pytest.approx(masked, abs=1e-9)
    for criterion in CRITERIA:
        select_conv({k: v.tolist() for k, v in ranking(criterion, table).items()}, 0.5)


def test_script_oracle_on_held_out_images_and_a_second_random_draw(tmp_path):
    script = os.path.join(ROOT, "experiments", "rnn-smnist-800-0.5-0.6", "rnn-smnist.py")
    data = write_fake_mnist(str(tmp_path / "data"), n_train=100, n_test=50)
    small = ["--nhid", 4, "--batch_size", 50, "--device", "cpu", "--stage1_epochs", 1, "--stage2_epochs", 1,
             "--hessian_probes", 2, "--data", data, "--model", "hybrid", "--protocol", "val", "--val_size", 50,
             "--ratio", 0.25]
    for folder, selection in (("oracle", ["--selection", "oracle"]), ("draw", ["--selection", "random",
                                                                               "--selection_draw", 1])):
        d = tmp_path / folder
        d.mkdir()
        for mode in ("train1", "train2"):
            assert run_script(script, small + ["--mode", mode] + (selection if mode == "train2" else []), str(d)) == 0
        log = (d / "log" / "train_mnist_hybrid_1111_0.25.log").read_text()
        table = list(csv.DictReader(open(d / "traces" / "mnist_hybrid_1111_0.25_importance.csv")))
        if folder == "oracle":
            assert "selection: oracle (" in log and "on the 50 held-out training images)" in log
            assert len(table) == 16 and all(r["oracle"] not in ("", None) for r in table)
        else:
            assert "selection: random (" in log and "draw 1 of a generator seeded with 1111" in log


def batched(net, x, y, B):
    """heldout_losses for setup()'s loss: the mean cross-entropy of every masked copy (masked_copies)."""
    def losses(masks):
        K = len(next(iter(masks.values())))
        spikes, states = masked_copies(net, x, masks)
        out = net.readout(torch.cat([spikes, states], dim=2)).view(T, K, B, -1)
        return [F.cross_entropy(out[:, k].reshape(-1, 3), y.reshape(-1)).item() for k in range(K)]
    return losses


@pytest.mark.parametrize("cell,bias", [("rnn", False), ("rnn", True), ("lstm", False)])
def test_masked_copies_equal_the_definition_with_the_masks_repeated(cell, bias):
    net = tiny_net(rnn=(4, 3), snn=(3, 4), cell=cell, seed=2)
    if bias:  # input biases, as build_stack(bias=True) makes them
        for l, (r, s) in enumerate(zip(net.rnn_shape, net.snn_shape), 1):
            setattr(net, f"snn_fc{l}_bias", torch.nn.Parameter(torch.rand(s, dtype=torch.float64) - 0.5))
            setattr(net, f"rnn_fc{l}_bias", torch.nn.Parameter(torch.rand(r, dtype=torch.float64) - 0.5))
        net.bias = True
    g = torch.Generator().manual_seed(9)
    x = torch.rand(T, B, 4, generator=g, dtype=torch.float64)
    sizes = net.population_sizes()
    two_snn1 = {k: x.new_ones(3, n) for k, n in sizes.items()}  # every copy without two layer-1 spiking neurons
    two_snn1["snn1"][[0, 0, 1, 1, 2, 2], [0, 1, 1, 2, 0, 2]] = 0
    anything = {k: (torch.rand(4, n, generator=g) < 0.7).double() for k, n in sizes.items()}  # any mix
    for masks in [removal_masks(sizes, key, list(range(n)), x) for key, n in sizes.items()] + [two_snn1, anything]:
        K = len(masks["snn1"])
        with torch.no_grad():
            spikes, states = masked_copies(net, x, masks)
            rows = {k: m.repeat_interleave(B, 0) for k, m in masks.items()}
            want_spikes, want_states, _ = net.forward_definition(x.repeat(1, K, 1), net.init_hidden(K * B), rows)
        torch.testing.assert_close(spikes, want_spikes, rtol=0, atol=1e-12)
        torch.testing.assert_close(states, want_states, rtol=0, atol=1e-12)
        assert spikes.shape == (T, K * B, 4) and spikes.sum() > 0 and states.shape == (T, K * B, 3)


def test_batched_oracle_equals_the_one_at_a_time_definition_on_every_neuron_and_a_subset():
    net, loss_of, _ = setup(seed=5)
    with torch.no_grad():
        net.snn_fc1[:, 0] = 0  # a silent neuron: removing it changes nothing
    g = torch.Generator().manual_seed(6)
    x, y = torch.rand(T, B, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (T, B), generator=g)
    heldout = lambda m: F.cross_entropy(m(x, m.init_hidden(B))[0].reshape(-1, 3), y.reshape(-1)).item()
    definition = oracle(net, heldout)
    for chunk in (1, 3, 8):
        fast = oracle(net, heldout, heldout_losses=batched(net, x, y, B), chunk=chunk)
        for key in definition:
            torch.testing.assert_close(fast[key], definition[key], rtol=0, atol=1e-12)
        assert fast["snn1"][0].item() == 0.0  # to the last bit: the copies and the loss they are compared with agree
    assert any(v.abs().max() > 1e-3 for v in definition.values())
    subset = oracle_subset(net.population_sizes(), 2, seed=1111)
    assert subset == oracle_subset(net.population_sizes(), 2, seed=1111) != oracle_subset(net.population_sizes(), 2, 2222)
    assert {k: len(v) for k, v in subset.items()} == {k: 2 for k in subset}
    part = oracle(net, heldout, subset, batched(net, x, y, B))
    for key, chosen in subset.items():
        torch.testing.assert_close(part[key][chosen], definition[key][chosen], rtol=0, atol=1e-12)
        assert part[key].isnan().sum() == len(definition[key]) - 2
    assert oracle_subset({"snn1": 3}, 5, seed=0) == {"snn1": [0, 1, 2]}  # a smaller population: all of it


def test_smnist_batched_held_out_losses_equal_evaluate_on_shrunk_networks():
    script = runpy.run_path(os.path.join(ROOT, "experiments", "rnn-smnist-800-0.5-0.6", "rnn-smnist.py"),
                            run_name="criteria_test")
    torch.manual_seed(0)
    model = script["SMNISTModel"]([4, 3], [3, 4]).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(("snn_", "rnn_")):
                p.mul_(3.0)
    g = torch.Generator().manual_seed(1)
    batches = [(torch.rand(5, 1, 28, 28, generator=g, dtype=torch.float64), torch.randint(0, 10, (5,), generator=g))
               for _ in range(2)]
    heldout = lambda m: script["evaluate"](m, batches, "cpu")[1]
    definition = oracle(model, heldout)
    fast = oracle(model, heldout, heldout_losses=lambda masks: script["masked_losses"](model, batches, masks, "cpu"))
    for key in definition:
        torch.testing.assert_close(fast[key], definition[key], rtol=0, atol=1e-12)
    assert all(v.abs().max() > 1e-6 for v in definition.values())
