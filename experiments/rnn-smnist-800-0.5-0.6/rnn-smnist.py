"""Hybrid spatiotemporal networks on sequential MNIST (each image read column by column).

Two layers, each an SNN population (LIF, decay 0.6, threshold 0.6, surrogate half-width 0.5) and
a sigmoid RNN (or, with --cell lstm, LSTM) population side by side. An image is 28 time steps of
28 pixels: step t feeds column t, top to bottom. The readout sees the layer-2 SNN firing rate over
the 28 steps and the final layer-2 RNN state; accuracy on the test set is the metric.

    python rnn-smnist.py --model rnn    --mode train1              # baselines: rnn, snn
    python rnn-smnist.py --model ffs    --mode train1 --ratio 0.5  # hybrid trained from scratch
    python rnn-smnist.py --model hybrid --mode train1              # HSTNN stage 1: Adaptation
    python rnn-smnist.py --model hybrid --mode train2 --ratio 0.5  # stages 2 and 3: Selection, Restoration
    python rnn-smnist.py --model hybrid --mode test2  --ratio 0.5  # re-test a saved model (test1 likewise)

Checkpoint selection (--protocol):
  test  the original's: the checkpoint with the best TEST accuracy over training is kept and
        re-tested, so the reported number is a maximum over epochs on the test set. This is what
        the published tables mean.
  val   a fixed part of the training set (--val_size images) is held out and selects the
        checkpoint; the test set is used once, for the final number.
Every log names the protocol on the line before its final test block.

Files (relative to this folder): log/{train,test}_<name>.log, checkpoint/<name>.t7,
traces/, with <name> = mnist_<model>_<seed>[_<ratio>].
"""
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from common.cli import check_args, experiment_parser, fc_populations, start_run
from common.hybrid_fc import HybridFC
from common.progress import epoch_bar
from common.criteria import masked_copies
from common.quick import first_batches
from common.data.smnist import load_split, loader, split_train_val
from common.selection import select_fc
from common.stages import fc_model_shapes, hessian_selection
from common.training import Checkpoint, KitError, load_weights, log_test_block, run_main, save_resume_point

DATASET = "mnist"  # the first part of every run name
DECAY, THRESH, LENS = 0.6, 0.6, 0.5  # LIF constants of the S-MNIST experiment
STEPS, NINP, NCLASS = 28, 28, 10     # 28 columns of 28 pixels, 10 digits
WIDTH = 83  # width of the log rules

parser = experiment_parser("HSTNN on sequential MNIST", models=("rnn", "lstm", "snn", "ffs", "hybrid"))
parser.add_argument("--nhid", type=int, help="neurons per layer and per type (the redundant hybrid has 2*nhid)")
parser.add_argument("--protocol", type=str, default="test", choices=("test", "val"),
                    help="which split selects the kept checkpoint: test = best test accuracy over training "
                         "(the original's, what the published tables mean); val = best accuracy on --val_size "
                         "held-out training images, the test set used once")
parser.add_argument("--val_size", type=int, default=5000,
                    help="training images held out for --protocol val (a fixed choice, the same for every seed)")
parser.add_argument("--nlayers", type=int, default=2, help="number of layers (the method uses 2; only 2 is supported)")
parser.add_argument("--nclass", type=int, default=10, help="number of classes (MNIST: 10; only 10 is supported)")
parser.set_defaults(data="../../data", batch_size=100, stage1_epochs=150, stage2_epochs=150, stage1_lr=3e-4,
                    stage2_lr=3e-4, dropout=0.3, clip=0.25, log_interval=100, nhid=100)


###############################################################################
# Data
###############################################################################
def load_data(args, device):
    """Loaders of the "train" and "test" splits (and, under --protocol val, of the "val" images held out of
    the training split; a quick run's --max_batches/--eval_batches limit their batches per pass); their
    batches stay on the CPU until used."""
    train_images, train_labels = load_split(args.data, "train")
    evaluation = lambda split: first_batches(loader(*split, args.batch_size, shuffle=False), args.eval_batches)
    data = {"test": evaluation(load_split(args.data, "test"))}
    if args.protocol == "val":
        (train_images, train_labels), val_split = split_train_val(train_images, train_labels, args.val_size)
        data["val"] = evaluation(val_split)
    data["train"] = first_batches(loader(train_images, train_labels, args.batch_size, shuffle=True), args.max_batches)
    return data


###############################################################################
# Model
###############################################################################
class SMNISTModel(HybridFC):
    """Two hybrid layers over the 28 image columns -> linear readout of
    [layer-2 SNN firing rate, final layer-2 RNN state]. No dropout (the original built one and never used it)."""
    readout_name = "all_fc"

    def __init__(self, rnn_shape, snn_shape, cell="rnn"):
        super().__init__()
        self.config = dict(rnn_shape=rnn_shape, snn_shape=snn_shape, cell=cell)
        self.build_stack(NINP, rnn_shape, snn_shape, cell, DECAY, THRESH, LENS)
        self.all_fc = nn.Linear(snn_shape[1] + rnn_shape[1], NCLASS)
        nn.init.uniform_(self.all_fc.weight, -0.1, 0.1)
        nn.init.zeros_(self.all_fc.bias)

    def forward(self, images, hidden=None):
        """images [B, 1, 28, 28] -> logits [B, 10]. Every image starts from zero state (as the
        original, which ignored `hidden`); the final RNN state is returned."""
        x = columns(images)
        spikes, states, hidden = self.run(x, self.init_hidden(x.size(1)))
        return self.readout(spikes, states), hidden

    def readout(self, spikes, states):
        """Logits from the layer-2 spikes [28, B, s1] and RNN states [28, B, r1]."""
        return self.all_fc(torch.cat([spikes.sum(0) / STEPS, states[-1]], dim=1))


def columns(images):
    """[B, 1, 28, 28] -> [28 columns, B, 28 pixels]."""
    return images.reshape(-1, 28, 28).transpose(1, 2).transpose(0, 1)


def meta(model, args):
    """Checkpoint keys besides the weights: the authors' keys plus the cell type and the protocol."""
    return dict(seed=args.seed, rnn_shape=model.rnn_shape, snn_shape=model.snn_shape, snn_func="window",
                cell=model.cell, protocol=args.protocol, val_size=args.val_size if args.protocol == "val" else 0)


def model_from_checkpoint(ckpt, path, args, device):
    """Rebuild a model from a checkpoint of this kit or of the authors' script."""
    cell = ckpt.get("cell") or ("lstm" if any("lstm" in k for k in ckpt["net"]) else "rnn")
    model = SMNISTModel(list(ckpt["rnn_shape"]), list(ckpt["snn_shape"]), cell)
    load_weights(model, ckpt["net"], path)
    return model.to(device)


def protocol_line(protocol, val_size):
    if protocol == "val":
        return (f"protocol: val (checkpoint selected by accuracy on {val_size} held-out training images; "
                f"the test set is used once, below)")
    return ("protocol: test (checkpoint selected by the best test accuracy over training, as the original: "
            "the number below is a maximum over epochs on the test set)")


###############################################################################
# Training and evaluation
###############################################################################
def train_one_epoch(model, optimizer, batches, epoch, args, logger, device):
    model.train()
    criterion = nn.CrossEntropyLoss()
    total_loss, correct, total, start = 0.0, 0, 0, time.time()
    for batch, (images, labels) in enumerate(batches):
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        output, _ = model(images)
        loss = criterion(output, labels)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        total_loss += loss.item()
        correct += (output.argmax(1) == labels).sum().item()
        total += labels.size(0)
        if batch % args.log_interval == 0 and batch > 0:
            logger.info("| epoch {:3d} | {:5d}/{:5d} batches | {:5.2f} ms/batch | loss {:.5f} | acc {:.3f}%".format(
                epoch, batch, len(batches), (time.time() - start) * 1000 / args.log_interval,
                total_loss / args.log_interval, 100.0 * correct / total))
            total_loss, correct, total, start = 0.0, 0, 0, time.time()


def evaluate(model, batches, device):
    """(accuracy in %, mean of the per-batch losses) over a whole split."""
    model.eval()
    criterion = nn.CrossEntropyLoss()
    total_loss, correct, total = 0.0, 0, 0
    with torch.no_grad():
        for images, labels in batches:
            images, labels = images.to(device), labels.to(device)
            output, _ = model(images)
            total_loss += criterion(output, labels).item()
            correct += (output.argmax(1) == labels).sum().item()
            total += labels.size(0)
    return 100.0 * correct / total, total_loss / len(batches)


def masked_losses(model, batches, masks, device):
    """evaluate's loss for K copies of `model` at once, copy k with its neuron outputs multiplied by
    masks[key][k] (common.criteria.masked_copies): the batched path of --selection oracle."""
    model.eval()
    copies = len(next(iter(masks.values())))
    total = torch.zeros(copies, dtype=torch.float64)
    with torch.no_grad():
        for images, labels in batches:
            images, labels = images.to(device), labels.to(device)
            out = model.readout(*masked_copies(model, columns(images), masks))
            loss = nn.functional.cross_entropy(out, labels.repeat(copies), reduction="none")
            total += loss.view(copies, -1).mean(1).double().cpu()
    return (total / len(batches)).tolist()


def test_metric(model, data, args):
    """The number of the final test block: accuracy (%) on the test split."""
    return evaluate(model, data["test"], next(model.parameters()).device)[0]


def test(model, data, device, logger, split="test"):
    """The test block (or, for checks made under --protocol val before the end, a validation block)."""
    acc, loss = evaluate(model, data[split], device)
    if split == "test":
        line = "| Performance on Test Set | test loss {:.5f} | test acc {:.5f}".format(loss, acc)
    else:
        line = "| Performance on Validation Set | valid loss {:.5f} | valid acc {:.5f}".format(loss, acc)
    log_test_block(logger, line, WIDTH)


def train(model, data, stage, run, args):
    """Stage 1 (train1) or Restoration (train2): Adam, clipping, the best checkpoint by accuracy
    on the protocol's selection split."""
    epochs, lr = (args.stage1_epochs, args.stage1_lr) if stage == 1 else (args.stage2_epochs, args.stage2_lr)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    select, word = ("test", "test") if args.protocol == "test" else ("val", "valid")
    ckpt = Checkpoint(run.checkpoint_path, meta(model, args), f"{select}_acc_record", keep="highest", resume=run.resume)
    start = ckpt.restore(model, optimizer)
    for epoch in epoch_bar(range(start, epochs + 1)):
        epoch_start = time.time()
        train_one_epoch(model, optimizer, data["train"], epoch, args, run.logger, run.device)
        acc, loss = evaluate(model, data[select], run.device)
        run.logger.info("-" * WIDTH)
        run.logger.info("| end of epoch {:3d} | time: {:5.2f}s | {} loss {:.5f} | {} acc {:.3f}%".format(
            epoch, time.time() - epoch_start, word, loss, word, acc))
        run.logger.info("-" * WIDTH)
        ckpt.end_epoch(epoch, acc, loss=loss)
    model = ckpt.finish()
    run.logger.info(protocol_line(args.protocol, args.val_size))
    test(model, data, run.device, run.logger)


###############################################################################
# The three stages
###############################################################################
def check_flags(args):
    """Every flag's range and consistency, before any data are read (KitError); sets the cell type."""
    check_args(args)
    if args.model in ("rnn", "lstm") and args.cell not in (None, args.model):
        raise KitError(f"--model {args.model} contradicts --cell {args.cell}, the non-spiking neuron type of "
                       f"{parser.prog}; its pure non-spiking baseline is --model {args.cell}")
    args.cell = args.model if args.model in ("rnn", "lstm") else (args.cell or "rnn")
    if args.nlayers != 2:
        raise KitError("--nlayers: the hybrid stack has exactly 2 layers")
    if args.nclass != NCLASS:
        raise KitError("--nclass: MNIST has 10 classes")


def main():
    run = start_run(parser, check_flags, DATASET, load_data, fc_populations, select_fc)
    args, data, logger, device = run.args, run.data, run.logger, run.device
    if args.mode in ("test1", "test2"):  # re-test a saved model, naming the protocol it was selected under
        ckpt = run.saved()
        model = model_from_checkpoint(ckpt, run.checkpoint_path, args, device)
        if "protocol" in ckpt:
            logger.info(protocol_line(ckpt["protocol"], ckpt.get("val_size", 0)))
        else:
            logger.info("protocol: test (a checkpoint of the original code, selected by the best test accuracy)")
        test(model, data, device, logger)
        return run.finish()  # the record that says this run finished: its very last act

    if args.mode == "train1":  # baselines, ffs, or HSTNN Adaptation (the redundant hybrid)
        model = SMNISTModel(*fc_model_shapes(run, args), args.cell).to(device)
        train(model, data, 1, run, args)

    elif args.mode == "train2":  # HSTNN Selection + Restoration
        check = "test" if args.protocol == "test" else "val"  # under --protocol val the test set waits for the end
        model = run.resumed_model(model_from_checkpoint)  # an interrupted Restoration continues
        if model is None:  # Selection
            adapted, ckpt, model = run.adaptation(model_from_checkpoint)
            if ckpt.get("protocol", "test") != args.protocol:
                raise KitError(f"{adapted} was selected under --protocol {ckpt.get('protocol', 'test')}; Selection and "
                               f"Restoration under --protocol {args.protocol} would mix the two protocols. Pass "
                               f"--protocol {ckpt.get('protocol', 'test')}, or run both stages of the other protocol "
                               "in a folder of its own")
            test(model, data, device, logger, check)  # the redundant network before selection
            images, labels = next(iter(data["train"]))  # the first batch of a freshly shuffled loader
            images, labels = images.to(device), labels.to(device)

            def trace_loss():
                return nn.functional.cross_entropy(model(images)[0], labels)

            if args.protocol == "val":  # --selection oracle: held-out images where there are some
                heldout, heldout_loss = f"the {args.val_size} held-out training images", \
                    lambda m: evaluate(m, data["val"], device)[1]
                heldout_losses = lambda masks: masked_losses(model, data["val"], masks, device)
            else:
                heldout, heldout_loss = "the trace batch (no held-out images under --protocol test)", \
                    lambda m: nn.functional.cross_entropy(m(images)[0], labels).item()
                heldout_losses = lambda masks: masked_losses(model, [(images, labels)], masks, device)
            keep = hessian_selection(model, trace_loss, (images, labels), args.ratio, args.hessian_probes, adapted,
                                     f"traces/trace_{DATASET}_hybrid_{args.seed}", f"traces/{run.name}_importance.csv",
                                     logger, args.truncate_counts, selection=args.selection, seed=args.seed,
                                     draw=args.selection_draw, heldout_loss=heldout_loss, heldout=heldout,
                                     heldout_losses=heldout_losses)
            # Restoration starts from the adapted weights reloaded, as the original did (which also
            # keeps its random stream), shrunk to the kept neurons
            model = model_from_checkpoint(ckpt, adapted, args, device).shrunk(keep)
            save_resume_point(model, run.checkpoint_path, meta(model, args))  # a rerun continues from here
            test(model, data, device, logger, check)  # the selected network before restoration
        train(model, data, 2, run, args)

    run.finish()  # the record that says this run finished: its very last act


if __name__ == "__main__":
    run_main(main)
