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

Files: log/{train,test}_mnist_<model>_<seed>[_<ratio>].log (the pure LSTM is mnist_lstm_<seed>).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", ".."))
from common.cli import load_script  # noqa: E402

rnn_smnist = load_script(os.path.join(HERE, "..", "rnn-smnist-800-0.5-0.6", "rnn-smnist.py"), "rnn_smnist")
rnn_smnist.parser.description = "HSTNN with LSTM neurons on sequential MNIST"
rnn_smnist.parser.set_defaults(cell="lstm")
rnn_smnist.parser.prog = os.path.basename(__file__)  # in usage and how-to-fix messages

# the interface of every experiment script (common.cli.load_script)
DATASET, parser, check_flags, load_data, model_from_checkpoint, test_metric = (
    rnn_smnist.DATASET, rnn_smnist.parser, rnn_smnist.check_flags, rnn_smnist.load_data, rnn_smnist.model_from_checkpoint,
    rnn_smnist.test_metric)

if __name__ == "__main__":
    rnn_smnist.run_main(rnn_smnist.main)
