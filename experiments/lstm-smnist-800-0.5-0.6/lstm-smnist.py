"""HSTNN with LSTM neurons on sequential MNIST: ../rnn-smnist-800-0.5-0.6/rnn-smnist.py with --cell lstm by default.

Each layer holds an SNN population and an LSTM population (gates i, f, g, o; weights
lstm_wi* [4, in, hid] and lstm_wh* [4, hid, hid], no bias; state (h, c)); the readout sees the
layer-2 SNN firing rate and the final layer-2 LSTM output h. Everything else, the three stages and
--protocol included, is rnn-smnist.py's; logs, checkpoints and traces go in this folder's log/,
checkpoint/ and traces/ (run it from here, as the RNN script).

    python lstm-smnist.py --model lstm   --mode train1              # baselines: lstm, snn
    python lstm-smnist.py --model ffs    --mode train1 --ratio 0.5  # SNN + LSTM hybrid trained from scratch
    python lstm-smnist.py --model hybrid --mode train1              # HSTNN stage 1: Adaptation
    python lstm-smnist.py --model hybrid --mode train2 --ratio 0.5  # stages 2 and 3: Selection, Restoration
    python lstm-smnist.py --model hybrid --mode train1 --protocol val  # best on held-out images, not test

Files: log/{train,test}_mnist_<model>_<seed>[_<ratio>].log (the pure LSTM is mnist_lstm_<seed>).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from common.cli import interface, variant  # noqa: E402

rnn_smnist = variant("rnn-smnist-800-0.5-0.6/rnn-smnist.py", __file__,
                     "HSTNN with LSTM neurons on sequential MNIST", cell="lstm")
DATASET, parser, check_flags, load_data, model_from_checkpoint, test_metric = interface(rnn_smnist)

if __name__ == "__main__":
    rnn_smnist.run_main(rnn_smnist.main)
