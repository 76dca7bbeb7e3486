"""Hybrid spatiotemporal networks on Penn Treebank (word-level language modelling).

Two layers, each an SNN population (LIF, decay 0.6, threshold 0.6, surrogate half-width 0.5) and
a sigmoid RNN population side by side; perplexity on the test set is the metric.

    python rnn-ptb.py --model rnn    --mode train1              # baselines: rnn, snn
    python rnn-ptb.py --model ffs    --mode train1 --ratio 0.5  # hybrid trained from scratch
    python rnn-ptb.py --model hybrid --mode train1              # HSTNN stage 1: Adaptation
    python rnn-ptb.py --model hybrid --mode train2 --ratio 0.5  # stages 2 and 3: Selection, Restoration
    python rnn-ptb.py --model hybrid --mode test2  --ratio 0.5  # re-test a saved model (test1 likewise)

Files (relative to this folder): log/{train,test}_<name>.log, checkpoint/<name>.t7,
traces/, with <name> = ptb_<model>_<seed>[_<ratio>].
"""
import argparse
import math
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from common import execution
from common.cli import (check_args, check_before_data, experiment_parser, fc_populations, run_name,
                        suggested_command)
from common.hybrid_fc import HybridFC
from common.ptb import Corpus, batchify, get_batch
from common.selection import select_fc
from common.runs import finish_run, require_finished_adaptation
from common.stages import ensure_dirs, fc_shapes, hessian_selection
from common.training import (KitError, get_logger, load_checkpoint, load_weights, log_test_block, pick_device,
                             resume_or_guard, run_main, save_resume_point, seed_everything, train_epochs)

DECAY, THRESH, LENS = 0.6, 0.6, 0.5  # LIF constants of the PTB experiment
WIDTH = 89  # width of the log rules

parser = experiment_parser("HSTNN on Penn Treebank", models=("rnn", "lstm", "snn", "ffs", "hybrid"))
parser.add_argument("--cell", type=str, default=None, choices=("rnn", "lstm"),
                    help="non-spiking neuron type of the ffs/hybrid models (None: rnn in rnn-ptb.py; "
                         "lstm-ptb.py sets lstm); --model rnn and --model lstm imply their own")
parser.add_argument("--emsize", type=int, help="word embedding size")
parser.add_argument("--nhid", type=int, help="neurons per layer and per type (the redundant hybrid has 2*nhid)")
parser.add_argument("--bptt", type=int, help="sequence length of a training chunk")
parser.add_argument("--nlayers", type=int, default=2, help="number of layers (the method uses 2; only 2 is supported)")
parser.add_argument("--stage1_decay", type=int, help="halve the learning rate every this many epochs (stage 1)")
parser.add_argument("--stage2_decay", type=int, help="halve the learning rate every this many epochs (Restoration)")
parser.add_argument("--bias", action=argparse.BooleanOptionalAction, default=False,
                    help="input biases in the hybrid layers (sigmoid RNN cell only; rnn-ptb-120-0.5-0.6-bias sets it); "
                         "train1 only: later stages and test modes take it from the checkpoint")
parser.set_defaults(data="../../data/penn-treebank", batch_size=25, stage1_epochs=150, stage2_epochs=150,
                    stage1_lr=0.5, stage2_lr=0.075, stage1_decay=25, stage2_decay=25, dropout=0.2, clip=1.0,
                    log_interval=200, emsize=650, nhid=120, bptt=25)


###############################################################################
# Model
###############################################################################
class PTBModel(HybridFC):
    """Embedding -> dropout -> two hybrid layers -> dropout -> linear decoder over the vocabulary."""
    readout_name = "decoder"

    def __init__(self, ntoken, ninp, rnn_shape, snn_shape, dropout=0.5, cell="rnn", bias=False):
        super().__init__()
        self.config = dict(ntoken=ntoken, ninp=ninp, rnn_shape=rnn_shape, snn_shape=snn_shape, dropout=dropout, cell=cell,
                           bias=bias)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.build_stack(ninp, rnn_shape, snn_shape, cell, DECAY, THRESH, LENS, bias)
        self.decoder = nn.Linear(snn_shape[1] + rnn_shape[1], ntoken)
        self.drop = nn.Dropout(dropout)
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, tokens, hidden):
        spikes, states, hidden = self.run(self.drop(self.encoder(tokens)), hidden)
        out = self.drop(torch.cat([spikes, states], dim=2))
        return self.decoder(out.view(-1, out.size(2))).view(out.size(0), out.size(1), -1), hidden


def meta(model, args):
    """Checkpoint keys besides the weights: the authors' keys plus the cell type (and bias=True for a biased model)."""
    return dict(seed=args.seed, rnn_shape=model.rnn_shape, snn_shape=model.snn_shape, ntoken=model.config["ntoken"],
                ninp=model.ninp, snn_func="window", cell=model.cell, **({"bias": True} if model.bias else {}))


def model_from_checkpoint(ckpt, path, args, device):
    """Rebuild a model from a checkpoint of this kit or of the authors' script."""
    cell = ckpt.get("cell") or ("lstm" if any("lstm" in k for k in ckpt["net"]) else "rnn")
    bias = bool(ckpt.get("bias", False))  # the checkpoint decides, whatever --bias says
    model = PTBModel(ckpt["ntoken"], ckpt["ninp"], list(ckpt["rnn_shape"]), list(ckpt["snn_shape"]), args.dropout, cell,
                     bias)
    load_weights(model, ckpt["net"], path)
    return model.to(device)


###############################################################################
# Training and evaluation
###############################################################################
def train_one_epoch(model, optimizer, data, epoch, args, logger):
    model.train()
    criterion = nn.CrossEntropyLoss()
    total_loss, start = 0.0, time.time()
    hidden = model.init_hidden(args.batch_size)
    for batch, i in enumerate(range(0, data.size(0) - 1, args.bptt)):
        inputs, targets = get_batch(data, i, args.bptt)
        hidden = tuple(h.detach() for h in hidden)  # truncated backpropagation through time
        optimizer.zero_grad()
        output, hidden = model(inputs, hidden)
        loss = criterion(output.view(-1, output.size(2)), targets)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        total_loss += loss.item()
        if batch % args.log_interval == 0 and batch > 0:
            cur_loss = total_loss / args.log_interval
            elapsed = time.time() - start
            logger.info("| epoch {:3d} | {:5d}/{:5d} batches | {:5.2f} ms/batch | loss {:5.2f} | ppl {:8.2f}".format(
                epoch, batch, len(data) // args.bptt, elapsed * 1000 / args.log_interval, cur_loss, math.exp(cur_loss)))
            total_loss, start = 0.0, time.time()


def evaluate(model, data, args):
    """Mean cross-entropy per predicted token over the whole split, carrying the RNN state."""
    model.eval()
    criterion = nn.CrossEntropyLoss()
    total_loss = 0.0
    hidden = model.init_hidden(args.batch_size)
    with torch.no_grad():
        for i in range(0, data.size(0) - 1, args.bptt):
            inputs, targets = get_batch(data, i, args.bptt)
            output, hidden = model(inputs, hidden)
            total_loss += len(inputs) * criterion(output.view(-1, output.size(2)), targets).item()
    return total_loss / (len(data) - 1)


def test(model, test_data, args, logger):
    loss = evaluate(model, test_data, args)
    log_test_block(logger, "| Performance on Test Set | test loss {:5.2f} | test ppl {:8.2f}".format(loss, math.exp(loss)), WIDTH)


def train(model, splits, stage, checkpoint_path, args, logger, resume=None):
    """Stage 1 (train1) or Restoration (train2): SGD with momentum, clipping, lr halved every
    `decay` epochs, best model by validation perplexity."""
    train_data, val_data, test_data = splits
    epochs, lr, decay = (args.stage1_epochs, args.stage1_lr, args.stage1_decay) if stage == 1 else \
                        (args.stage2_epochs, args.stage2_lr, args.stage2_decay)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)

    started = {}

    def one_epoch(epoch):
        started["time"] = time.time()
        train_one_epoch(model, optimizer, train_data, epoch, args, logger)

    def validate(epoch):  # the time covers the epoch's training and its validation, as the original's
        loss = evaluate(model, val_data, args)
        logger.info("-" * WIDTH)
        logger.info("| end of epoch {:3d} | time: {:5.2f}s | valid loss {:5.2f} | valid ppl {:8.2f}".format(
            epoch, time.time() - started["time"], loss, math.exp(loss)))
        logger.info("-" * WIDTH)
        return math.exp(loss)

    def halve_lr(epoch):
        if epoch % decay == 0 and epoch > 1:
            for group in optimizer.param_groups:
                group["lr"] *= 0.5
        print("reset optimizer with the learning rate", optimizer.param_groups[0]["lr"])

    model = train_epochs(model, optimizer, epochs, one_epoch, validate, lambda new, best: new < best, checkpoint_path,
                         lambda: meta(model, args), "val_loss_record", after_epoch=halve_lr, resume=resume)
    test(model, test_data, args, logger)


###############################################################################
# The three stages
###############################################################################
def main():
    args = parser.parse_args()
    check_args(args)
    if args.model in ("rnn", "lstm") and args.cell not in (None, args.model):
        raise KitError(f"--model {args.model} contradicts --cell {args.cell}")
    args.cell = args.model if args.model in ("rnn", "lstm") else (args.cell or "rnn")
    if args.bias and args.cell != "rnn":
        raise KitError("--bias: input biases exist for the sigmoid RNN cell only (use --no-bias with LSTM cells)")
    if args.nlayers != 2:
        raise KitError("--nlayers: the hybrid stack has exactly 2 layers")
    check_before_data(args, parser, "ptb", fc_populations, select_fc)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args)
    print(execution.from_args(args, device))  # before any model is built; every forward reads it
    seed_everything(args.seed)
    corpus = Corpus(args.data)
    splits = [batchify(ids, args.batch_size, device) for ids in (corpus.train, corpus.valid, corpus.test)]
    ntokens = len(corpus.idx2word)
    ensure_dirs()
    name = run_name("ptb", args)
    checkpoint_path = f"checkpoint/{name}.t7"
    logger = get_logger(("train_" if args.mode.startswith("train") else "test_") + name)

    if args.mode == "train1":  # baselines, ffs, or HSTNN Adaptation (the redundant hybrid)
        resume = resume_or_guard(checkpoint_path, args.overwrite)
        if resume is None:
            rnn_shape, snn_shape = fc_shapes(args.model, args.nhid, args.ratio, args.truncate_counts)
        else:
            rnn_shape, snn_shape = resume["rnn_shape"], resume["snn_shape"]
            logger.info(f"resuming from {checkpoint_path[:-3]}.resume.t7 after epoch {resume['epoch']}")
        bias = args.bias if resume is None else bool(resume.get("bias", False))
        model = PTBModel(ntokens, args.emsize, rnn_shape, snn_shape, args.dropout, args.cell, bias).to(device)
        logger.info("model with rnn_shape: [{:3d}, {:3d}]".format(*rnn_shape))
        logger.info("model with snn_shape: [{:3d}, {:3d}]".format(*snn_shape))
        train(model, splits, 1, checkpoint_path, args, logger, resume)

    elif args.mode == "train2":  # HSTNN Selection + Restoration
        resume = resume_or_guard(checkpoint_path, args.overwrite)
        if resume is None:
            adapted = f"checkpoint/ptb_hybrid_{args.seed}.t7"
            how = suggested_command(parser, args, "train1", "hybrid")
            require_finished_adaptation(adapted, args, logger, how)
            ckpt = load_checkpoint(adapted, f"train2 (ratio {args.ratio})", how)
            model = model_from_checkpoint(ckpt, adapted, args, device)
            test(model, splits[2], args, logger)  # the redundant network before selection
            inputs, targets = get_batch(splits[0], 0, args.bptt)  # the first training chunk

            def trace_loss():
                output, _ = model(inputs, model.init_hidden(args.batch_size))
                return nn.functional.cross_entropy(output.view(-1, ntokens), targets)

            keep = hessian_selection(model, trace_loss, (inputs, targets), args.ratio, args.hessian_probes, adapted,
                                     f"traces/trace_ptb_hybrid_{args.seed}", f"traces/{name}_importance.csv", logger,
                                     args.truncate_counts, selection=args.selection, seed=args.seed,
                                     draw=args.selection_draw, heldout="the trace batch", heldout_loss=lambda m:
                                     nn.functional.cross_entropy(m(inputs, m.init_hidden(args.batch_size))[0]
                                                                 .view(-1, ntokens), targets).item())
            # Restoration starts from the adapted weights reloaded, as the original did (which also
            # keeps its random stream), shrunk to the kept neurons
            model = model_from_checkpoint(ckpt, adapted, args, device).shrunk(keep)
            save_resume_point(model, checkpoint_path, meta(model, args))  # a rerun continues from here
            test(model, splits[2], args, logger)  # the selected network before restoration
        else:
            model = model_from_checkpoint(resume, checkpoint_path, args, device)
            logger.info(f"resuming from {checkpoint_path[:-3]}.resume.t7 after epoch {resume['epoch']}")
        train(model, splits, 2, checkpoint_path, args, logger, resume)

    else:  # test1 / test2: re-test a saved model
        how = suggested_command(parser, args, args.mode.replace("test", "train"))
        ckpt = load_checkpoint(checkpoint_path, args.mode, how)
        model = model_from_checkpoint(ckpt, checkpoint_path, args, device)
        test(model, splits[2], args, logger)

    finish_run(args, name, device)  # the record that says this run finished: its very last act


if __name__ == "__main__":
    run_main(main)
