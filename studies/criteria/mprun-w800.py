"""The paper's width (800 neurons per type and layer): for one seed after the other, the Adaptation (runs/w800/)
and question 2 at ratio 0.5 for hessian, random-0 and reversed (runs/w800-<criterion>/, linking the seed's
Adaptation), so that a study stopped early has every criterion for the seeds it reached: --stages 1-4 are the
first seed's Adaptation and its three criteria, and so on. Question 1 at this width is no_retraining.py
--widths 800 afterwards (or between seeds: it takes the Adaptations that are finished)."""
from study import (ADAPTATION_EPOCHS, COMMON, DATA, RESTORATION_EPOCHS, WIDE, WIDE_CRITERIA, WIDE_RATIO, WIDTH_SEEDS,
                   criterion_flags, folder, launcher, link_adaptation, need)

need(DATA)
launcher = launcher()
adaptation = folder(f"w{WIDE}")
for seed in WIDTH_SEEDS[WIDE]:
    launcher.multi_task(adaptation, dict(COMMON, nhid=WIDE, mode="train1", model="hybrid", ratio=0.5, seed=[seed],
                                         stage1_epochs=ADAPTATION_EPOCHS))
    for criterion in WIDE_CRITERIA:
        path = folder(f"w{WIDE}-{criterion}")
        link_adaptation(adaptation, path, [seed])
        launcher.multi_task(path, dict(COMMON, nhid=WIDE, mode="train2", model="hybrid", ratio=WIDE_RATIO, seed=[seed],
                                       stage2_epochs=RESTORATION_EPOCHS, **criterion_flags(criterion)))
launcher.finish()
