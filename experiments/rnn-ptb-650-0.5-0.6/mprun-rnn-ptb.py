"""Every Penn Treebank run of the paper: edit the dicts below and run `python mprun-rnn-ptb.py`.

Flags override the launcher settings: --dry-run, --gpus 0,1, --slots 2, --rerun, --backend slurm,
--stages 3 ... (see --help). The three calls run in order; finished jobs are skipped.
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
seed_list = [1111 * i for i in range(1, 5)]

# What every stage shares: network, data and batches (the Adaptation and Restoration runs must agree)
PTB_Parameter = {}
PTB_Parameter["dropout"]      = 0.5
PTB_Parameter["nhid"]         = 650
PTB_Parameter["data"]         = "../../data/penn-treebank"
PTB_Parameter["emsize"]       = 650
PTB_Parameter["bptt"]         = 35
PTB_Parameter["batch_size"]   = 25
PTB_Parameter["seed"]         = seed_list

PTB_XNN_Parameter = dict(PTB_Parameter)
PTB_XNN_Parameter["stage1_epoch"] = 200         # the flag --stage1_epochs (see DICT_KEY_FLAGS in common/launch/settings.py)
PTB_XNN_Parameter["stage1_lr"]    = 0.5
PTB_XNN_Parameter["stage1_decay"] = 25
PTB_XNN_Parameter["mode"]         = "train1"    # "train1" trains (and tests); "test1" tests again
PTB_XNN_Parameter["ratio"]        = [0]
PTB_XNN_Parameter["model"]        = ["rnn", "snn", "hybrid"]

# RNN/SNN-Train/Test and HSTNN-Adaptation-Train/Test
multi_task(path, PTB_XNN_Parameter)

ratio_list = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]

# FFS-Train/Test: the stage-1 settings above, at every ratio
PTB_FFS_Parameter = dict(PTB_XNN_Parameter, model=["ffs"], ratio=ratio_list)
multi_task(path, PTB_FFS_Parameter)

PTB_HBR_Parameter = dict(PTB_Parameter)
PTB_HBR_Parameter["stage2_epoch"] = 200         # the flag --stage2_epochs
PTB_HBR_Parameter["stage2_lr"]    = 0.1
PTB_HBR_Parameter["stage2_decay"] = 25
PTB_HBR_Parameter["mode"]         = "train2"    # "train2": Selection + Restoration; "test2" tests again
PTB_HBR_Parameter["ratio"]        = ratio_list
PTB_HBR_Parameter["model"]        = ["hybrid"]

# HSTNN-Selection/Restoration-Train/Test: needs the Adaptation checkpoints of the first call
multi_task(path, PTB_HBR_Parameter)

launcher.finish()
