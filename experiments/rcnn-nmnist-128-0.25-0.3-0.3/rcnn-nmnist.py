"""Hybrid spatiotemporal networks on N-MNIST (10 digits, event camera).

Three conv layers (128, 256, 384 base channels; the first conv unpadded: 34x34 -> 32x32), each an RCNN
population y = relu(fc(x) + fv(y)) and an SCNN population of LIF neurons (decay 0.3, threshold 0.3,
surrogate half-width 0.25) side by side; 15 frames of 3 ms. MSE on one-hot targets, Adam, gradient
clipping 0.25; the net is evaluated on the test set after every epoch and the best checkpoint is the one
with the highest test accuracy, as in the original.

    python rcnn-nmnist.py --model rnn    --mode train1                # baselines: rnn, snn
    python rcnn-nmnist.py --model ffs    --mode train1 --ratio 0.5    # hybrid trained from scratch
    python rcnn-nmnist.py --model hybrid --mode train1                # HSTNN stage 1: Adaptation
    python rcnn-nmnist.py --model hybrid --mode train2 --ratio 0.5    # stages 2 and 3: Selection, Restoration
    python rcnn-nmnist.py --model hybrid --mode test2  --ratio 0.5    # re-test a saved model (test1 likewise)
    python rcnn-nmnist.py --channels 8,16,24 --nwin 5 --stage1_epochs 2 ...   # a small run on a CPU

Data: <data>/<dt>ms/{nhtrain,nrtest}_{image,label}.npy from data/nmnist-dataset-gen.py. Files (relative
to this folder): log/{train,test}_<name>.log, checkpoint/<name>.t7, traces/, with
<name> = nmnist_<model>_<seed>[_<ratio>].
"""
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from common.cli import check_args, conv_parser, conv_populations, start_run
from common.data.event_data import DEFAULT_NMNIST_ROOT, NMNISTFrames
from common.data.events import NMNIST_SENSOR, DataError
from common.hybrid_conv import accuracy, checkpoint_meta, log_channels, network_from_checkpoint, new_network
from common.progress import epoch_bar
from common.quick import first_batches
from common.selection import select_conv
from common.stages import select_filters
from common.training import Checkpoint, KitError, log_test_block, run_main, save_resume_point

DATASET = "nmnist"  # the first part of every run name
NEURON = dict(decay=0.3, thresh=0.3, lens=0.25, rcnn="relu")  # LIF constants and RCNN update of this experiment
NCLASS = 10
WIDTH = 83  # width of the log rules

parser = conv_parser("HSTNN on N-MNIST", default_nwin=15)
parser.add_argument("--dt", type=int, default=3, help="frame length in ms: the data are read from <data>/<dt>ms/")
parser.set_defaults(data=DEFAULT_NMNIST_ROOT, batch_size=100, stage1_epochs=100, stage2_epochs=100,
                    stage1_lr=8e-4, stage2_lr=8e-4, dropout=0.2, clip=0.25, log_interval=100)
# --dropout is accepted and unused, as in the original.


###############################################################################
# Data
###############################################################################
def check_flags(args):
    """Every flag's range, before any data are read (KitError)."""
    check_args(args)


def load_data(args, device):
    """(train loader, test loader) of the first floor(N/100)*100 samples of each split, the first --nwin frames
    (on the CPU; batches move to `device` as they are used); a quick run's --max_batches/--eval_batches limit
    their batches per pass."""
    try:
        train_set, test_set = (NMNISTFrames(args.data, args.dt, train=split, nwin=args.nwin, multiple=100)
                               for split in (True, False))
    except DataError as e:
        raise KitError(str(e))
    return first_batches(loader(train_set, args.batch_size, True), args.max_batches), \
        first_batches(loader(test_set, args.batch_size, False), args.eval_batches)


def loader(dataset, batch_size, train):
    """Batches of batch_size, incomplete last batch dropped; shuffled for training."""
    if batch_size > len(dataset):
        raise KitError(f"batch size {batch_size} is larger than the {len(dataset)} samples of the "
                       f"{'train' if train else 'test'} set (the last incomplete batch is dropped)")
    return DataLoader(dataset, batch_size=batch_size, shuffle=train, drop_last=True)


###############################################################################
# Training and evaluation
###############################################################################
def train_one_epoch(model, optimizer, train_loader, epoch, args, logger):
    model.train()
    device = next(model.parameters()).device
    total_loss, correct, total, start = 0.0, 0, 0, time.time()
    for batch, (inputs, targets) in enumerate(train_loader):
        optimizer.zero_grad()
        outputs = model(inputs.to(device))
        loss = F.mse_loss(outputs, targets.to(device))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        total_loss += loss.item()
        correct += (outputs.argmax(1).cpu() == targets.argmax(1)).sum().item()
        total += len(targets)
        if batch % args.log_interval == 0 and batch > 0:
            logger.info("| epoch {:3d} | {:5d}/{:5d} batches | {:5.2f} ms/batch | loss {:.5f} | acc {:.3f}%".format(
                epoch, batch, len(train_loader), (time.time() - start) * 1000 / args.log_interval,
                total_loss / args.log_interval, accuracy(correct, total)))
            total_loss, correct, total, start = 0.0, 0, 0, time.time()


def evaluate(model, test_loader):
    """(accuracy %, mean MSE per batch) over the test set."""
    model.eval()
    device = next(model.parameters()).device
    total_loss, correct, total = 0.0, 0, 0
    with torch.no_grad():
        for inputs, targets in test_loader:
            outputs = model(inputs.to(device))
            total_loss += F.mse_loss(outputs, targets.to(device)).item()
            correct += (outputs.argmax(1).cpu() == targets.argmax(1)).sum().item()
            total += len(targets)
    return accuracy(correct, total), total_loss / len(test_loader)


def model_from_checkpoint(ckpt, path, args, device):
    """Rebuild a network from a checkpoint of this kit or of the authors' script."""
    return network_from_checkpoint(ckpt, path, NEURON, NMNIST_SENSOR, device)


def test_metric(model, data, args):
    """The number of the final test block: accuracy (%) on the test set."""
    return evaluate(model, data[1])[0]


def test(model, test_loader, logger):
    acc, loss = evaluate(model, test_loader)
    log_test_block(logger, "| Performance on Test Set | test loss {:.5f} | test acc {:.5f}".format(loss, acc), WIDTH)


def train(model, loaders, stage, run, args):
    """Stage 1 (train1) or Restoration (train2): Adam with a constant learning rate and gradient clipping,
    evaluation on the test set after every epoch, best by test accuracy."""
    train_loader, test_loader = loaders
    epochs, lr = (args.stage1_epochs, args.stage1_lr) if stage == 1 else (args.stage2_epochs, args.stage2_lr)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    ckpt = Checkpoint(run.checkpoint_path, checkpoint_meta(model, args.seed), "test_acc_record", keep="highest",
                      resume=run.resume)
    start = ckpt.restore(model, optimizer)
    for epoch in epoch_bar(range(start, epochs + 1)):
        epoch_start = time.time()
        train_one_epoch(model, optimizer, train_loader, epoch, args, run.logger)
        acc, loss = evaluate(model, test_loader)
        run.logger.info("-" * WIDTH)
        run.logger.info("| end of epoch {:3d} | time: {:5.2f}s | test loss {:.5f} | test acc {:.3f}%".format(
            epoch, time.time() - epoch_start, loss, acc))
        run.logger.info("-" * WIDTH)
        ckpt.end_epoch(epoch, acc, loss=loss)
    test(ckpt.finish(), test_loader, run.logger)


###############################################################################
# The three stages
###############################################################################
def main():
    run = start_run(parser, check_flags, DATASET, load_data, conv_populations, select_conv)
    args, loaders, logger, device = run.args, run.data, run.logger, run.device
    if args.mode in ("test1", "test2"):  # re-test a saved model
        return run.retest(model_from_checkpoint, lambda model: test(model, loaders[1], logger))
    model = run.resumed_model(model_from_checkpoint)  # an interrupted training continues (None otherwise)

    if args.mode == "train1":  # baselines, ffs, or HSTNN Adaptation (the redundant hybrid)
        if model is None:
            model = new_network(args, 2, NMNIST_SENSOR, NCLASS, NEURON, device, first_padding=0)
        log_channels(logger, model)
        train(model, loaders, 1, run, args)

    elif args.mode == "train2":  # HSTNN Selection + Restoration
        if model is None:  # Selection
            adapted, _, model = run.adaptation(model_from_checkpoint)
            # the first batch of a shuffled training loader (the original logs no test of the adapted net here)
            inputs, targets = next(iter(loader(loaders[0].dataset, args.hessian_batch, True)))
            inputs, targets = inputs.to(device), targets.to(device)
            keep = select_filters(model, lambda: F.mse_loss(model(inputs), targets), (inputs, targets), args,
                                  adapted, DATASET, run.name, logger)
            model = model.shrunk(keep)
            save_resume_point(model, run.checkpoint_path, checkpoint_meta(model, args.seed))  # a rerun continues here
            test(model, loaders[1], logger)  # the selected network before restoration
        train(model, loaders, 2, run, args)

    run.finish()  # the record that says this run finished: its very last act


if __name__ == "__main__":
    run_main(main)
