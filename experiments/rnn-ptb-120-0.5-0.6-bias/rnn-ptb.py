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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from common.cli import interface, variant  # noqa: E402

rnn_ptb = variant("rnn-ptb-650-0.5-0.6/rnn-ptb.py", __file__, "HSTNN on Penn Treebank with input biases (the original README's walkthrough)", bias=True)
DATASET, parser, check_flags, load_data, model_from_checkpoint, test_metric = interface(rnn_ptb)

if __name__ == "__main__":
    rnn_ptb.run_main(rnn_ptb.main)
