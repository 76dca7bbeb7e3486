"""Hybrid spatiotemporal networks on DVS128 Gesture (11 gestures, event camera).

Three conv layers (128, 256, 384 base channels), each an RCNN population y = tanh(fc(x) + relu(fv(y)))
and an SCNN population of LIF neurons (decay 0.3, threshold 0.5, surrogate half-width 0.5) side by side;
60 frames of 20 ms at 32x32 (the 128x128 sensor downsampled by 4). MSE on one-hot targets, Adam.
As in the original, one "epoch" in the flags and logs is ONE mini-batch, the net is evaluated every
--test_interval (20) iterations on all 288 test gestures, and the best checkpoint is the one with the
highest test accuracy.

    python rcnn-dvs-ges.py --model rnn    --mode train1                # baselines: rnn, snn
    python rcnn-dvs-ges.py --model ffs    --mode train1 --ratio 0.5    # hybrid trained from scratch
    python rcnn-dvs-ges.py --model hybrid --mode train1                # HSTNN stage 1: Adaptation
    python rcnn-dvs-ges.py --model hybrid --mode train2 --ratio 0.5    # stages 2 and 3: Selection, Restoration
    python rcnn-dvs-ges.py --model hybrid --mode test2  --ratio 0.5    # re-test a saved model (test1 likewise)
    python rcnn-dvs-ges.py --channels 8,16,24 --nwin 10 --stage1_epochs 40 ...   # a small run on a CPU

Data: the HDF5 file of data/dvs-hdf5-gen.py. Files (relative to this folder): log/{train,test}_<name>.log,
checkpoint/<name>.t7, traces/, with <name> = dvsGesture_<model>_<seed>[_<ratio>].
"""
import itertools
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from common.cli import check_args, conv_parser, conv_populations, start_run
from common.data.event_data import DEFAULT_DVS_HDF5, DVSGesture
from common.data.events import DVS_SENSOR, DataError
from common.hybrid_conv import accuracy, checkpoint_meta, log_channels, network_from_checkpoint, new_network
from common.progress import epoch_bar
from common.selection import select_conv
from common.stages import select_filters
from common.training import Checkpoint, KitError, log_test_block, run_main, save_resume_point

DATASET = "dvsGesture"  # the first part of every run name
NEURON = dict(decay=0.3, thresh=0.5, lens=0.5, rcnn="tanh")  # LIF constants and RCNN update of this experiment
NCLASS = 11
WIDTH = 83  # width of the log rules

parser = conv_parser("HSTNN on DVS128 Gesture", default_nwin=60)
parser.add_argument("--dt", type=int, default=20000, help="frame length in microseconds")
parser.add_argument("--ds", type=int, default=4, help="spatial downsampling of the 128x128 sensor (4: 32x32 frames)")
parser.add_argument("--binning", type=str, default="original", choices=("original", "corrected"),
                    help="original: dcll's frames (frame 0 empty, last bin dropped, int8 counts that wrap above 127); "
                         "corrected: frame i holds the events of [t0 + i*dt, t0 + (i+1)*dt), int16 counts")
parser.add_argument("--test_interval", type=int, default=20,
                    help="training iterations (mini-batches) between evaluations on the test set")
parser.add_argument("--no_frame_cache", action="store_true",
                    help="bin the events in memory only (otherwise the frames are kept in a .npy beside the HDF5 "
                         "file, for later runs)")
parser.set_defaults(data=DEFAULT_DVS_HDF5, batch_size=72, stage1_epochs=3600, stage2_epochs=3600,
                    stage1_lr=5e-4, stage2_lr=5e-4, dropout=0.2, clip=0.25, log_interval=30)
# --stage1_epochs/--stage2_epochs count iterations (mini-batches), as the original's "epochs";
# --dropout, --clip and --log-interval are accepted and unused, as in the original.


###############################################################################
# Data
###############################################################################
def check_flags(args):
    """Every flag's range, before any data are read (KitError)."""
    check_args(args)
    if args.max_batches is not None:
        raise KitError("--max_batches: an epoch of this script is already one mini-batch; shorten a run with "
                       "--stage1_epochs/--stage2_epochs (iterations) and --test_interval")


def load_data(args, device):
    """The recordings, binned into frames (on the CPU; batches move to `device` as they are used)."""
    path = os.path.join(args.data, "dvs_gestures_events.hdf5") if os.path.isdir(args.data) else args.data
    if args.ds < 1 or DVS_SENSOR % args.ds:
        raise KitError(f"--ds must divide {DVS_SENSOR} (got {args.ds})")
    if args.dt < 1:
        raise KitError(f"--dt must be a positive number of microseconds (got {args.dt})")
    try:
        data = DVSGesture(path, T=args.nwin, dt=args.dt, ds=args.ds, binning=args.binning,
                          cache=not args.no_frame_cache)
    except DataError as e:
        raise KitError(str(e))
    for flag in ("batch_size", "hessian_batch"):
        if getattr(args, flag) > data.n_train_files:
            raise KitError(f"--{flag} {getattr(args, flag)} is larger than the {data.n_train_files} training "
                           f"recordings: a batch draws distinct recordings, as dcll does")
    return data


###############################################################################
# Training and evaluation
###############################################################################
def evaluate(model, data, args):
    """Accuracy (%) over every test gesture (a quick run's --eval_batches: the first ones), in batches of
    --batch_size."""
    model.eval()
    device = next(model.parameters()).device
    correct = total = 0
    with torch.no_grad():
        for inputs, targets in itertools.islice(data.test_batches(args.batch_size), args.eval_batches):
            predicted = model(inputs.to(device)).argmax(1).cpu()
            correct += (predicted == targets.argmax(1)).sum().item()
            total += len(targets)
    return accuracy(correct, total)


def model_from_checkpoint(ckpt, path, args, device):
    """Rebuild a network from a checkpoint of this kit or of the authors' script."""
    return network_from_checkpoint(ckpt, path, NEURON, DVS_SENSOR // args.ds, device)


def test_metric(model, data, args):
    """The number of the final test block: accuracy (%) on the test gestures."""
    return evaluate(model, data, args)


def test(model, data, args, logger):
    log_test_block(logger, "| Performance on Test Set | test acc {:.5f}".format(evaluate(model, data, args)), WIDTH)


def train(model, data, stage, run, args):
    """Stage 1 (train1) or Restoration (train2): Adam with a constant learning rate, one random batch of
    distinct recordings per iteration, evaluation every --test_interval iterations, best by test accuracy."""
    iterations, lr = (args.stage1_epochs, args.stage1_lr) if stage == 1 else (args.stage2_epochs, args.stage2_lr)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rounds = iterations // args.test_interval  # one epoch of the checkpoint = test_interval iterations
    if iterations % args.test_interval:
        print(f"note: the last {iterations % args.test_interval} iterations are never evaluated and are skipped")
    ckpt = Checkpoint(run.checkpoint_path, checkpoint_meta(model, args.seed), "test_acc_record", keep="highest",
                      resume=run.resume)
    round_start = time.time()
    start = ckpt.restore(model, optimizer)
    for r in epoch_bar(range(start, rounds + 1)):
        model.train()
        for _ in range(args.test_interval):
            inputs, targets = data.train_batch(args.batch_size, np.random)
            optimizer.zero_grad()
            loss = F.mse_loss(model(inputs.to(run.device)), targets.to(run.device))
            loss.backward()
            optimizer.step()
        acc = evaluate(model, data, args)
        run.logger.info("-" * WIDTH)
        run.logger.info("| end of epoch {:3d} | time: {:5.2f}s | train loss {:.5f} | test acc {:.3f}%".format(
            r * args.test_interval, time.time() - round_start, loss.item(), acc))  # the round's last batch
        run.logger.info("-" * WIDTH)
        round_start = time.time()
        ckpt.end_epoch(r, acc, loss=loss.item())
    test(ckpt.finish(), data, args, run.logger)


###############################################################################
# The three stages
###############################################################################
def main():
    run = start_run(parser, check_flags, DATASET, load_data, conv_populations, select_conv,
                    iterations_per_epoch=lambda args: args.test_interval)
    args, data, logger, device = run.args, run.data, run.logger, run.device
    if args.mode in ("test1", "test2"):  # re-test a saved model
        return run.retest(model_from_checkpoint, lambda model: test(model, data, args, logger))
    model = run.resumed_model(model_from_checkpoint)  # an interrupted training continues (None otherwise)

    if args.mode == "train1":  # baselines, ffs, or HSTNN Adaptation (the redundant hybrid)
        if model is None:
            model = new_network(args, 2, data.size, NCLASS, NEURON, device)
        log_channels(logger, model)
        train(model, data, 1, run, args)

    elif args.mode == "train2":  # HSTNN Selection + Restoration
        if model is None:  # Selection
            adapted, _, model = run.adaptation(model_from_checkpoint)
            test(model, data, args, logger)  # the redundant network before selection
            inputs, targets = data.train_batch(args.hessian_batch, np.random)  # one random training batch
            inputs, targets = inputs.to(device), targets.to(device)
            keep = select_filters(model, lambda: F.mse_loss(model(inputs), targets), (inputs, targets), args,
                                  adapted, DATASET, run.name, logger)
            model = model.shrunk(keep)
            save_resume_point(model, run.checkpoint_path, checkpoint_meta(model, args.seed))  # a rerun continues here
            test(model, data, args, logger)  # the selected network before restoration
        train(model, data, 2, run, args)

    run.finish()  # the record that says this run finished: its very last act


if __name__ == "__main__":
    run_main(main)
