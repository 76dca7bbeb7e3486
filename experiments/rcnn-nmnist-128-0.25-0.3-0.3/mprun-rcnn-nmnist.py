"""Every N-MNIST run: edit the dicts below and run `python mprun-rcnn-nmnist.py`.

Seeds, ratios and epochs are those of the original mprun-rnn-nmnist.py (which had every call commented
out; no N-MNIST results were published). Flags override the launcher settings: --dry-run, --gpus 0,1,
--slots 2, --rerun, --backend slurm, --stages 3 ... (see --help). The three calls run in order; finished
jobs are skipped.
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
seed_list = [1111 * i for i in range(2, 5)]

# What every stage shares: data and batches (the Adaptation and Restoration runs must agree)
NMNIST_Parameter = {}
NMNIST_Parameter["dropout"]      = 0.2
NMNIST_Parameter["data"]         = "../../data/N-MNIST/processed"
NMNIST_Parameter["batch_size"]   = 100
NMNIST_Parameter["seed"]         = seed_list

NMNIST_XNN_Parameter = dict(NMNIST_Parameter)
NMNIST_XNN_Parameter["stage1_epoch"] = 100         # the flag --stage1_epochs (see DICT_KEY_FLAGS in common/launch/settings.py)
NMNIST_XNN_Parameter["stage1_lr"]    = 8e-4
NMNIST_XNN_Parameter["mode"]         = "train1"    # "train1" trains (and tests); "test1" tests again
NMNIST_XNN_Parameter["ratio"]        = [0]
NMNIST_XNN_Parameter["model"]        = ["rnn", "snn", "hybrid"]

# RNN/SNN-Train/Test and HSTNN-Adaptation-Train/Test
multi_task(path, NMNIST_XNN_Parameter)

ratio_list = [0.0625, 0.125, 0.25, 0.375, 0.50, 0.625, 0.75, 0.875, 0.9375]

# FFS-Train/Test: the stage-1 settings above, at every ratio
NMNIST_FFS_Parameter = dict(NMNIST_XNN_Parameter, model=["ffs"], ratio=ratio_list)
multi_task(path, NMNIST_FFS_Parameter)

NMNIST_HBR_Parameter = dict(NMNIST_Parameter)
NMNIST_HBR_Parameter["stage2_epoch"] = 150         # the flag --stage2_epochs
NMNIST_HBR_Parameter["stage2_lr"]    = 8e-4
NMNIST_HBR_Parameter["mode"]         = "train2"    # "train2": Selection + Restoration; "test2" tests again
NMNIST_HBR_Parameter["ratio"]        = ratio_list
NMNIST_HBR_Parameter["model"]        = ["hybrid"]

# HSTNN-Selection/Restoration-Train/Test: needs the Adaptation checkpoints of the first call
multi_task(path, NMNIST_HBR_Parameter)

launcher.finish()
