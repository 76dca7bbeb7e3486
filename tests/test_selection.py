import pytest

from common.selection import SelectionError, neuron_count, rank, select_fc


def test_neuron_count_rounds_float_error_and_refuses_fractions():
    assert neuron_count(650, 0.7, "x") == 455          # 454.99999999999994 in floats
    assert neuron_count(650, 0.7, "x", truncate=True) == 454  # the original int()
    assert neuron_count(1300, 1 - 0.3, "x") == 910
    assert neuron_count(1600, 0.55, "x") == 880
    with pytest.raises(SelectionError, match="not a whole number"):
        neuron_count(10, 0.33, "SNN neurons")


def test_rank_is_descending_with_ties_in_reverse_index_order():
    assert rank([0.5, 0.9, 0.5, 0.1]) == [1, 2, 0, 3]


def test_global_ranking_per_type_across_layers():
    imp = {"rnn1": [0.9, 0.1, 0.8], "rnn2": [0.7, 0.2, 0.3], "snn1": [0.5, 0.4], "snn2": [0.6, 0.01]}
    keep = select_fc(imp, ratio=0.5)
    # RNN: keep 6*0.5 = 3 of [0.9, 0.1, 0.8 | 0.7, 0.2, 0.3] -> 0.9, 0.8 (layer 1), 0.7 (layer 2)
    assert keep["rnn1"] == [0, 2] and keep["rnn2"] == [0]
    # SNN: keep 4*0.5 = 2 -> 0.6 (layer 2), 0.5 (layer 1)
    assert keep["snn1"] == [0] and keep["snn2"] == [0]


def test_swap_rule_keeps_one_neuron_of_a_type_in_each_layer():
    imp = {"rnn1": [0.9, 0.8, 0.7, 0.6], "rnn2": [0.1, 0.3, 0.2, 0.05], "snn1": [1, 1, 1, 1], "snn2": [1, 1, 1, 1]}
    keep = select_fc(imp, ratio=0.5)
    # RNN top-4 would all be layer 1; the least important pick (0.6) is swapped for layer 2's best (0.3)
    assert keep["rnn1"] == [0, 1, 2] and keep["rnn2"] == [1]


def test_edge_cases_zero_and_one_kept_neuron():
    imp = {"rnn1": [0.9, 0.8], "rnn2": [0.1, 0.3], "snn1": [0.5, 0.4], "snn2": [0.6, 0.2]}
    keep = select_fc(imp, ratio=0.25)  # 1 SNN (nothing to swap), 3 RNN
    assert keep["snn1"] == [] and keep["snn2"] == [0]
    assert keep["rnn1"] == [0, 1] and keep["rnn2"] == [1]
    # the original crashed with IndexError when a type kept 0 neurons; a pure population is fine
    pure = select_fc({"rnn1": [0.9, 0.8], "rnn2": [0.1, 0.3]}, ratio=0.5)
    assert pure["snn1"] == pure["snn2"] == [] and pure["rnn1"] == [0] and pure["rnn2"] == [1]
    with pytest.raises(SelectionError, match="no neuron at all in layer 1"):
        select_fc({"rnn1": [0.1], "rnn2": [0.9], "snn1": [0.1], "snn2": [0.9]}, ratio=0.5)


def test_counts_match_the_papers_table_for_ptb_650():
    imp = {k: [float(i % 7) for i in range(650)] for k in ("rnn1", "rnn2", "snn1", "snn2")}
    for ratio, rnn, snn in [(0.1, 1170, 130), (0.3, 910, 390), (0.5, 650, 650), (0.9, 130, 1170)]:
        keep = select_fc(imp, ratio)
        assert len(keep["rnn1"]) + len(keep["rnn2"]) == rnn
        assert len(keep["snn1"]) + len(keep["snn2"]) == snn
    keep = select_fc(imp, 0.3, truncate=True)  # the original's count
    assert len(keep["rnn1"]) + len(keep["rnn2"]) == 909
