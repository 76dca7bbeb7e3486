"""PTB at matched budgets: ffs at every ratio for as many epochs as Adaptation + Restoration (2:
runs/rnn-ptb-real-ffs-matched/, where ratio 0.5 already ran), then, ratio by ratio, for as many as make its
training multiply-accumulates equal HSTNN's (results/studies/budget.csv, from studies/budget.py:
runs/rnn-ptb-real-ffs-macs/). Stage 1 is the epoch match; stages 2-6 the MAC match at 0.1, 0.3, 0.5, 0.7, 0.9.
The learning rate is not matched: ffs trains at stage1_lr 1.0, halved every 2 epochs (stage1_decay 2),
where HSTNN restores at 0.25; the training script gives ffs no second-stage rate."""
import csv
import os

from study import PTB_DATA, ROOT, SEEDS, folder, launcher, need

need(PTB_DATA)
with open(os.path.join(ROOT, "results", "studies", "budget.csv")) as f:
    epochs = {float(r["ratio"]): int(r["mac_matched_epochs"]) for r in csv.DictReader(f) if r["dataset"].startswith("PTB")}
PTB = dict(nhid=30, emsize=60, bptt=35, batch_size=40, dropout=0.2, clip=1.0, hessian_probes=30, data=PTB_DATA,
           seed=SEEDS, stage1_lr=1.0, stage1_decay=2, mode="train1", model=["ffs"])
launcher = launcher("rnn-ptb")
launcher.multi_task(folder("rnn-ptb-real-ffs-matched"), dict(PTB, stage1_epochs=2, ratio=sorted(epochs)))
for ratio, n in sorted(epochs.items()):
    launcher.multi_task(folder("rnn-ptb-real-ffs-macs"), dict(PTB, stage1_epochs=n, ratio=[ratio]))
launcher.finish()
