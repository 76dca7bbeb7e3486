"""A tiny hybrid network over the shared fc stack, for unit tests."""
import torch
import torch.nn as nn

from common.hybrid_fc import HybridFC


class TinyNet(HybridFC):
    readout_name = "readout"

    def __init__(self, ninp, rnn_shape, snn_shape, cell="rnn", nout=3):
        super().__init__()
        self.config = dict(ninp=ninp, rnn_shape=rnn_shape, snn_shape=snn_shape, cell=cell, nout=nout)
        self.build_stack(ninp, rnn_shape, snn_shape, cell, 0.6, 0.6, 0.5)
        self.readout = nn.Linear(snn_shape[1] + rnn_shape[1], nout)

    def forward(self, x, hidden, masks=None):
        spikes, states, hidden = self.run(x, hidden, masks)
        return self.readout(torch.cat([spikes, states], dim=2)), hidden


def tiny_net(ninp=4, rnn=(5, 4), snn=(3, 6), cell="rnn", seed=0, scale=3.0):
    """A float64 net whose weights are scaled up so that its neurons spike often."""
    torch.manual_seed(seed)
    net = TinyNet(ninp, list(rnn), list(snn), cell).double()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.startswith(("snn_", "rnn_", "lstm_")):
                p.mul_(scale)
    return net
