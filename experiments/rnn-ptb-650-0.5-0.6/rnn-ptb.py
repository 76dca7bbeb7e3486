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
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from common.cli import check_args, experiment_parser, fc_populations, start_run
from common.hybrid_fc import HybridFC
from common.progress import epoch_bar
from common.quick import first_chunks
from common.data.ptb import Corpus, get_batch
from common.selection import select_fc
from common.stages import fc_model_shapes, hessian_selection
from common.runs import safe_exp
from common.training import Checkpoint, KitError, load_weights, log_test_block, run_main, save_resume_point

DATASET = "ptb"  # the first part of every run name
DECAY, THRESH, LENS = 0.6, 0.6, 0.5  # LIF constants of the PTB experiment
WIDTH = 89  # width of the log rules

parser = experiment_parser("HSTNN on Penn Treebank", models=("rnn", "lstm", "snn", "ffs", "hybrid"))
parser.add_argument("--emsize", type=int, help="word embedding size")
parser.add_argument("--nhid", type=int, help="neurons per layer and per type (the redundant hybrid has 2*nhid)")
parser.add_argument("--bptt", type=int, help="sequence length of a training chunk")
parser.add_argument("--nlayers", type=int, default=2, help="number of layers (the method uses 2; only 2 is supported)")
parser.add_argument("--stage1_decay", type=int, help="halve the learning rate every this many epochs (stage 1)")
parser.add_argument("--stage2_decay", type=int, help="halve the learning rate every this many epochs (Restoration)")
parser.add_argument("--ffs_schedule", choices=("own", "hstnn"), default="own",
                    help="ffs only: 'own' trains --stage1_epochs on the stage-1 schedule; 'hstnn' follows HSTNN's two "
                         "stages: --stage1_epochs on the stage-1 schedule, then --stage2_epochs at --stage2_lr (halved "
                         "every --stage2_decay), momentum reset at the switch, as Restoration starts")
parser.add_argument("--bias", action=argparse.BooleanOptionalAction, default=False,
                    help="input biases in the hybrid layers (sigmoid RNN cell only; rnn-ptb-120-0.5-0.6-bias sets it); "
                         "train1 only: later stages and test modes take it from the checkpoint")
parser.set_defaults(data="../../data/penn-treebank", batch_size=25, stage1_epochs=150, stage2_epochs=150,
                    stage1_lr=0.5, stage2_lr=0.075, stage1_decay=25, stage2_decay=25, dropout=0.2, clip=1.0,
                    log_interval=200, emsize=650, nhid=120, bptt=25)


###############################################################################
# Data
###############################################################################
def load_data(args, device):
    """The corpus' splits as columns of token ids on `device` ("train", "valid", "test"; a quick run's
    --max_batches/--eval_batches keep their first chunks) and its vocabulary size ("ntokens")."""
    corpus = Corpus(args.data)
    limits = dict(train=args.max_batches, valid=args.eval_batches, test=args.eval_batches)
    return dict(**{split: first_chunks(columns, limits[split], args.bptt)
                   for split, columns in corpus.batches(args.batch_size, device).items()}, ntokens=len(corpus.idx2word))


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
                epoch, batch, len(data) // args.bptt, elapsed * 1000 / args.log_interval, cur_loss, safe_exp(cur_loss)))
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


def test_metric(model, data, args):
    """The number of the final test block: perplexity on the test split."""
    return safe_exp(evaluate(model, data["test"], args))


def test(model, data, args, logger):
    loss = evaluate(model, data["test"], args)
    log_test_block(logger, "| Performance on Test Set | test loss {:5.2f} | test ppl {:8.2f}".format(loss, safe_exp(loss)), WIDTH)


def train(model, data, stage, run, args):
    """Stage 1 (train1) or Restoration (train2): SGD with momentum, clipping, lr halved every
    `decay` epochs, best model by validation perplexity. ffs with --ffs_schedule hstnn goes on after
    stage 1's epochs with Restoration's rate and decay."""
    epochs, lr, decay = (args.stage1_epochs, args.stage1_lr, args.stage1_decay) if stage == 1 else \
                        (args.stage2_epochs, args.stage2_lr, args.stage2_decay)
    switch = args.stage1_epochs if stage == 1 and args.model == "ffs" and args.ffs_schedule == "hstnn" else None
    if switch is not None:
        epochs += args.stage2_epochs
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    ckpt = Checkpoint(run.checkpoint_path, meta(model, args), "val_loss_record", keep="lowest", resume=run.resume)
    start = ckpt.restore(model, optimizer)
    for epoch in epoch_bar(range(start, epochs + 1)):
        epoch_start = time.time()  # the time covers the epoch's training and its validation, as the original's
        train_one_epoch(model, optimizer, data["train"], epoch, args, run.logger)
        val_loss = evaluate(model, data["valid"], args)
        run.logger.info("-" * WIDTH)
        run.logger.info("| end of epoch {:3d} | time: {:5.2f}s | valid loss {:5.2f} | valid ppl {:8.2f}".format(
            epoch, time.time() - epoch_start, val_loss, safe_exp(val_loss)))
        run.logger.info("-" * WIDTH)
        if epoch == switch:  # Restoration's schedule from here, its optimizer's state fresh
            optimizer.state.clear()
            for group in optimizer.param_groups:
                group["lr"] = args.stage2_lr
        elif switch is not None and epoch > switch:
            if (epoch - switch) % args.stage2_decay == 0 and epoch - switch > 1:
                for group in optimizer.param_groups:
                    group["lr"] *= 0.5
        elif epoch % decay == 0 and epoch > 1:
            for group in optimizer.param_groups:
                group["lr"] *= 0.5
        print("reset optimizer with the learning rate", optimizer.param_groups[0]["lr"])
        ckpt.end_epoch(epoch, safe_exp(val_loss), loss=val_loss)
    test(ckpt.finish(), data, args, run.logger)


###############################################################################
# The three stages
###############################################################################
def check_flags(args):
    """Every flag's range and consistency, before any data are read (KitError); sets the cell type."""
    check_args(args)
    if args.model in ("rnn", "lstm") and args.cell not in (None, args.model):
        raise KitError(f"--model {args.model} contradicts --cell {args.cell}")
    args.cell = args.model if args.model in ("rnn", "lstm") else (args.cell or "rnn")
    if args.ffs_schedule == "hstnn" and (args.model, args.mode) != ("ffs", "train1"):
        raise KitError("--ffs_schedule hstnn: a schedule for ffs training (--model ffs --mode train1) only")
    if args.bias and args.cell != "rnn":
        raise KitError("--bias: input biases exist for the sigmoid RNN cell only (use --no-bias with LSTM cells)")
    if args.nlayers != 2:
        raise KitError("--nlayers: the hybrid stack has exactly 2 layers")


def main():
    run = start_run(parser, check_flags, DATASET, load_data, fc_populations, select_fc)
    args, data, logger, device = run.args, run.data, run.logger, run.device
    if args.mode in ("test1", "test2"):  # re-test a saved model
        return run.retest(model_from_checkpoint, lambda model: test(model, data, args, logger))

    if args.mode == "train1":  # baselines, ffs, or HSTNN Adaptation (the redundant hybrid)
        bias = args.bias if run.resume is None else bool(run.resume.get("bias", False))
        model = PTBModel(data["ntokens"], args.emsize, *fc_model_shapes(run, args), args.dropout, args.cell,
                         bias).to(device)
        train(model, data, 1, run, args)

    elif args.mode == "train2":  # HSTNN Selection + Restoration
        model = run.resumed_model(model_from_checkpoint)  # an interrupted Restoration continues
        if model is None:  # Selection
            adapted, ckpt, model = run.adaptation(model_from_checkpoint)
            test(model, data, args, logger)  # the redundant network before selection
            inputs, targets = get_batch(data["train"], 0, args.bptt)  # the first training chunk

            def trace_loss():
                output, _ = model(inputs, model.init_hidden(args.batch_size))
                return nn.functional.cross_entropy(output.view(-1, data["ntokens"]), targets)

            keep = hessian_selection(model, trace_loss, (inputs, targets), args.ratio, args.hessian_probes, adapted,
                                     f"traces/trace_{DATASET}_hybrid_{args.seed}", f"traces/{run.name}_importance.csv",
                                     logger, args.truncate_counts, selection=args.selection, seed=args.seed,
                                     draw=args.selection_draw, heldout="the trace batch", heldout_loss=lambda m:
                                     nn.functional.cross_entropy(m(inputs, m.init_hidden(args.batch_size))[0]
                                                                 .view(-1, data["ntokens"]), targets).item())
            # Restoration starts from the adapted weights reloaded, as the original did (which also
            # keeps its random stream), shrunk to the kept neurons
            model = model_from_checkpoint(ckpt, adapted, args, device).shrunk(keep)
            save_resume_point(model, run.checkpoint_path, meta(model, args))  # a rerun continues from here
            test(model, data, args, logger)  # the selected network before restoration
        train(model, data, 2, run, args)

    run.finish()  # the record that says this run finished: its very last act


if __name__ == "__main__":
    run_main(main)
