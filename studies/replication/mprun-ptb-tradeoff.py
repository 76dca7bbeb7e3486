"""The trade-off on PTB (studies/tradeoff.py): the runs of mprun-rnn-ptb.py stages 1 and 2 once more, with the
same flags, so that evaluate.py can count their cost and robustness (the first runs' checkpoints were not kept).
Seed by seed: the Adaptation, ffs at every ratio, the pure RNN and SNN, then Selection + Restoration at every
ratio, all in runs/rnn-ptb-real-tradeoff/ (tradeoff.py counts how many repeat their first run's test number).
Then:
    python evaluate.py both --experiment studies/replication/runs/rnn-ptb-real-tradeoff --all --memory sram \\
        --threads 1 --script experiments/rnn-ptb-650-0.5-0.6/rnn-ptb.py --data studies/replication/data/penn-treebank \\
        --bptt 35 --batch_size 40"""
from study import PTB_DATA, SEEDS, folder, launcher, need

need(PTB_DATA)
launcher = launcher("rnn-ptb")
path = folder("rnn-ptb-real-tradeoff")
ratio_list = [0.1, 0.3, 0.5, 0.7, 0.9]
PTB = dict(nhid=30, emsize=60, bptt=35, batch_size=40, dropout=0.2, clip=1.0, hessian_probes=30, data=PTB_DATA)
for seed in SEEDS:
    launcher.multi_task(path, dict(PTB, stage1_epochs=1, stage1_lr=1.0, stage1_decay=2, mode="train1", seed=[seed],
                                   ratio=ratio_list, model=["hybrid", "rnn", "snn", "ffs"]))
    launcher.multi_task(path, dict(PTB, stage2_epochs=1, stage2_lr=0.25, stage2_decay=2, mode="train2", seed=[seed],
                                   ratio=ratio_list, model=["hybrid"]))
launcher.finish()
