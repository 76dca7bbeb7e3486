"""PTB at matched budgets: ffs trained for as many epochs as Adaptation + Restoration (2), or for as many as make
its training multiply-accumulates equal HSTNN's (results/studies/budget.csv, from studies/budget.py), on its own
learning-rate schedule or on HSTNN's.
  stage 1       epochs matched, ffs's own schedule (stage1_lr 1.0, halved every 2 epochs): runs/rnn-ptb-real-ffs-matched/
  stages 2-6    MACs matched at 0.1, 0.3, 0.5, 0.7, 0.9, its own schedule: runs/rnn-ptb-real-ffs-macs/
  stages 7-11   MACs matched at 0.1, ..., 0.9 on HSTNN's schedule (--ffs_schedule hstnn: Adaptation's epoch at 1.0,
                then the remaining epochs at Restoration's 0.25, halved every 2): runs/rnn-ptb-real-ffs-macs-lr/
  stage 12      epochs and schedule matched (1 epoch at 1.0, 1 at 0.25) at every ratio: runs/rnn-ptb-real-ffs-matched-lr/"""
import csv
import os

from study import PTB_DATA, ROOT, SEEDS, folder, launcher, need

need(PTB_DATA)
with open(os.path.join(ROOT, "results", "studies", "budget.csv")) as f:
    epochs = {float(r["ratio"]): int(r["mac_matched_epochs"]) for r in csv.DictReader(f) if r["dataset"].startswith("PTB")}
PTB = dict(nhid=30, emsize=60, bptt=35, batch_size=40, dropout=0.2, clip=1.0, hessian_probes=30, data=PTB_DATA,
           seed=SEEDS, stage1_lr=1.0, stage1_decay=2, mode="train1", model=["ffs"])
HSTNN_SCHEDULE = dict(PTB, stage1_epochs=1, stage2_lr=0.25, stage2_decay=2, ffs_schedule="hstnn")
launcher = launcher("rnn-ptb")
launcher.multi_task(folder("rnn-ptb-real-ffs-matched"), dict(PTB, stage1_epochs=2, ratio=sorted(epochs)))
for ratio, n in sorted(epochs.items()):
    launcher.multi_task(folder("rnn-ptb-real-ffs-macs"), dict(PTB, stage1_epochs=n, ratio=[ratio]))
for ratio, n in sorted(epochs.items()):
    launcher.multi_task(folder("rnn-ptb-real-ffs-macs-lr"), dict(HSTNN_SCHEDULE, stage2_epochs=n - 1, ratio=[ratio]))
launcher.multi_task(folder("rnn-ptb-real-ffs-matched-lr"), dict(HSTNN_SCHEDULE, stage2_epochs=1, ratio=sorted(epochs)))
launcher.finish()
