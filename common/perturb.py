"""Perturbations for the robustness evaluation, each drawn from its own generator.

Every perturbation at every strength gets a torch.Generator seeded from (seed, kind, strength), and all
noise is drawn on the CPU in a fixed order (the test set in its fixed order; weights in named_parameters
order), so every model evaluated with the same seed sees the same noise, on any device. Strength 0 leaves
the data and the weights exactly as they are.

  input_noise   x + s * scale * N(0, 1) on the network input: pixels (scale 1, pixels lie in [0, 1]) or
                word embeddings (scale = std of the embedding table)
  weight_noise  W + s * std(W) * N(0, 1) for every weight tensor (2 or more dims; biases untouched)
  event_drop    each event of an event frame is dropped with probability s (counts thinned binomially)
  pixel_drop    each sensor pixel (x, y) of a sample is dead, all polarities and frames, with probability s
  jitter        each event moves round(N(0, s^2)) frames in time (s in frames); events leaving the
                window are lost
"""
import hashlib
import math

import torch

FC_KINDS = ("input_noise", "weight_noise")
EVENT_KINDS = ("event_drop", "pixel_drop", "jitter", "weight_noise")
DEFAULTS = {
    "input_noise": [0.0, 0.1, 0.2, 0.5, 1.0],
    "weight_noise": [0.0, 0.05, 0.1, 0.2, 0.5],
    "event_drop": [0.0, 0.1, 0.25, 0.5, 0.75],
    "pixel_drop": [0.0, 0.1, 0.25, 0.5, 0.75],
    "jitter": [0.0, 0.5, 1.0, 2.0, 4.0],
}


def generator(seed, kind, strength):
    """A CPU generator whose seed depends only on (seed, kind, strength)."""
    digest = hashlib.sha256(f"{int(seed)}/{kind}/{float(strength)!r}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


def gaussian(x, strength, scale, gen):
    noise = torch.randn(x.shape, generator=gen, dtype=torch.float32)
    return x + (strength * scale * noise).to(x.device, x.dtype)


def _counts(x):
    """Event frames as (signed) integer counts on the CPU."""
    c = x.detach().to("cpu", torch.float64)
    if not torch.equal(c, c.round()):
        raise ValueError("event drop and jitter need frames of whole event counts")
    return c


def event_drop(x, p, gen):
    c = _counts(x)
    kept = torch.binomial(c.abs(), torch.full_like(c, 1.0 - p), generator=gen)
    return (c.sign() * kept).to(x.device, x.dtype)


def pixel_drop(x, p, gen):
    """x: [B, C, H, W, T]; one alive/dead draw per (sample, pixel)."""
    B, _, H, W, _ = x.shape
    alive = (torch.rand(B, 1, H, W, 1, generator=gen) >= p).to(x.device, x.dtype)
    return x * alive


def jitter(x, sigma, gen):
    """x: [B, C, H, W, T]. Each event's shift k ~ round(N(0, sigma^2)), drawn as a multinomial split of
    every count over the shifts |k| <= ceil(4 sigma) (a sequence of binomial draws)."""
    c = _counts(x)
    sign, left = c.sign(), c.abs()
    K = math.ceil(4 * sigma) if sigma > 0 else 0
    phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))
    shifts = list(range(-K, K + 1))
    probs = [phi((k + 0.5) / sigma) - phi((k - 0.5) / sigma) if sigma > 0 else 1.0 for k in shifts]
    out, rest = torch.zeros_like(c), sum(probs)
    T = c.shape[-1]
    for k, p in zip(shifts, probs):
        if k == shifts[-1]:
            n = left
        else:
            n = torch.binomial(left, torch.full_like(left, min(1.0, p / rest) if rest > 0 else 0.0), generator=gen)
        left, rest = left - n, rest - p
        if abs(k) < T:  # frame t moves to t + k
            src = slice(max(0, -k), T - max(0, k))
            dst = slice(max(0, k), T - max(0, -k))
            out[..., dst] += sign[..., src] * n[..., src]
    return out.to(x.device, x.dtype)


EVENT_FNS = {"event_drop": event_drop, "pixel_drop": pixel_drop, "jitter": jitter}


def add_weight_noise(model, strength, gen):
    """In place: W += strength * std(W) * N(0, 1) for every parameter with 2 or more dims."""
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() >= 2 and p.numel() > 1:
                noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
                p.add_((strength * p.detach().std().item() * noise).to(p.device, p.dtype))


def auc(strengths, values):
    """The area under the metric-vs-strength curve (trapezoids), divided by the strength range: the mean
    metric over the tested range, in the metric's unit. One strength: its value."""
    pts = sorted(zip(strengths, values))
    if len(pts) == 1:
        return pts[0][1]
    area = sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in zip(pts, pts[1:]))
    return area / (pts[-1][0] - pts[0][0])
