"""Selection criteria (common.criteria): each score against a computation by hand from the same traces,
the random draws, the oracle against masking, and --selection through hessian_selection and the script."""
import csv
import logging
import os

import pytest
import torch
import torch.nn.functional as F

from common.criteria import CRITERIA, oracle, random_scores, ranking, score_table
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
