"""HSTNN with LSTM neurons on Penn Treebank: ../rnn-ptb-650-0.5-0.6/rnn-ptb.py with --cell lstm by default.

Each layer holds an SNN population and an LSTM population (gates i, f, g, o; weights
lstm_wi* [4, in, hid] and lstm_wh* [4, hid, hid], no bias; state (h, c)). Everything else, the
three stages included, is rnn-ptb.py's; logs, checkpoints and traces go in this folder's log/,
checkpoint/ and traces/ (run it from here, as the RNN script).

    python lstm-ptb.py --model lstm   --mode train1              # baselines: lstm, snn
    python lstm-ptb.py --model ffs    --mode train1 --ratio 0.5  # SNN + LSTM hybrid trained from scratch
    python lstm-ptb.py --model hybrid --mode train1              # HSTNN stage 1: Adaptation
    python lstm-ptb.py --model hybrid --mode train2 --ratio 0.5  # stages 2 and 3: Selection, Restoration

Files: log/{train,test}_ptb_<model>_<seed>[_<ratio>].log (the pure LSTM is ptb_lstm_<seed>).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
from common.cli import interface, variant  # noqa: E402

rnn_ptb = variant("rnn-ptb-650-0.5-0.6/rnn-ptb.py", __file__, "HSTNN with LSTM neurons on Penn Treebank", cell="lstm")
DATASET, parser, check_flags, load_data, model_from_checkpoint, test_metric = interface(rnn_ptb)

if __name__ == "__main__":
    rnn_ptb.run_main(rnn_ptb.main)
