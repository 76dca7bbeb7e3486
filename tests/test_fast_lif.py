"""lif_multistep (torch loop and Triton kernels) against the step-by-step definition."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from common.fast.lif import lif_multistep, lif_multistep_reference
from common.neurons import spike

CONSTS = [(0.6, 0.6, 0.5), (0.3, 0.5, 0.5), (0.3, 0.3, 0.25)]  # (decay, thresh, lens)
SHAPES = {'fc': (35, 4, 50), 'conv': (6, 2, 3, 8, 8)}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def downstream(s, w):
    """A loss that uses the spikes non-linearly, so dL/ds differs per element and step."""
    return ((s.cumsum(0) * w).sin() ** 2).sum() + (s.sum(0) * w[0]).tanh().sum()


def version(text):
    return tuple(int(part) for part in text.split('.')[:2])


def compare(x, consts, backend=None):
    """Spikes and dL/dcurrents of both implementations on currents x."""
    w = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(1)).to(x.device)
    out = []
    for f in (lif_multistep_reference, lambda *a: lif_multistep(*a, backend=backend)):
        xi = x.clone().requires_grad_()
        s = f(xi, *consts)
        g, = torch.autograd.grad(downstream(s, w), xi)
        out += [s, g]
    return out


def randn(shape, mean, std, dtype=torch.float32, seed=0):
    return torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(seed)) * std + mean


@pytest.mark.parametrize('shape', SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize('consts', CONSTS)
def test_matches_definition_float32(shape, consts):
    s_ref, g_ref, s, g = compare(randn(shape, consts[1] * 0.5, 0.6), consts)
    assert 0.05 < s_ref.mean() < 0.95 and g_ref.abs().max() > 0
    assert torch.equal(s, s_ref)
    torch.testing.assert_close(g, g_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('shape', SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize('consts', CONSTS)
def test_matches_definition_float64(shape, consts):
    s_ref, g_ref, s, g = compare(randn(shape, consts[1] * 0.5, 0.6, torch.float64), consts)
    assert torch.equal(s, s_ref)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('consts', CONSTS)
def test_reset_path_matters(consts):
    # large currents: spikes at most steps, membrane often in the surrogate window after a reset
    decay, thresh, lens = consts
    x = randn(SHAPES['fc'], thresh + 0.3 * lens, 0.5 * lens, torch.float64)
    s_ref, g_ref, s, g = compare(x, consts)
    assert s_ref.mean() > 0.5
    assert torch.equal(s, s_ref)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-12)
    # the same gradient with a detached reset is far off, so the check above sees the reset path
    xi = x.clone().requires_grad_()
    mem = spk = torch.zeros_like(x[0])
    out = []
    for xt in xi:
        mem = mem * (1 - spk.detach()) * decay + xt
        spk = spike(mem, thresh, lens)
        out.append(spk)
    w = torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(1))
    g_detached, = torch.autograd.grad(downstream(torch.stack(out), w), xi)
    assert (g_detached - g_ref).norm() > 0.1 * g_ref.norm()


@pytest.mark.parametrize('consts', CONSTS)
def test_zero_spikes(consts):
    # currents below thresh (1 - decay): the membrane never reaches thresh but sits in the window
    decay, thresh, lens = consts
    x = torch.rand(SHAPES['conv'], generator=torch.Generator().manual_seed(0)) * 0.9 * thresh * (1 - decay)
    s_ref, g_ref, s, g = compare(x, consts)
    assert s.sum() == 0 and s_ref.sum() == 0
    assert g_ref.abs().max() > 0
    torch.testing.assert_close(g, g_ref, rtol=1e-5, atol=1e-6)


def test_strict_threshold_and_layouts():
    # mem == thresh exactly gives no spike; non-contiguous input; input without grad
    x = randn((4, 35, 50), 0.3, 0.6).transpose(0, 1)  # [T, B, N], not contiguous
    x[0, 0, :10] = 0.5
    s_ref, g_ref, s, g = compare(x, (0.3, 0.5, 0.5))
    assert s[0, 0, :10].sum() == 0
    assert torch.equal(s, s_ref)
    torch.testing.assert_close(g, g_ref, rtol=1e-5, atol=1e-6)
    assert not lif_multistep(x, 0.3, 0.5, 0.5).requires_grad


@pytest.mark.parametrize('consts', CONSTS)
def test_second_order_equals_definition(consts):
    # Hessian-vector products through the node (sequential and batched probes) are the definition's
    g = torch.Generator().manual_seed(3)
    w1 = torch.randn(5, 40, dtype=torch.float64, generator=g).requires_grad_()
    w2 = torch.randn(40, 3, dtype=torch.float64, generator=g)
    x = torch.randn(20, 4, 5, dtype=torch.float64, generator=g) + consts[1]
    probes = torch.randint(0, 2, (3, 5, 40), generator=g).to(torch.float64) * 2 - 1
    out = []
    for f in (lif_multistep_reference, lif_multistep):
        s = f(x @ w1, *consts)
        loss = ((s.cumsum(0) @ w2).sin() ** 2).sum() + (s * w2.sum(1)).tanh().sum()
        grad, = torch.autograd.grad(loss, w1, create_graph=True)
        seq = torch.stack([torch.autograd.grad(grad, w1, v, retain_graph=True)[0] for v in probes])
        batched, = torch.autograd.grad(grad, w1, probes, is_grads_batched=True)
        out.append((seq, batched))
    (ref, ref_b), (seq, batched) = out
    assert ref.abs().max() > 0
    for a in (ref_b, seq, batched):
        torch.testing.assert_close(a, ref, rtol=1e-10, atol=1e-10)


TRITON_SCRIPT = textwrap.dedent("""
    import torch
    import common.fast.lif
    from tests.test_fast_lif import compare, randn, CONSTS, SHAPES
    for shape in list(SHAPES.values()) + [(3, 1, 700)]:  # 700: last block partly masked
        for consts in CONSTS:
            s_ref, g_ref, s, g = compare(randn(shape, consts[1] * 0.5, 0.6), consts, backend='triton')
            assert torch.equal(s, s_ref), (shape, consts)
            torch.testing.assert_close(g, g_ref, rtol=1e-5, atol=1e-6)
    print('triton interpreter ok')
""")


def test_triton_kernels_in_interpreter():
    triton = pytest.importorskip('triton', reason='triton is not installed')
    import numpy
    if version(triton.__version__) < (3, 7) and version(numpy.__version__) >= (2, 4):
        pytest.skip(f'the interpreter of Triton {triton.__version__} cannot loop over a runtime bound under '
                    f'NumPy {numpy.__version__} (it converts a 1-element array to int); test_cuda.py runs the compiled kernels')
    env = dict(os.environ, TRITON_INTERPRET='1', PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, '-c', TRITON_SCRIPT], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and 'triton interpreter ok' in r.stdout, r.stdout + r.stderr
