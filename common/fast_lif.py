"""Multi-step LIF: the whole time loop in one autograd node.

lif_multistep(currents, decay, thresh, lens) returns the same spikes as running
common.neurons.lif_step T times from zero state, with the same first-order gradient
(surrogate window and reset path included), but without one autograd graph per step:
the forward loops under no_grad and saves the membrane, the backward is a reverse loop.

On CUDA (float32, triton importable) both loops are fused Triton kernels, one program
per block of neurons looping over T in registers. Everything else runs the torch loop.

First-order only: backward with create_graph=True (double backward, Hessian-vector
products) raises. Use lif_multistep_reference, or lif_step, for second-order work.
torch.func transforms (vmap, grad, jvp) are not supported either; lif_step supports them.
"""
import torch

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

    decay, thresh, lens are Python floats. backend: None (auto), 'torch' or 'triton'.
    Memory saved for the backward: the membrane, T x numel in the input dtype (the size of
    `currents`); spikes are recomputed from it.
    """
    if backend is None:
        backend = 'triton' if _triton_ok(currents) else 'torch'
    return _LIFMultiStep.apply(currents, float(decay), float(thresh), float(lens), backend)


def _triton_ok(x):
    return triton is not None and x.is_cuda and x.dtype == torch.float32


class _LIFMultiStep(torch.autograd.Function):

    @staticmethod
    def forward(ctx, currents, decay, thresh, lens, backend):
        x = currents.contiguous()
        spikes, mem = torch.empty_like(x), torch.empty_like(x)
        fwd = _forward_triton if backend == 'triton' else _forward_torch
        flat = lambda a: a.view(a.shape[0], -1)  # [T, N]
        fwd(flat(x), flat(spikes), flat(mem), decay, thresh)
        ctx.save_for_backward(mem)
        ctx.decay, ctx.thresh, ctx.lens, ctx.backend = decay, thresh, lens, backend
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        if torch.is_grad_enabled():
            raise RuntimeError("lif_multistep is first-order only (no create_graph / double backward); "
                               "use lif_multistep_reference or common.neurons.lif_step for Hessians")
        mem, = ctx.saved_tensors
        g = grad_spikes.contiguous()
        grad = torch.empty_like(g)
        bwd = _backward_triton if ctx.backend == 'triton' else _backward_torch
        flat = lambda a: a.view(a.shape[0], -1)
        bwd(flat(g), flat(mem), flat(grad), ctx.decay, ctx.thresh, ctx.lens)
        return grad, None, None, None, None

# -----------------------------------------------------------------------------
# torch loop (any device, any float dtype). Inputs and outputs are [T, N] and contiguous.

def _forward_torch(x, spikes, mem, decay, thresh):
    m = s = torch.zeros_like(x[0])
    for t in range(x.shape[0]):
        m = torch.add(m * (1 - s) * decay, x[t], out=mem[t])
        s = torch.gt(m - thresh, 0, out=spikes[t])  # compare straight into float: fast on CPU


def _backward_torch(g, mem, grad, decay, thresh, lens):
    # u_t = u_{t-1} (1 - s_{t-1}) decay + I_t, s_t = H(u_t - thresh). With gu = dL/du_{t+1}:
    #   dL/ds_t = g_t - gu decay u_t                      (reset path)
    #   dL/dI_t = dL/du_t = dL/ds_t sg(u_t) + gu decay (1 - s_t)
    gu = torch.zeros_like(g[0])
    sg, s = torch.empty_like(gu), torch.empty_like(gu)
    for t in range(g.shape[0] - 1, -1, -1):
        u = mem[t]
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
    def _lif_fwd_kernel(x_ptr, spk_ptr, mem_ptr, T, N, decay, thresh, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < N
        m = tl.zeros([BLOCK], dtype=tl.float32)
        s = tl.zeros([BLOCK], dtype=tl.float32)
        for t in range(T):
            x = tl.load(x_ptr + offs, mask=mask).to(tl.float32)
            m = m * (1.0 - s) * decay + x
            s = (m - thresh > 0).to(tl.float32)
            tl.store(mem_ptr + offs, m, mask=mask)
            tl.store(spk_ptr + offs, s, mask=mask)
            x_ptr += N  # pointer increments keep offsets 64-bit safe for large T*N
            spk_ptr += N
            mem_ptr += N

    @triton.jit
    def _lif_bwd_kernel(g_ptr, mem_ptr, grad_ptr, T, N, last, decay, thresh, lens, height,
                        BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < N
        g_ptr += last  # last = (T-1)*N: walk t = T-1 .. 0
        mem_ptr += last
        grad_ptr += last
        gu = tl.zeros([BLOCK], dtype=tl.float32)
        for t in range(T):
            u = tl.load(mem_ptr + offs, mask=mask).to(tl.float32)
            g = tl.load(g_ptr + offs, mask=mask).to(tl.float32)
            ga = gu * decay
            gs = g - ga * u
            sg = tl.where(tl.abs(u - thresh) < lens, height, 0.0)  # height = 1 / (2 lens)
            gu = gs * sg + ga * (1.0 - (u - thresh > 0).to(tl.float32))
            tl.store(grad_ptr + offs, gu, mask=mask)
            g_ptr -= N
            mem_ptr -= N
            grad_ptr -= N

BLOCK = 256


def _forward_triton(x, spikes, mem, decay, thresh):
    T, N = x.shape
    assert x.dtype == torch.float32, 'the Triton path is float32 only; other dtypes use the torch loop'
    if x.numel() == 0:
        return
    # no fp fusion: m*(1-s)*decay + x must round like the unfused torch ops for bit-equal spikes
    _lif_fwd_kernel[(triton.cdiv(N, BLOCK),)](x, spikes, mem, T, N, decay, thresh,
                                              BLOCK=BLOCK, enable_fp_fusion=False)


def _backward_triton(g, mem, grad, decay, thresh, lens):
    T, N = mem.shape
    if mem.numel() == 0:
        return
    _lif_bwd_kernel[(triton.cdiv(N, BLOCK),)](g, mem, grad, T, N, (T - 1) * N, decay, thresh, lens,
                                              1 / (2 * lens), BLOCK=BLOCK)
