"""Question 2: Selection + Restoration under every criterion, from the same Adaptation per seed (width 60).

Each criterion restores in runs/w60-<criterion>/, which links the Adaptation runs of runs/w60/; random-K is
draw K of --selection random (K = 0, 1, 2).
One multi_task call per seed and criterion, seed by seed (--stages 1-8 are the first seed's criteria, and so on)."""
from study import (COMMON, CRITERIA, DATA, RATIOS, RESTORATION_EPOCHS, SEEDS, criterion_flags, folder, launcher,
                   link_adaptation, need)

need(DATA)
launcher = launcher()
for seed in SEEDS:  # seed-major: a study stopped early has every criterion for the seeds it reached
    for criterion in CRITERIA:
        path = folder(f"w60-{criterion}")
        link_adaptation(folder("w60"), path, SEEDS)
        launcher.multi_task(path, dict(COMMON, nhid=60, mode="train2", model="hybrid", ratio=RATIOS, seed=[seed],
                                       stage2_epochs=RESTORATION_EPOCHS, **criterion_flags(criterion)))
launcher.finish()
