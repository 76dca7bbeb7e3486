"""The original README's walkthrough experiment: ../rnn-ptb-650-0.5-0.6/rnn-ptb.py with --bias by default.

The same sigmoid RNN + LIF hybrid on Penn Treebank (LIF decay 0.6, threshold 0.6, surrogate
half-width 0.5; 120 neurons per type and layer, the script's default), with an input bias on every
hybrid-layer neuron: snn_fc<l>_bias and rnn_fc<l>_bias, zero at initialisation. The recurrent
weights, the embedding and the decoder are as in the bias-free script. Everything else, the three
stages included, is rnn-ptb.py's; logs, checkpoints and traces go in this folder's log/,
checkpoint/ and traces/ (run it from here). --no-bias trains without biases; the test modes and
train2 rebuild whatever the checkpoint holds.

    python rnn-ptb.py --model hybrid --mode train1              # HSTNN stage 1: Adaptation
    python rnn-ptb.py --model hybrid --mode train2 --ratio 0.75 # stages 2 and 3: Selection, Restoration
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
from common.cli import load_script  # noqa: E402

rnn_ptb = load_script(os.path.join(HERE, "..", "rnn-ptb-650-0.5-0.6", "rnn-ptb.py"), "rnn_ptb")
rnn_ptb.parser.description = "HSTNN on Penn Treebank with input biases (the original README's walkthrough)"
rnn_ptb.parser.set_defaults(bias=True)
rnn_ptb.parser.prog = os.path.basename(__file__)  # in usage and how-to-fix messages

# the interface of every experiment script (common.cli.load_script)
DATASET, parser, check_flags, load_data, model_from_checkpoint, test_metric = (
    rnn_ptb.DATASET, rnn_ptb.parser, rnn_ptb.check_flags, rnn_ptb.load_data, rnn_ptb.model_from_checkpoint,
    rnn_ptb.test_metric)

if __name__ == "__main__":
    rnn_ptb.run_main(rnn_ptb.main)
