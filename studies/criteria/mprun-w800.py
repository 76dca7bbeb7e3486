"""The paper's width (800 neurons per type and layer): for one seed after the other, the Adaptation (runs/w800/)
and question 2 at ratio 0.5 for hessian, random-0 and reversed (runs/w800-<criterion>/, linking the seed's
Adaptation), so that a study stopped early has every criterion for the seeds it reached: --stages 1-4 are the
first seed's Adaptation and its three criteria, and so on. Both stages learn at WIDE_LR (study.py), not at the
other widths' rate. Question 1 at this width is no_retraining.py --widths 800 afterwards (or between seeds: it
takes the Adaptations that are finished)."""
from study import (ADAPTATION_EPOCHS, COMMON, DATA, RESTORATION_EPOCHS, WIDE, WIDE_CRITERIA, WIDE_LR, WIDE_RATIO,
                   WIDTH_SEEDS, criterion_flags, folder, launcher, link_adaptation, need)

need(DATA)
launcher = launcher()
adaptation = folder(f"w{WIDE}")
wide = dict(COMMON, nhid=WIDE, model="hybrid", stage1_lr=WIDE_LR, stage2_lr=WIDE_LR)
for seed in WIDTH_SEEDS[WIDE]:
    launcher.multi_task(adaptation, dict(wide, mode="train1", ratio=0.5, seed=[seed], stage1_epochs=ADAPTATION_EPOCHS))
    for criterion in WIDE_CRITERIA:
        path = folder(f"w{WIDE}-{criterion}")
        link_adaptation(adaptation, path, [seed])
        launcher.multi_task(path, dict(wide, mode="train2", ratio=WIDE_RATIO, seed=[seed], stage2_epochs=RESTORATION_EPOCHS,
                                       **criterion_flags(criterion)))
launcher.finish()
