"""Question 3 at a compute-matched budget: ffs (width 60) trained for as many epochs as make its training
multiply-accumulates equal HSTNN's (Adaptation + Restoration), per ratio, from results/studies/budget.csv
(studies/budget.py: the epochs are counted from the network shapes). Runs go to runs/w60-ffs-macs/."""
import csv
import os

from study import COMMON, DATA, RATIOS, ROOT, SEEDS, folder, launcher, need

need(DATA)
with open(os.path.join(ROOT, "results", "studies", "budget.csv")) as f:
    epochs = {float(r["ratio"]): int(r["mac_matched_epochs"]) for r in csv.DictReader(f) if r["dataset"].startswith("S-MNIST")}
launcher = launcher()
for seed in SEEDS:
    for ratio in RATIOS:
        launcher.multi_task(folder("w60-ffs-macs"), dict(COMMON, nhid=60, mode="train1", model="ffs", ratio=[ratio],
                                                         seed=[seed], stage1_epochs=epochs[ratio]))
launcher.finish()
