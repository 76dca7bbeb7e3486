"""Every sequential-MNIST run of the paper: edit the dicts below and run `python mprun-rnn-smnist.py`.

Seeds and ratios are those of the published tables (results/mnist-RNN-{ffs,hybrid}.csv: seeds
1111-5555 and the ratio 0.5 included); the authors' committed mprun listed 4 seeds and no 0.5.
Prepare MNIST first (`python data/smnist-dataset-gen.py` from the repository root).

PROTOCOL "test" selects every checkpoint by its best test accuracy over training, as the original
did (that is what the published numbers mean); "val" selects it on 5000 held-out training images and
uses the test set once. Run the two protocols in separate folders: their file names are the same.

Flags override the launcher settings: --dry-run, --gpus 0,1, --slots 2, --rerun, --backend slurm,
--stages 4,5,6 ... (see --help). The calls run in order; finished jobs are skipped.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from common.launch.launcher import Launcher  # noqa: E402

launcher = Launcher(
    gpus="auto",        # GPU ids such as [0, 1]; "auto": every visible GPU; []: CPU only
    slots_per_gpu=1,    # jobs sharing one GPU
    cpu_jobs=2,         # parallel jobs without a GPU
    backend="local",    # "local", or "slurm" (one job array per dict; see partition, time_min, mem_gb ...)
    rerun=False,        # True: run again the jobs whose logs are already complete
)
multi_task = launcher.multi_task

path = "./"
seed_list = [1111 * i for i in range(1, 6)]
PROTOCOL = "test"       # "test": the original's checkpoint selection; "val": held-out validation images

# What every stage shares: network, data, batches and protocol (the Adaptation and Restoration runs must agree)
SMNIST_Parameter = {}
SMNIST_Parameter["dropout"]      = 0.3       # accepted and unused, as in the original
SMNIST_Parameter["nhid"]         = 800
SMNIST_Parameter["data"]         = "../../data"
SMNIST_Parameter["batch_size"]   = 100
SMNIST_Parameter["clip"]         = 0.25
SMNIST_Parameter["protocol"]     = PROTOCOL
SMNIST_Parameter["seed"]         = seed_list

SMNIST_XNN_Parameter = dict(SMNIST_Parameter)
SMNIST_XNN_Parameter["stage1_epoch"] = 150         # the flag --stage1_epochs (see DICT_KEY_FLAGS in common/launch/settings.py)
SMNIST_XNN_Parameter["stage1_lr"]    = 3e-4
SMNIST_XNN_Parameter["mode"]         = "train1"    # "train1" trains (and tests); "test1" tests again
SMNIST_XNN_Parameter["ratio"]        = [0]
SMNIST_XNN_Parameter["model"]        = ["rnn", "snn", "hybrid"]

# RNN/SNN-Train/Test and HSTNN-Adaptation-Train/Test
multi_task(path, SMNIST_XNN_Parameter)

ratio_list = [0.05, 0.15, 0.25, 0.35, 0.45, 0.50, 0.55, 0.65, 0.75, 0.85, 0.95]

# FFS-Train/Test: the stage-1 settings above, at every ratio
SMNIST_FFS_Parameter = dict(SMNIST_XNN_Parameter, model=["ffs"], ratio=ratio_list)
multi_task(path, SMNIST_FFS_Parameter)

SMNIST_HBR_Parameter = dict(SMNIST_Parameter)
SMNIST_HBR_Parameter["stage2_epoch"] = 150         # the flag --stage2_epochs
SMNIST_HBR_Parameter["stage2_lr"]    = 3e-4
SMNIST_HBR_Parameter["mode"]         = "train2"    # "train2": Selection + Restoration; "test2" tests again
SMNIST_HBR_Parameter["ratio"]        = ratio_list
SMNIST_HBR_Parameter["model"]        = ["hybrid"]

# HSTNN-Selection/Restoration-Train/Test: needs the Adaptation checkpoints of the first call
multi_task(path, SMNIST_HBR_Parameter)

# The test logs (log/test_*.log) that latex-code-gen.py reads, as the original's test1/test2 runs
for parameters in (SMNIST_XNN_Parameter, SMNIST_FFS_Parameter, SMNIST_HBR_Parameter):
    multi_task(path, dict(parameters, mode=parameters["mode"].replace("train", "test")))

launcher.finish()
