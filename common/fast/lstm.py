"""Multi-step LSTM (common.neurons.lstm_step over T steps): the input products of all steps at once,
then one product per step for the four gates stacked [i f g o]."""
import torch


def lstm_multistep(flat, T, h, c, w_in, w_rec):
    """flat: the layer's inputs [T * B, in]; w_in [4, in, H], w_rec [4, H, H]. Returns (states [T, B, H], h, c)."""
    H = w_rec.shape[-1]
    pre = (flat @ w_in.permute(1, 0, 2).reshape(-1, 4 * H)).view(T, -1, 4 * H)
    w_h = w_rec.permute(1, 0, 2).reshape(H, 4 * H)
    states = []
    for p in pre.unbind(0):  # unbind, not pre[t]: one gradient buffer instead of T zero-filled ones
        # four contiguous [B, H] gates, the definition's layout: vectorised sigmoid/tanh round alike
        gi, gf, gg, go = (p + h @ w_h).view(-1, 4, H).transpose(0, 1).contiguous()
        c = torch.sigmoid(gf) * c + torch.sigmoid(gi) * torch.tanh(gg)
        h = torch.sigmoid(go) * torch.tanh(c)
        states.append(h)
    return torch.stack(states), h, c
