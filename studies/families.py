"""The families of tests of both studies, declared in one place by rule, not chosen per result: one per question
and dataset (in question 1, its primary comparison, Hessian against random, is a family of its own).
Holm's correction (common/report/inference.py) runs within each family, over every test the family's rule
selects (a width or seed added later joins its family, and every adjusted number of that family changes).

name -> (study, dataset, the tests, the claimed sign of the difference). Differences are written so that > 0
favours the first named side (HSTNN, the Hessian pick, a positive correlation); perplexity differences are
negated (lower is better); 0: the claimed sign is stated per test (the trade-off: energy lower, metric better).
analysis.py, compare.py and tradeoff.py refuse a test whose family is not listed here.
"""

FAMILIES = {
    # the selection-criteria study (studies/criteria/analysis.py), S-MNIST, --protocol val
    "criteria-q1-random": ("criteria", "S-MNIST", "Q1, right after Selection: Hessian pick − random pick (the mean of "
                           "the seed's draws), every width and ratio", +1),
    "criteria-q1-criteria": ("criteria", "S-MNIST", "Q1, right after Selection: Hessian pick − each other criterion's "
                             "pick (reversed, magnitude, trace, taylor, oracle), every width and ratio", +1),
    "criteria-q1-oracle-pick": ("criteria", "S-MNIST", "Q1, right after Selection: the oracle's own pick − random, "
                                "every width and ratio", +1),
    "criteria-q1-agreement": ("criteria", "S-MNIST", "Q1: Spearman correlation of the Hessian importance with the "
                              "oracle (mean of the four populations) against 0, every width", +1),
    "criteria-q1-agreement-by-population": ("criteria", "S-MNIST", "Q1: the same correlation per population (rnn1, "
                                            "rnn2, snn1, snn2) against 0, every width and population", +1),
    "criteria-q2": ("criteria", "S-MNIST", "Q2, after Restoration: Hessian − each other criterion, every ratio", +1),
    "criteria-q2-w800": ("criteria", "S-MNIST", "Q2 at the paper's width (800), after Restoration at ratio 0.5: "
                         "Hessian − random (draw 0) and Hessian − reversed", +1),
    "criteria-q3": ("criteria", "S-MNIST", "Q3: HSTNN (Hessian, and random selection) − ffs at the original, the "
                    "matched-epoch and (where run) the matched-MAC budget, and ffs matched − ffs original, every ratio", +1),
    # the replication study (studies/replication/compare.py), 3 seeds
    "replication-rnn-smnist-ffs": ("replication", "S-MNIST RNN", "HSTNN − ffs, every ratio", +1),
    "replication-rnn-smnist-pure": ("replication", "S-MNIST RNN", "HSTNN − the better pure network, every ratio", +1),
    "replication-rnn-smnist-random-selection": ("replication", "S-MNIST RNN", "Hessian − random right after "
                                                "Selection, every ratio", +1),
    "replication-rnn-smnist-random-restoration": ("replication", "S-MNIST RNN", "Hessian − random after "
                                                  "Restoration, every ratio", +1),
    "replication-lstm-smnist-ffs": ("replication", "S-MNIST LSTM", "HSTNN − ffs, every ratio", +1),
    "replication-lstm-smnist-pure": ("replication", "S-MNIST LSTM", "HSTNN − the better pure network, every ratio", +1),
    "replication-rnn-ptb-real-ffs": ("replication", "PTB", "HSTNN − ffs (perplexity, negated), every ratio", +1),
    "replication-rnn-ptb-real-ffs-matched": ("replication", "PTB", "HSTNN − ffs given as many epochs as Adaptation + "
                                             "Restoration, every ratio where it ran", +1),
    "replication-rnn-ptb-real-ffs-macs": ("replication", "PTB", "HSTNN − ffs given as many training "
                                          "multiply-accumulates as Adaptation + Restoration, every ratio where it ran", +1),
    "replication-rnn-ptb-real-ffs-matched-lr": ("replication", "PTB", "HSTNN − ffs given as many epochs as "
                                                "Adaptation + Restoration on HSTNN's learning-rate schedule, every ratio "
                                                "where it ran", +1),
    "replication-rnn-ptb-real-ffs-macs-lr": ("replication", "PTB", "HSTNN − ffs given as many training "
                                             "multiply-accumulates on HSTNN's learning-rate schedule, every ratio where "
                                             "it ran", +1),
    "replication-rnn-ptb-real-pure": ("replication", "PTB", "HSTNN − the better pure network, every ratio", +1),
    "replication-rnn-ptb-real-random-selection": ("replication", "PTB", "Hessian − random right after Selection, "
                                                  "every ratio", +1),
    "replication-rnn-ptb-real-random-restoration": ("replication", "PTB", "Hessian − random after Restoration, "
                                                    "every ratio", +1),
    # the trade-off (studies/tradeoff.py), from evaluate.py's cost and robustness records
    "tradeoff-smnist": ("tradeoff", "S-MNIST", "per seed: slopes of HSTNN's energy and metric against the ratio; "
                        "HSTNN − ffs and HSTNN − the random pick in metric, energy and each robustness AUC, every ratio", 0),
    "tradeoff-ptb": ("tradeoff", "PTB", "the same for PTB (metric: perplexity, negated)", 0),
}


def family(name):
    """The declared family `name`; a KeyError names the undeclared one."""
    if name not in FAMILIES:
        raise KeyError(f"test family {name!r} is not declared in studies/families.py")
    return FAMILIES[name]
