"""Multi-step versions of the step functions in common/neurons.py, one module per definition:

    neurons.lif_step   -> fast/lif.py   lif_multistep   (torch loop; fused Triton kernels under 'triton')
    neurons.rnn_step   -> fast/rnn.py   rnn_multistep   (one autograd node; CUDA-graph replay on CUDA)
    neurons.lstm_step  -> fast/lstm.py  lstm_multistep  (the four gates in one product per step)
    neurons.rcnn_step  -> fast/rcnn.py  rcnn_multistep  (one autograd node, pooling included; pooled_unsaved)

Which of them run is the execution setting's choice (common.execution); the table at the top of
common/neurons.py names the test that proves each pair equal.
"""
import torch


def is_batched(t):
    """True inside autograd.grad(..., is_grads_batched=True) or torch.func.vmap."""
    f = torch._C._functorch
    return f.is_legacy_batchedtensor(t) or f.is_batchedtensor(t)
