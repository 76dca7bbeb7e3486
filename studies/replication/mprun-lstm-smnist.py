"""Replication study, sequential MNIST with LSTM hybrids (lstm-smnist.py), at laptop scale.

Real digits: 4,000 training and 1,000 test images (the 5,000-digit sample), 60 neurons per layer and
type (paper: 60,000/10,000 digits, 800 neurons), 8 + 5 epochs (paper: 150 + 150; fewer than the RNN
study's 15 + 8 to fit the hour, and LSTMs learn faster than sigmoid RNNs), 50 Hessian probes (paper: 300),
3 seeds and 5 of the published SNN ratios (60 x r and 120 x r are whole numbers for each).
Learning rate 3e-3 (paper: 3e-4) because the runs are 20x shorter. Checkpoints by the original's
protocol (best test accuracy over training), as the published numbers.
No LSTM numbers were published; the pure LSTM is the non-spiking reference.
"""
from study import MNIST_DATA, SEEDS, folder, launcher, need

need(MNIST_DATA)
launcher = launcher("lstm-smnist")
path = folder("lstm-smnist")
ratio_list = [0.05, 0.25, 0.5, 0.75, 0.95]

SMNIST = dict(nhid=60, batch_size=100, clip=0.25, protocol="test", hessian_probes=50, data=MNIST_DATA,
              seed=SEEDS)

# stage 1: the pure networks, ffs (hybrids of the final shape trained from scratch) and HSTNN Adaptation
launcher.multi_task(path, dict(SMNIST, stage1_epochs=8, stage1_lr=3e-3, mode="train1",
                               ratio=ratio_list, model=["hybrid", "lstm", "snn", "ffs"]))
# HSTNN Selection (Hessian traces) + Restoration, from the Adaptation checkpoints
launcher.multi_task(path, dict(SMNIST, stage2_epochs=5, stage2_lr=3e-3, mode="train2",
                               ratio=ratio_list, model=["hybrid"]))
launcher.finish()
