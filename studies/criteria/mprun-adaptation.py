"""Stage 1 of the study: HSTNN Adaptation (the redundant hybrid) at every width but WIDE (mprun-w800.py), the
seeds of each width."""
from study import ADAPTATION_EPOCHS, COMMON, DATA, WIDE, WIDTH_SEEDS, WIDTHS, folder, launcher, need

need(DATA)
launcher = launcher()
for width in [w for w in WIDTHS if w != WIDE]:
    launcher.multi_task(folder(f"w{width}"), dict(COMMON, nhid=width, mode="train1", model="hybrid", ratio=0.5,
                                                  stage1_epochs=ADAPTATION_EPOCHS,
                                                  seed=WIDTH_SEEDS[width]))
launcher.finish()
