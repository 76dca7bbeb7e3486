"""Every DVS128 Gesture run of the paper: edit the dicts below and run `python mprun-rcnn-dvs-ges.py`.

The seeds and ratios are those of the published results (results/dvsGesture-RNN-*.csv: 5 seeds and the
0.75 row, which the original mprun lacked). Each job needs a GPU with about 7-12 GB (batch 36, 60 frames).
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
seed_list = [1111 * i for i in range(1, 6)]

# What every stage shares: network and batches (the Adaptation and Restoration runs must agree)
DVS_GESTURE_Parameter = {}
DVS_GESTURE_Parameter["dropout"]      = 0.2
DVS_GESTURE_Parameter["batch_size"]   = 36
DVS_GESTURE_Parameter["seed"]         = seed_list

DVS_GESTURE_XNN_Parameter = dict(DVS_GESTURE_Parameter)
DVS_GESTURE_XNN_Parameter["stage1_epoch"] = 6400        # iterations (mini-batches), evaluated every 20: --stage1_epochs
DVS_GESTURE_XNN_Parameter["stage1_lr"]    = 5e-4
DVS_GESTURE_XNN_Parameter["mode"]         = "train1"    # "train1" trains (and tests); "test1" tests again
DVS_GESTURE_XNN_Parameter["ratio"]        = [0]
DVS_GESTURE_XNN_Parameter["model"]        = ["rnn", "snn", "hybrid"]

# RNN/SNN-Train/Test and HSTNN-Adaptation-Train/Test
multi_task(path, DVS_GESTURE_XNN_Parameter)

ratio_list = [0.0625, 0.125, 0.25, 0.375, 0.50, 0.625, 0.75, 0.875, 0.9375]

# FFS-Train/Test: the stage-1 settings above, at every ratio
DVS_GESTURE_FFS_Parameter = dict(DVS_GESTURE_XNN_Parameter, model=["ffs"], ratio=ratio_list)
multi_task(path, DVS_GESTURE_FFS_Parameter)

DVS_GESTURE_HBR_Parameter = dict(DVS_GESTURE_Parameter)
DVS_GESTURE_HBR_Parameter["stage2_epoch"] = 6400        # --stage2_epochs (see DICT_KEY_FLAGS in common/launch/settings.py)
DVS_GESTURE_HBR_Parameter["stage2_lr"]    = 3e-4
DVS_GESTURE_HBR_Parameter["mode"]         = "train2"    # "train2": Selection + Restoration; "test2" tests again
DVS_GESTURE_HBR_Parameter["hessian_batch"] = 18         # the original's trace code hard-coded 18 (and crashed otherwise)
DVS_GESTURE_HBR_Parameter["ratio"]        = ratio_list
DVS_GESTURE_HBR_Parameter["model"]        = ["hybrid"]

# HSTNN-Selection/Restoration-Train/Test: needs the Adaptation checkpoints of the first call
multi_task(path, DVS_GESTURE_HBR_Parameter)

launcher.finish()
