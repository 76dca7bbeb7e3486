"""Multi-step sigmoid RNN (common.neurons.rnn_step over T steps) as one autograd node.

The input projections x_t W_fc (+ b) of all steps are one matrix product done by the caller; this
node runs the recurrence. On CUDA its two time loops replay CUDA graphs captured once per input
signature (GRAPHS).
"""
import warnings

import torch

from common.fast import is_batched


def rnn_multistep(pre, h0, w):
    """states[t] = sigmoid(pre[t] + states[t-1] @ w) with states[-1] = h0: pre, states [T, B, H].

    T rnn_step calls with pre = x @ w_fc precomputed for all steps, as one node: its backward is a
    reverse loop plus ONE matrix product for dL/dw over all steps (autograd makes T small ones and
    sums them). The backward is made of differentiable torch ops on the saved inputs and outputs, so
    a second backward through it (Hessian-vector products) is exact. On CUDA the two time loops
    replay CUDA graphs (no per-step launches) when GRAPHS is true.
    """
    return _RNNScan.apply(pre, h0, w)


class _RNNScan(torch.autograd.Function):

    @staticmethod
    def forward(ctx, pre, h0, w):
        states, = _run(_scan_forward, pre.contiguous(), h0, w)
        ctx.save_for_backward(h0, w, states)
        return states

    @staticmethod
    def backward(ctx, grad):
        h0, w, states = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: record the plain ops
            dpre, dh0 = _scan_backward(grad, states, w)
        else:
            dpre, dh0 = _run(_scan_backward, grad.contiguous(), states, w)
        H = states.shape[-1]  # dL/dw = sum_t states[t-1]^T dpre[t]: one product over all steps
        dw = torch.addmm(h0.T @ dpre[0], states[:-1].reshape(-1, H).T, dpre[1:].reshape(-1, H))
        return dpre, dh0, dw


def _scan_forward(pre, h0, w):
    states, h = torch.empty_like(pre), h0
    for t in range(pre.shape[0]):
        h = torch.sigmoid(pre[t] + h @ w, out=states[t])  # the definition's order of operations: same bits
    return states,


def _scan_backward(grad, states, w):
    """(dL/dpre, dL/dh0) given dL/dstates; sigmoid' = s (1 - s)."""
    ds, d = states * (1 - states), [None] * len(states)
    g = grad[-1]
    for t in range(len(states) - 1, -1, -1):
        d[t] = g * ds[t]
        if t:
            g = torch.addmm(grad[t - 1], d[t], w.T)
    return torch.stack(d), d[0] @ w.T


GRAPHS = True  # replay the scan loops from CUDA graphs on CUDA (never used on other devices)
_graphs = {}


def _run(loop, *args):
    """loop(*args) -> tuple of tensors; on CUDA replayed from a graph captured once per input signature."""
    if not (GRAPHS and args[0].is_cuda) or is_batched(args[0]):
        return loop(*args)
    key = (loop, *((a.shape, a.dtype, a.device) for a in args))
    if key not in _graphs:
        _graphs[key] = _capture(loop, args)
    if _graphs[key] is None:
        return loop(*args)
    graph, inputs, outputs = _graphs[key]
    for dst, src in zip(inputs, args):
        dst.copy_(src)
    graph.replay()
    return tuple(o.clone() for o in outputs)  # the graph's buffers are reused by the next replay


def _capture(loop, args):
    try:
        inputs = [a.detach().clone() for a in args]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            loop(*inputs)  # warm-up outside the graph (library handles, workspaces)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = loop(*inputs)
        return graph, inputs, outputs
    except Exception as e:  # the eager loop computes the same thing
        warnings.warn(f"CUDA graph capture of the RNN scan failed, running it eagerly: {e}")
        return None
