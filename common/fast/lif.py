"""Multi-step LIF (common.neurons.lif_step over T steps): the whole time loop in one autograd node.

lif_multistep(currents, decay, thresh, lens) returns the same spikes as running
common.neurons.lif_step T times from zero state, with the same gradient (surrogate window
and reset path included), but without one autograd graph per step: the forward loops
under no_grad and saves only its input; the backward recomputes the membrane (one cheap
forward scan) and runs a reverse loop.

Under the 'triton' execution (common.execution; the default on CUDA with Triton installed), float32
loops on CUDA are fused Triton kernels, one program per block of neurons looping over T in
registers. Everything else runs the torch loop.

Second order: a backward with create_graph=True (and a batched one, inside
autograd.grad(..., is_grads_batched=True)) differentiates the step-by-step definition
on the saved currents instead, so Hessian-vector products through this node are exactly
those of lif_step. torch.func transforms (vmap, grad, jvp) of lif_multistep itself are not
supported; lif_step supports them.
"""
import torch

from common import execution
from common.fast import is_batched
from common.neurons import lif_step

try:
    import triton
    import triton.language as tl
except ImportError:  # the CPU path needs neither Triton nor CUDA
    triton = None


def lif_multistep_reference(currents, decay, thresh, lens):
    """The definition: lif_step T times from mem = spike = 0. currents: [T, ...]."""
    mem = spk = torch.zeros_like(currents[0])
    out = []
    for x in currents:
        mem, spk = lif_step(mem, spk, x, decay, thresh, lens)
        out.append(spk)
    return torch.stack(out)


def lif_multistep(currents, decay, thresh, lens, backend=None):
    """Spikes [T, ...] of the LIF driven by currents [T, ...] (fc: [T, B, N], conv: [T, B, C, H, W]).

    decay, thresh, lens are Python floats. backend: None (common.execution's setting: Triton kernels
    under 'triton' where they apply, the torch loop otherwise), 'torch' or 'triton'.
    Memory saved for the backward: the currents themselves (no copy); membrane and spikes
    are recomputed from them.
    """
    if backend is None:  # the process's execution setting (common.execution) picks the kernels
        backend = 'triton' if execution.current() == 'triton' and _triton_ok(currents) else 'torch'
    return _LIFMultiStep.apply(currents, float(decay), float(thresh), float(lens), backend)


def _triton_ok(x):
    return triton is not None and x.is_cuda and x.dtype == torch.float32


class _LIFMultiStep(torch.autograd.Function):

    @staticmethod
    def forward(ctx, currents, decay, thresh, lens, backend):
        x = currents.contiguous()
        spikes = torch.empty_like(x)
        fwd = _forward_triton if backend == 'triton' else _forward_torch
        fwd(_flat(x), _flat(spikes), decay, thresh)
        ctx.save_for_backward(currents)
        ctx.decay, ctx.thresh, ctx.lens, ctx.backend = decay, thresh, lens, backend
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        currents, = ctx.saved_tensors
        if torch.is_grad_enabled() or is_batched(grad_spikes):
            # second order (create_graph) or batched probes: differentiate the definition itself
            with torch.enable_grad():
                x = currents if currents.requires_grad else currents.detach().requires_grad_()
                spikes = lif_multistep_reference(x, ctx.decay, ctx.thresh, ctx.lens)
                grad, = torch.autograd.grad(spikes, x, grad_spikes, create_graph=torch.is_grad_enabled())
            return grad, None, None, None, None
        x, g = currents.contiguous(), grad_spikes.contiguous()
        grad = torch.empty_like(x)  # holds the recomputed membrane, then (in place) the gradient
        bwd = _backward_triton if ctx.backend == 'triton' else _backward_torch
        bwd(_flat(x), _flat(g), _flat(grad), ctx.decay, ctx.thresh, ctx.lens)
        return grad, None, None, None, None


def _flat(a):
    return a.view(a.shape[0], -1)  # [T, N]


# -----------------------------------------------------------------------------
# torch loop (any device, any float dtype). Inputs and outputs are [T, N] and contiguous.

def _forward_torch(x, spikes, decay, thresh):
    m = s = torch.zeros_like(x[0])
    for t in range(x.shape[0]):
        m = torch.add(m * (1 - s) * decay, x[t])
        s = torch.gt(m - thresh, 0, out=spikes[t])  # compare straight into float: fast on CPU


def _backward_torch(x, g, grad, decay, thresh, lens):
    # u_t = u_{t-1} (1 - s_{t-1}) decay + I_t, s_t = H(u_t - thresh). With gu = dL/du_{t+1}:
    #   dL/ds_t = g_t - gu decay u_t                      (reset path)
    #   dL/dI_t = dL/du_t = dL/ds_t sg(u_t) + gu decay (1 - s_t)
    m, s = torch.zeros_like(x[0]), torch.zeros_like(x[0])
    for t in range(x.shape[0]):  # the membrane, exactly as the forward computed it, into grad
        m = torch.add(m * (1 - s) * decay, x[t], out=grad[t])
        torch.gt(m - thresh, 0, out=s)
    gu = torch.zeros_like(g[0])
    sg, s = torch.empty_like(gu), torch.empty_like(gu)
    for t in range(g.shape[0] - 1, -1, -1):
        u = grad[t]  # read before grad[t] is overwritten below
        d = u - thresh
        ga = gu * decay
        gs = g[t] - ga * u
        torch.lt(d.abs(), lens, out=sg).div_(2 * lens)
        torch.gt(d, 0, out=s)
        gu = torch.add(gs * sg, ga * (1 - s), out=grad[t])

# -----------------------------------------------------------------------------
# fused Triton kernels (CUDA, float32): one program per BLOCK neurons, the time loop in registers

if triton is not None:

    @triton.jit
    def _lif_fwd_kernel(x_ptr, spk_ptr, T, N, decay, thresh, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < N
        m = tl.zeros([BLOCK], dtype=tl.float32)
        s = tl.zeros([BLOCK], dtype=tl.float32)
        for t in range(T):
            x = tl.load(x_ptr + offs, mask=mask).to(tl.float32)
            m = m * (1.0 - s) * decay + x
            s = (m - thresh > 0).to(tl.float32)
            tl.store(spk_ptr + offs, s, mask=mask)
            x_ptr += N  # pointer increments keep offsets 64-bit safe for large T*N
            spk_ptr += N

    @triton.jit
    def _lif_bwd_kernel(x_ptr, g_ptr, grad_ptr, T, N, last, decay, thresh, lens, height,
                        BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < N
        m = tl.zeros([BLOCK], dtype=tl.float32)
        s = tl.zeros([BLOCK], dtype=tl.float32)
        for t in range(T):  # recompute the membrane into grad, rounding exactly as the forward kernel
            x = tl.load(x_ptr + offs, mask=mask).to(tl.float32)
            m = m * (1.0 - s) * decay + x
            s = (m - thresh > 0).to(tl.float32)
            tl.store(grad_ptr + offs, m, mask=mask)
            x_ptr += N
            grad_ptr += N
        tl.debug_barrier()
        g_ptr += last  # last = (T-1)*N: walk t = T-1 .. 0
        gu = tl.zeros([BLOCK], dtype=tl.float32)
        for t in range(T):
            grad_ptr -= N
            u = tl.load(grad_ptr + offs, mask=mask)
            g = tl.load(g_ptr + offs, mask=mask).to(tl.float32)
            ga = gu * decay
            gs = g - ga * u
            sg = tl.where(tl.abs(u - thresh) < lens, height, 0.0)  # height = 1 / (2 lens)
            gu = gs * sg + ga * (1.0 - (u - thresh > 0).to(tl.float32))
            tl.store(grad_ptr + offs, gu, mask=mask)
            g_ptr -= N

BLOCK = 256


def _forward_triton(x, spikes, decay, thresh):
    T, N = x.shape
    assert x.dtype == torch.float32, 'the Triton path is float32 only; other dtypes use the torch loop'
    if x.numel() == 0:
        return
    # no fp fusion: m*(1-s)*decay + x must round like the unfused torch ops for bit-equal spikes
    _lif_fwd_kernel[(triton.cdiv(N, BLOCK),)](x, spikes, T, N, decay, thresh,
                                              BLOCK=BLOCK, enable_fp_fusion=False)


def _backward_triton(x, g, grad, decay, thresh, lens):
    T, N = x.shape
    if x.numel() == 0:
        return
    # no fp fusion here either: the recomputed membrane must equal the forward's bit for bit
    _lif_bwd_kernel[(triton.cdiv(N, BLOCK),)](x, g, grad, T, N, (T - 1) * N, decay, thresh, lens,
                                              1 / (2 * lens), BLOCK=BLOCK, enable_fp_fusion=False)
