"""The original README's walkthrough: edit the dicts below as it says and run `python mprun-rnn-ptb.py`.

1. PTB_XNN_Parameter: nhid 120, your seeds, ratio [0], mode "train1" (then "test1"): rnn, snn and
   the HSTNN Adaptation model.
2. PTB_FFS_Parameter: ratio [0.75], i.e. 90 SNNs and 30 RNNs in each layer, trained from scratch.
3. PTB_HBR_Parameter: mode "train2" (Selection + Restoration, then "test2") at the same ratios.
The ratio lists the authors used are below (basic and extended). Every model has input biases
(rnn-ptb.py here is ../rnn-ptb-650-0.5-0.6/rnn-ptb.py with --bias; a dict entry ["no-bias"] = True
trains without them, since a False value is left off the command line). Flags override the launcher
settings: --dry-run, --gpus cpu, --slots 2, --rerun, --stages 3 ... (see --help). The calls run in
order; finished jobs are skipped. Then `python ../../latex-code-gen.py` makes the tables.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from common.launch.launcher import Launcher  # noqa: E402

gpus = 2  # as the original walkthrough: GPUs 0 and 1 ("auto": every visible GPU; []: CPU only)

launcher = Launcher(
    gpus=gpus,
    slots_per_gpu=1,    # jobs sharing one GPU
    cpu_jobs=2,         # parallel jobs without a GPU
    backend="local",    # "local", or "slurm" (one job array per dict; see partition, time_min, mem_gb ...)
    rerun=False,        # True: run again the jobs whose logs are already complete
)
multi_task = launcher.multi_task

path = "./"
seed_list = [1111 * i for i in range(1, 5)]

basic_ratios = [0.05, 0.25, 0.5, 0.75, 0.95]      # the SNN ratios the authors used
extended_ratios = [0.15, 0.35, 0.55, 0.65, 0.85]  # and their extended list
ratio_list = [0.75]                               # the walkthrough's: 90 SNNs and 30 RNNs in each layer

PTB_XNN_Parameter = {}
PTB_XNN_Parameter["stage1_epoch"] = 200
PTB_XNN_Parameter["stage1_lr"]    = 0.5
PTB_XNN_Parameter["stage1_decay"] = 25
PTB_XNN_Parameter["dropout"]      = 0.5
PTB_XNN_Parameter["nhid"]         = 120
PTB_XNN_Parameter["data"]         = "../../data/penn-treebank"
PTB_XNN_Parameter["mode"]         = "train1"    # "train1" trains (and tests); "test1" tests again
PTB_XNN_Parameter["emsize"]       = 650
PTB_XNN_Parameter["bptt"]         = 35
PTB_XNN_Parameter["batch_size"]   = 25
PTB_XNN_Parameter["seed"]         = seed_list
PTB_XNN_Parameter["ratio"]        = [0]
PTB_XNN_Parameter["model"]        = ["rnn", "snn", "hybrid"]

# RNN/SNN-Train/Test and HSTNN-Adaptation-Train/Test
multi_task(path, PTB_XNN_Parameter)

PTB_FFS_Parameter = {}
PTB_FFS_Parameter["stage1_epoch"] = 200
PTB_FFS_Parameter["stage1_lr"]    = 0.5
PTB_FFS_Parameter["stage1_decay"] = 25
PTB_FFS_Parameter["dropout"]      = 0.5
PTB_FFS_Parameter["nhid"]         = 120
PTB_FFS_Parameter["data"]         = "../../data/penn-treebank"
PTB_FFS_Parameter["mode"]         = "train1"    # "train1" trains (and tests); "test1" tests again
PTB_FFS_Parameter["emsize"]       = 650
PTB_FFS_Parameter["bptt"]         = 35
PTB_FFS_Parameter["batch_size"]   = 25
PTB_FFS_Parameter["seed"]         = seed_list
PTB_FFS_Parameter["ratio"]        = ratio_list
PTB_FFS_Parameter["model"]        = ["ffs"]

# FFS-Train/Test
multi_task(path, PTB_FFS_Parameter)

PTB_HBR_Parameter = {}
PTB_HBR_Parameter["stage2_epoch"] = 200
PTB_HBR_Parameter["stage2_lr"]    = 0.1
PTB_HBR_Parameter["stage2_decay"] = 25
PTB_HBR_Parameter["dropout"]      = 0.5
PTB_HBR_Parameter["nhid"]         = 120
PTB_HBR_Parameter["data"]         = "../../data/penn-treebank"
PTB_HBR_Parameter["mode"]         = "train2"    # "train2": Selection + Restoration; "test2" tests again
PTB_HBR_Parameter["emsize"]       = 650
PTB_HBR_Parameter["bptt"]         = 35
PTB_HBR_Parameter["batch_size"]   = 25
PTB_HBR_Parameter["seed"]         = seed_list
PTB_HBR_Parameter["ratio"]        = ratio_list
PTB_HBR_Parameter["model"]        = ["hybrid"]

# HSTNN-Selection/Restoration-Train/Test: needs the Adaptation checkpoints of the first call
multi_task(path, PTB_HBR_Parameter)

launcher.finish()
