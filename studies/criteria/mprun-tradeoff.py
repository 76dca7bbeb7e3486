"""The trade-off at width 60 (studies/tradeoff.py): the study's width-60 runs once more, with the flags of
mprun-adaptation.py, mprun-criteria.py and mprun-ffs.py, so that evaluate.py can count their cost and robustness
(the first runs' checkpoints were not kept). On the CPU with one thread a run repeats its first run's log line
for line (tradeoff.py counts how many do). Seed by seed: the Adaptation, ffs at the original budget and the pure
RNN and SNN (runs/tradeoff-w60/), then Restoration under the Hessian and the random-0 pick
(runs/tradeoff-w60-hessian/, runs/tradeoff-w60-random-0/, linking the seed's Adaptation): --stages 1-5 are the
first seed's. Then, per folder:
    python evaluate.py both --experiment studies/criteria/runs/<folder> --all --memory sram --threads 1 \\
        --script experiments/rnn-smnist-800-0.5-0.6/rnn-smnist.py --data studies/criteria/data"""
from study import (ADAPTATION_EPOCHS, COMMON, DATA, RATIOS, RESTORATION_EPOCHS, SEEDS, criterion_flags, folder,
                   launcher, link_adaptation, need)

need(DATA)
launcher = launcher()
trained = folder("tradeoff-w60")
for seed in SEEDS:
    launcher.multi_task(trained, dict(COMMON, nhid=60, mode="train1", model="hybrid", ratio=0.5, seed=[seed],
                                      stage1_epochs=ADAPTATION_EPOCHS))
    launcher.multi_task(trained, dict(COMMON, nhid=60, mode="train1", model="ffs", ratio=RATIOS, seed=[seed],
                                      stage1_epochs=ADAPTATION_EPOCHS))
    launcher.multi_task(trained, dict(COMMON, nhid=60, mode="train1", model=["rnn", "snn"], ratio=0.5, seed=[seed],
                                      stage1_epochs=ADAPTATION_EPOCHS))
    for criterion in ("hessian", "random-0"):
        path = folder(f"tradeoff-w60-{criterion}")
        link_adaptation(trained, path, [seed])
        launcher.multi_task(path, dict(COMMON, nhid=60, mode="train2", model="hybrid", ratio=RATIOS, seed=[seed],
                                       stage2_epochs=RESTORATION_EPOCHS, **criterion_flags(criterion)))
launcher.finish()
