"""Replication study, Penn Treebank with sigmoid-RNN hybrids, at laptop scale, on the real splits.

The models train on the PTB training text (929,589 tokens with the end-of-sentence marks), select
checkpoints on the validation text and are tested once on the test text (the three published files;
the vocabulary is their 10,000 words). 30 neurons per layer and type and a 60-wide embedding (paper:
650 and 650), 1 + 1 epochs (paper: 200 + 200), SGD with momentum as the original at lr 1.0 (paper:
0.5 halved every 25) and 0.25 for Restoration (paper: 0.1), batch 40 (paper: 25), dropout 0.2 (paper:
0.5), 30 Hessian probes (paper: 300), 3 seeds and the SNN ratios 0.1, 0.3, 0.5, 0.7, 0.9 (what two CPU cores
allow in about an hour and a half; add ratios to ratio_list and rerun: finished runs are skipped). ffs gets
as many epochs as Adaptation (1), HSTNN one more (Restoration). The runs go to runs/rnn-ptb-real/.
"""
from study import PTB_DATA, SEEDS, folder, launcher, need, share_stage1

need(PTB_DATA)
launcher = launcher("rnn-ptb")
path = folder("rnn-ptb-real")
ratio_list = [0.1, 0.3, 0.5, 0.7, 0.9]

PTB = dict(nhid=30, emsize=60, bptt=35, batch_size=40, dropout=0.2, clip=1.0, hessian_probes=30, data=PTB_DATA,
           seed=SEEDS)

# stage 1: the pure networks, ffs (hybrids of the final shape trained from scratch) and HSTNN Adaptation
launcher.multi_task(path, dict(PTB, stage1_epochs=1, stage1_lr=1.0, stage1_decay=2, mode="train1",
                               ratio=ratio_list, model=["hybrid", "rnn", "snn", "ffs"]))
# HSTNN Selection (Hessian traces) + Restoration, from the Adaptation checkpoints
launcher.multi_task(path, dict(PTB, stage2_epochs=1, stage2_lr=0.25, stage2_decay=2, mode="train2",
                               ratio=ratio_list, model=["hybrid"]))
# ffs at the matched budget: as many epochs as Adaptation + Restoration (2), in a folder of its own
launcher.multi_task(folder("rnn-ptb-real-ffs-matched"), dict(PTB, stage1_epochs=2, stage1_lr=1.0, stage1_decay=2,
                                                              mode="train1", ratio=[0.5], model=["ffs"]))
# Ablation: the same Selection counts and rule with random instead of Hessian scores, in a folder of its
# own that shares this folder's stage-1 runs (links), so its tables show the same rnn/snn/ffs rows
ablation = folder("rnn-ptb-real-random-selection")
share_stage1(path, ablation, "ptb", SEEDS)
launcher.multi_task(ablation, dict(PTB, stage2_epochs=1, stage2_lr=0.25, stage2_decay=2, mode="train2", selection="random",
                               ratio=ratio_list, model=["hybrid"]))
launcher.finish()
