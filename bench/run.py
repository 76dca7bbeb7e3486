"""Benchmark: the fast paths against the step-by-step definition, in the same run, on the same inputs
and the same device.

    python bench/run.py                        # the paper's sizes (hours on a small CPU; minutes on a GPU)
    python bench/run.py --quick                # reduced sizes, under 5 minutes on 2 CPU cores
    python bench/run.py --smoke                # tiny sizes, seconds: correctness only (tests/test_bench.py)
    python bench/run.py --device cuda --json bench.json

Sections: training steps (forward, loss, backward, clipping, SGD) of the PTB-650 redundant hybrid, the
restored ratio-0.5 hybrid, the S-MNIST-800 hybrid and the full-size DVS hybrid; the multi-step LIF alone
(forward + backward); the whole selection (Hessian traces, 300 probes) of the PTB-650 redundant hybrid.
For each: median time of both paths, speed-up, peak memory, the achieved FLOP rate as a fraction of this
device's matrix-multiply peak (sampled between the timed runs, so under the same load), the largest
relative difference of outputs and gradients (max |fast - def| / max |def| over each tensor) and the
number of differing spikes. In brackets after the difference, its rounding floor: the same difference
between the definition and the definition with every weight (the LIF alone: every input) moved up by one
float ulp, i.e. how far a mere change of rounding moves this network's outputs and gradients (a spike
or surrogate-window edge crossed by one ulp changes a gradient by far more than the ulp). On CUDA, TF32
is switched off so that both paths compute in float32, and cuDNN is deterministic as in the experiment
scripts (--cudnn). FLOPs are the definition's matrix products and convolutions, counted by
torch.utils.flop_counter. Peak memory: of a forward + backward pass (the LIF: of forward + backward; the
selection: of the whole computation), above the resting state (weights, gradients, optimiser state,
inputs), as the allocator counts it: CUDA's peak statistic, or on CPU the running total of the
allocations the profiler records.
"""
import argparse
import copy
import importlib.util
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # quiet profiler (used for CPU peak memory)
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from common import hessian, hybrid_conv, hybrid_fc  # noqa: E402
from common.fast.lif import lif_multistep, lif_multistep_reference  # noqa: E402
from common.hybrid_conv import HybridConvNet, build_configs, population_channels  # noqa: E402

# sizes: the paper's (full), reduced (quick), tiny (smoke). dvs batch: (cuda, cpu)
SIZES = {
    "full": dict(reps=5, ptb=dict(ntoken=10000, emsize=650, nhid=650, bptt=35, batch=25), smnist=dict(nhid=800, batch=100),
                 dvs=dict(channels=[128, 256, 384], size=32, T=60, batch=(36, 2)), lif=dict(T=(10, 35, 60, 100), B=32, N=4096),
                 selection=dict(ntoken=10000, emsize=650, nhid=650, bptt=35, batch=25, probes=300)),
    "quick": dict(reps=2, ptb=dict(ntoken=10000, emsize=256, nhid=256, bptt=35, batch=25), smnist=dict(nhid=400, batch=100),
                  dvs=dict(channels=[128, 256, 384], size=32, T=8, batch=(36, 1)), lif=dict(T=(10, 35, 60, 100), B=16, N=2048),
                  selection=dict(ntoken=10000, emsize=256, nhid=256, bptt=35, batch=25, probes=2)),
    "smoke": dict(reps=1, ptb=dict(ntoken=50, emsize=12, nhid=10, bptt=6, batch=3), smnist=dict(nhid=12, batch=4),
                  dvs=dict(channels=[4, 6, 4], size=12, T=4, batch=(2, 2)), lif=dict(T=(10, 35), B=2, N=64),
                  selection=dict(ntoken=50, emsize=12, nhid=10, bptt=6, batch=3, probes=3)),
}


def load_script(name, path):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -----------------------------------------------------------------------------
# measuring

def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device):
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


class Peak:
    """The device's matrix-multiply rate (FLOP/s), sampled between timed runs: the median is the peak
    under the load those runs saw."""

    def __init__(self, device, n):
        self.a, self.b = (torch.randn(n, n, device=device) for _ in range(2))
        self.device, self.n, self.samples = device, n, []
        self.sample()

    def sample(self, k=3):
        t = min(timed(lambda: self.a @ self.b, self.device) for _ in range(k))
        self.samples.append(2 * self.n ** 3 / t)

    def rate(self):
        return statistics.median(self.samples)


def peak_memory(fn, device):
    """Bytes at the peak of fn() above the level before it, as the allocator counts them: CUDA's peak
    statistic; on CPU the largest running total of the allocation events the profiler records."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    with tempfile.TemporaryDirectory() as tmp:
        prof.export_chrome_trace(os.path.join(tmp, "trace.json"))
        with open(os.path.join(tmp, "trace.json")) as f:
            events = json.load(f)["traceEvents"]
    total = peak = 0
    for e in sorted((e for e in events if e.get("name") == "[memory]" and e["args"].get("Device Type", 0) == 0),
                    key=lambda e: e["ts"]):
        total += e["args"]["Bytes"]
        peak = max(peak, total)
    return peak


def count_flops(fn):
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def rel_diff(fast, ref):
    """max over tensor pairs of max |fast - ref| / max |ref|."""
    worst = 0.0
    for a, b in zip(fast, ref):
        a, b = a.detach().double(), b.detach().double()
        worst = max(worst, ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item() if b.numel() else 0.0)
    return worst


def one_ulp_up(model):
    """A copy of `model` with every weight moved to the next float up: what a different rounding of
    the same arithmetic (another BLAS kernel, another summation order) does to its inputs."""
    nudged = copy.deepcopy(model)
    with torch.no_grad():
        for p in nudged.parameters():
            p.copy_(torch.nextafter(p, torch.full_like(p, float("inf"))))
    return nudged


def spike_mismatch(fast, ref):
    return int((fast != ref).sum().item()) if fast.shape == ref.shape else -1


class SpikeLog:
    """Records the spikes of every LIF population while a forward runs: the definition's lif_step calls
    (time-major) and the fast path's lif_multistep calls (layer-major) of `module`. .spikes(): all of
    them, flattened layer by layer."""

    def __init__(self, module):
        self.module, self.steps, self.scans = module, [], []

    def __enter__(self):
        self.saved = self.module.lif_step, self.module.lif_multistep

        def step(*args):
            mem, spk = self.saved[0](*args)
            self.steps.append(spk.detach())
            return mem, spk

        def scan(*args, **kw):
            spk = self.saved[1](*args, **kw)
            self.scans.append(spk.detach())
            return spk
        self.module.lif_step, self.module.lif_multistep = step, scan
        return self

    def __exit__(self, *exc):
        self.module.lif_step, self.module.lif_multistep = self.saved

    def spikes(self, n_layers):
        if self.scans:
            return torch.cat([s.flatten() for s in self.scans])
        return torch.cat([torch.stack(self.steps[l::n_layers]).flatten() for l in range(n_layers)])


PROFILE = False  # --profile: print where the fast path's time goes (torch.profiler), after its timing


def profile(name, fn, device):
    if not PROFILE:
        return
    acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch.profiler.profile(activities=acts) as prof:
        fn()
        sync(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(f"\n{name}, fast path, one step:\n{prof.key_averages().table(sort_by=key, row_limit=15)}\n", flush=True)


def run_pair(steps, device, peak, reps):
    """Median seconds of each step fn, interleaved (the order alternates every repetition), with a
    matrix-multiply peak sample after each repetition; the first call of each is a warm-up."""
    times = {name: [] for name in steps}
    for fn in steps.values():
        fn()
    for r in range(reps):
        for name in (list(steps) if r % 2 == 0 else list(steps)[::-1]):
            times[name].append(timed(steps[name], device))
        peak.sample()
    return {name: statistics.median(ts) for name, ts in times.items()}


def row(name, size, times, flops, peak, memory, diff, spikes, **extra):
    ref, fast = times["definition"], times["fast"]
    out = dict(section=name, size=size, definition_s=ref, fast_s=fast, speedup=ref / fast,
               peak_flops=peak.rate(), flops=flops,
               definition_peak_fraction=flops / ref / peak.rate() if flops else None,
               fast_peak_fraction=flops / fast / peak.rate() if flops else None,
               definition_memory=memory["definition"], fast_memory=memory["fast"],
               max_rel_diff=diff, spike_mismatches=spikes)
    out.update(extra)
    print(format_row(out), flush=True)
    return out

# -----------------------------------------------------------------------------
# training steps of the fc hybrids (PTB, S-MNIST)

def train_pair(build, batch, loss_fn, device, clip):
    """Two copies of one model (definition, fast), each with its SGD; returns (step fns, correctness)."""
    torch.manual_seed(0)
    ref = build().to(device)
    fast = copy.deepcopy(ref)
    ref.fast, fast.fast = False, True
    models = dict(definition=ref, fast=fast)
    optims = {k: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for k, m in models.items()}

    def forward_backward(m):
        torch.manual_seed(1)  # the same dropout masks in both paths
        m.zero_grad(set_to_none=False)  # the gradients' memory is part of the resting state
        out = loss_fn(m, batch)
        out[0].backward()
        return out

    def step(k):
        def fn():
            forward_backward(models[k])
            nn.utils.clip_grad_norm_(models[k].parameters(), clip)
            optims[k].step()
        return fn

    res, logs = {}, {}
    for k, m in models.items():  # correctness: the first step, from the same weights
        with SpikeLog(hybrid_fc) as logs[k]:
            res[k] = forward_backward(m)
    tensors = {k: [res[k][1]] + [p.grad for p in m.parameters()] for k, m in models.items()}
    diff = rel_diff(tensors["fast"], tensors["definition"])
    nudged = one_ulp_up(ref)
    out = forward_backward(nudged)
    floor = rel_diff([out[1]] + [p.grad for p in nudged.parameters()], tensors["definition"])
    del nudged
    n = len(logs["fast"].scans)
    spikes = spike_mismatch(logs["fast"].spikes(n), logs["definition"].spikes(n))
    flops = count_flops(lambda: forward_backward(ref))
    return {k: step(k) for k in models}, {k: (lambda m=m: forward_backward(m)) for k, m in models.items()}, diff, floor, spikes, flops


def bench_train(name, size, build, batch, loss_fn, device, peak, reps, clip):
    steps, passes, diff, floor, spikes, flops = train_pair(build, batch, loss_fn, device, clip)
    times = run_pair(steps, device, peak, reps)
    memory = {k: peak_memory(fn, device) for k, fn in passes.items()}
    profile(name, steps["fast"], device)
    return row(name, size, times, flops, peak, memory, diff, spikes, rounding_floor=floor)


def ptb_section(name, cfg, shapes, device, peak, reps):
    ptb = load_script("rnn_ptb", "experiments/rnn-ptb-650-0.5-0.6/rnn-ptb.py")
    rnn, snn = shapes
    g = torch.Generator().manual_seed(2)
    tokens = torch.randint(0, cfg["ntoken"], (cfg["bptt"] + 1, cfg["batch"]), generator=g).to(device)

    def loss_fn(m, tokens):
        out, _ = m(tokens[:-1], m.init_hidden(cfg["batch"]))
        return F.cross_entropy(out.view(-1, cfg["ntoken"]), tokens[1:].reshape(-1)), out

    size = f"rnn {rnn}, snn {snn}, emsize {cfg['emsize']}, vocab {cfg['ntoken']}, bptt {cfg['bptt']}, batch {cfg['batch']}"
    return bench_train(name, size, lambda: ptb.PTBModel(cfg["ntoken"], cfg["emsize"], rnn, snn, 0.5), tokens, loss_fn,
                       device, peak, reps, clip=1.0)


def smnist_section(cfg, device, peak, reps):
    smnist = load_script("rnn_smnist", "experiments/rnn-smnist-800-0.5-0.6/rnn-smnist.py")
    n, B = cfg["nhid"], cfg["batch"]
    g = torch.Generator().manual_seed(3)
    batch = (torch.rand(B, 1, 28, 28, generator=g).to(device), torch.randint(0, 10, (B,), generator=g).to(device))

    def loss_fn(m, batch):
        out, _ = m(batch[0])
        return F.cross_entropy(out, batch[1]), out

    return bench_train(f"S-MNIST-{n} hybrid", f"rnn [{n}, {n}], snn [{n}, {n}], T 28, batch {B}",
                       lambda: smnist.SMNISTModel([n, n], [n, n]), batch, loss_fn, device, peak, reps, clip=0.25)

# -----------------------------------------------------------------------------
# the DVS conv hybrid

def dvs_section(cfg, device, peak, reps):
    channels, T, size = cfg["channels"], cfg["T"], cfg["size"]
    B = cfg["batch"][0 if device.type == "cuda" else 1]
    g = torch.Generator().manual_seed(4)
    frames = ((torch.rand(B, 2, size, size, T, generator=g) < 0.2).float() * 2).to(device)  # event counts
    target = torch.eye(11, device=device)[torch.randint(0, 11, (B,), generator=g).to(device)]
    torch.manual_seed(0)
    rc, sc = population_channels("hybrid", channels)
    ref = HybridConvNet(*build_configs(channels, rc, sc, 2, size, 11), decay=0.3, thresh=0.5, lens=0.5).to(device)
    fast = copy.deepcopy(ref)
    ref.fast, fast.fast = False, True
    models = dict(definition=ref, fast=fast)
    optims = {k: torch.optim.Adam(m.parameters(), lr=5e-4) for k, m in models.items()}

    def forward_backward(k):
        models[k].zero_grad(set_to_none=False)
        out = models[k](frames)
        F.mse_loss(out, target).backward()
        return out

    outs, logs = {}, {}
    for k in models:
        with SpikeLog(hybrid_conv) as logs[k]:
            outs[k] = forward_backward(k)
    diff = rel_diff([outs["fast"]] + [p.grad for p in fast.parameters()], [outs["definition"]] + [p.grad for p in ref.parameters()])
    models["nudged"] = one_ulp_up(ref)
    floor = rel_diff([forward_backward("nudged")] + [p.grad for p in models.pop("nudged").parameters()],
                     [outs["definition"]] + [p.grad for p in ref.parameters()])
    n = len(logs["fast"].scans)
    mism = spike_mismatch(logs["fast"].spikes(n), logs["definition"].spikes(n))
    flops = count_flops(lambda: forward_backward("definition"))

    def step(k):
        def fn():
            forward_backward(k)
            optims[k].step()
        return fn
    steps = {k: step(k) for k in models}
    times = run_pair(steps, device, peak, reps)
    memory = {k: peak_memory(lambda k=k: forward_backward(k), device) for k in models}
    profile("DVS hybrid", steps["fast"], device)
    return row("DVS hybrid", f"channels {channels} x2, {size}x{size}, T {T}, batch {B}", times, flops, peak, memory, diff, mism,
               rounding_floor=floor)

# -----------------------------------------------------------------------------
# the multi-step LIF alone

def lif_section(T, cfg, device, peak, reps):
    B, N = cfg["B"], cfg["N"]
    g = torch.Generator().manual_seed(5)
    x = (torch.randn(T, B, N, generator=g) * 0.6 + 0.3).to(device)
    w = torch.randn(T, B, N, generator=g).to(device)
    fns = dict(definition=lif_multistep_reference, fast=lif_multistep)
    res = {}

    def run(k, x=x):
        xi = x.clone().requires_grad_()
        s = fns[k](xi, 0.6, 0.6, 0.5)
        (s * w).sum().backward()
        return s.detach(), xi.grad

    for k in fns:
        res[k] = run(k)
    steps = {k: (lambda k=k: run(k)) for k in fns}
    memory = {k: peak_memory(fn, device) for k, fn in steps.items()}
    times = run_pair(steps, device, peak, reps)
    nudged = run("definition", torch.nextafter(x, torch.full_like(x, float("inf"))))
    return row(f"multi-step LIF T={T}", f"[{T}, {B}, {N}], forward + backward", times, 0, peak, memory,
               rel_diff([res["fast"][1]], [res["definition"][1]]), spike_mismatch(res["fast"][0], res["definition"][0]),
               rounding_floor=rel_diff([nudged[1]], [res["definition"][1]]))

# -----------------------------------------------------------------------------
# selection: Hessian traces of the PTB redundant hybrid

def selection_section(cfg, device, peak, batch_sizes):
    ptb = load_script("rnn_ptb", "experiments/rnn-ptb-650-0.5-0.6/rnn-ptb.py")
    n, ntoken, B = cfg["nhid"], cfg["ntoken"], cfg["batch"]
    torch.manual_seed(0)
    model = ptb.PTBModel(ntoken, cfg["emsize"], [n, n], [n, n], 0.5).to(device).eval()
    g = torch.Generator().manual_seed(6)
    tokens = torch.randint(0, ntoken, (cfg["bptt"] + 1, B), generator=g).to(device)
    groups = model.probed_groups()

    def loss():
        out, _ = model(tokens[:-1], model.init_hidden(B))
        return F.cross_entropy(out.view(-1, ntoken), tokens[1:].reshape(-1))

    def traces(fast, fn, **kw):
        model.fast = fast
        torch.manual_seed(7)
        return fn(loss(), groups, cfg["probes"], **kw)

    runs = dict(definition=(False, hessian.hutchinson_traces_reference, {}))
    for k in batch_sizes:
        runs[f"fast, {k} probe{'s' if k > 1 else ''} per product"] = (True, hessian.hutchinson_traces, dict(probe_batch=k))
    times, memory, values, spikes = {}, {}, {}, {}
    for name, (fast, fn, kw) in runs.items():
        def once():
            with SpikeLog(hybrid_fc) as log:
                values[name] = traces(fast, fn, **kw)
            spikes[name] = log.spikes(2)
        t0 = time.perf_counter()
        memory[name] = peak_memory(once, device)
        times[name] = time.perf_counter() - t0
        peak.sample()
    # bookkeeping alone, per probe, on one real product; the FLOPs of the estimator (the definition's)
    model.fast = False
    params = [t for ts, _, _ in groups.values() for t in ts]
    with FlopCounterMode(display=False) as setup:
        grads = torch.autograd.grad(loss(), params, create_graph=True)
    v = hessian.draw_probes(groups)
    with FlopCounterMode(display=False) as product:
        hv = torch.autograd.grad(grads, params, v)
    flops = setup.get_total_flops() + cfg["probes"] * product.get_total_flops()
    book_ref = timed(lambda: hessian.channel_dots_reference(hv, v, groups), device)
    book_fast = min(timed(lambda: hessian.per_neuron([a * b for a, b in zip(hv, v)], groups), device) for _ in range(3))
    ref = values["definition"]
    rows = []
    size = f"rnn [{n}, {n}], snn [{n}, {n}], emsize {cfg['emsize']}, vocab {ntoken}, bptt {cfg['bptt']}, batch {B}, {cfg['probes']} probes"
    for name in runs:
        if name == "definition":
            continue
        diff = max(rel_diff([values[name][k]], [ref[k]]) for k in ref)
        t = dict(definition=times["definition"], fast=times[name])
        m = dict(definition=memory["definition"], fast=memory[name])
        rows.append(row(f"selection ({name})", size, t, flops, peak, m, diff, spike_mismatch(spikes[name], spikes["definition"]),
                        bookkeeping_share_definition=book_ref * cfg["probes"] / times["definition"],
                        bookkeeping_share_fast=book_fast * cfg["probes"] / times[name],
                        per_probe_definition_s=times["definition"] / cfg["probes"],
                        per_probe_fast_s=times[name] / cfg["probes"]))
    return rows

# -----------------------------------------------------------------------------
# report

def mb(x):
    return "n/a" if x is None else f"{x / 2 ** 20:.0f}" if x >= 10 * 2 ** 20 else f"{x / 2 ** 20:.2g}"


def pct(x):
    return "-" if not x else f"{100 * x:.0f}%"


HEADER = ("| section | size | definition (s) | fast (s) | speed-up | peak mem def / fast (MB) | "
          "FLOP rate / peak def / fast | max rel diff (floor) | spike mismatches |\n|---|---|---|---|---|---|---|---|---|")


def format_row(r):
    extra = ""
    if "bookkeeping_share_fast" in r:
        extra = (f" (bookkeeping {pct(r['bookkeeping_share_definition'])} / {pct(r['bookkeeping_share_fast'])} of the time;"
                 f" per probe {r['per_probe_definition_s']:.3g} / {r['per_probe_fast_s']:.3g} s)")
    floor = f" ({r['rounding_floor']:.1e})" if r.get("rounding_floor") is not None else ""
    return (f"| {r['section']}{extra} | {r['size']} | {r['definition_s']:.4g} | {r['fast_s']:.4g} | {r['speedup']:.2f}x | "
            f"{mb(r['definition_memory'])} / {mb(r['fast_memory'])} | "
            f"{pct(r['definition_peak_fraction'])} / {pct(r['fast_peak_fraction'])} | {r['max_rel_diff']:.1e}{floor} | "
            f"{r['spike_mismatches']} |")


def machine(device):
    info = dict(torch=torch.__version__, threads=torch.get_num_threads(), device=device.type,
                load_average=os.getloadavg()[0] if hasattr(os, "getloadavg") else None)
    if device.type == "cuda":
        info["card"] = torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        info["cpu"] = platform.processor()
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="reduced sizes (under 5 minutes on 2 CPU cores)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: correctness only")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--json", default=None, help="write the numbers to this file")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--only", default=None, help="comma-separated sections: ptb,restored,smnist,dvs,lif,selection")
    parser.add_argument("--probes", type=int, default=None, help="override the number of Hessian probes")
    parser.add_argument("--reps", type=int, default=None, help="override the timed repetitions")
    parser.add_argument("--profile", action="store_true", help="print a profile of the fast path of each training step")
    parser.add_argument("--probe-batches", default=None,
                        help="comma-separated probes per product for the fast selection (default: 1,10 on CUDA, 1 on CPU)")
    parser.add_argument("--cudnn", default="deterministic", choices=("deterministic", "default", "benchmark"),
                        help="cuDNN algorithm choice: deterministic (as the experiment scripts), torch's default, "
                             "or benchmark (autotuned)")
    args = parser.parse_args(argv)
    global PROFILE
    PROFILE = args.profile
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    cfg = copy.deepcopy(SIZES[mode])
    cfg["reps"] = args.reps or cfg["reps"]
    cfg["selection"]["probes"] = args.probes or cfg["selection"]["probes"]
    device = torch.device(args.device)
    if device.type == "cuda":  # exact float32 in both paths (no TF32), so that differences are the paths'
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = args.cudnn == "deterministic"
    torch.backends.cudnn.benchmark = args.cudnn == "benchmark"
    if args.threads:
        torch.set_num_threads(args.threads)
    sections = (args.only or "ptb,restored,smnist,dvs,lif,selection").split(",")
    info = machine(device)
    info["cudnn"] = args.cudnn
    print(f"# bench/run.py --{mode}: {info}", flush=True)
    peak = Peak(device, 256 if mode == "smoke" else 4096 if device.type == "cuda" else 1024)
    print(HEADER, flush=True)
    rows, start = [], time.time()

    def save():  # after every section, so that an interrupted run keeps what it measured
        info.update(mode=mode, peak_flops=peak.rate(), seconds=time.time() - start)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(dict(machine=info, rows=rows), f, indent=1)
    p = cfg["ptb"]
    if "ptb" in sections:
        rows.append(ptb_section(f"PTB-{p['nhid']} redundant hybrid", p, ([p["nhid"]] * 2, [p["nhid"]] * 2), device, peak, cfg["reps"]))
        save()
    if "restored" in sections:
        half = p["nhid"] // 2
        rows.append(ptb_section("PTB restored hybrid, ratio 0.5", p, ([half] * 2, [half] * 2), device, peak, cfg["reps"]))
        save()
    if "smnist" in sections:
        rows.append(smnist_section(cfg["smnist"], device, peak, cfg["reps"]))
        save()
    if "dvs" in sections:
        rows.append(dvs_section(cfg["dvs"], device, peak, max(1, cfg["reps"] - 1)))
        save()
    if "lif" in sections:
        for T in cfg["lif"]["T"]:
            rows.append(lif_section(T, cfg["lif"], device, peak, cfg["reps"]))
        save()
    if "selection" in sections:
        batches = (1, 10) if device.type == "cuda" else (1,) if mode != "smoke" else (1, 2)
        if args.probe_batches:
            batches = tuple(int(k) for k in args.probe_batches.split(","))
        rows.extend(selection_section(cfg["selection"], device, peak, batches))
    save()
    print(f"\nmatrix-multiply peak (median of {len(peak.samples)} samples, {peak.n}x{peak.n} float32): "
          f"{peak.rate() / 1e9:.1f} GFLOP/s; total {info['seconds']:.0f} s", flush=True)
    return rows


if __name__ == "__main__":
    main()
