"""Question 3: hybrids of the final shape trained from scratch (ffs), width 60, at two budgets:
the original's (as many epochs as Adaptation: runs/w60/) and a matched one (as many epochs as Adaptation +
Restoration together: runs/w60-ffs-matched/). Epochs are matched, not FLOPs: an Adaptation epoch runs the
redundant network (twice the neurons per layer), so HSTNN still gets more arithmetic."""
from study import ADAPTATION_EPOCHS, COMMON, DATA, RATIOS, RESTORATION_EPOCHS, SEEDS, folder, launcher, need

need(DATA)
launcher = launcher()
for seed in SEEDS:  # seed-major, as mprun-criteria.py: --stages 1-2 are the first seed's two budgets
    for path, epochs in (("w60", ADAPTATION_EPOCHS), ("w60-ffs-matched", ADAPTATION_EPOCHS + RESTORATION_EPOCHS)):
        launcher.multi_task(folder(path), dict(COMMON, nhid=60, mode="train1", model="ffs", ratio=RATIOS, seed=[seed],
                                               stage1_epochs=epochs))
launcher.finish()
