"""How the RNN/SNN energy ratio of S-MNIST grows with width, at a stated firing rate.

The pure sigmoid RNN and the pure SNN of experiments/rnn-smnist-800-0.5-0.6 (two layers of `width` neurons,
28 steps of 28 pixels, readout of [layer-2 firing rate, last RNN state] into 10 classes), counted under
the standard convention in closed form (tests/test_cost_conventions.py checks the closed form against the
counter on real models):
    RNN  MACs = T (ninp w + 3 w^2) + w nout
    SNN  MACs = T (ninp w) + T 2w (membrane updates),   ACs = r1 T w^2 + r2 T w nout
where r1, r2 are the firing rates of the SNN's two layers (spikes per neuron per step). The SNN's energy with
dense activations (every synapse a MAC, same weights and neurons) splits the ratio into architecture
(RNN / dense SNN: the SNN has no recurrent weights) and spiking (dense SNN / SNN). The memory term is
--memory sram-fit --memory_model step: a weight read per synaptic op, the state read and written per step,
32-bit words from an SRAM the size of the model's weights.

    python bench/cost-scaling.py [--rates 0.132,0.240] [--widths 30,60,120,240,480,800] [--arithmetic fp32]

The firing rates default to those measured on a width-64 SNN (see docs/cost-conventions.md); wider trained
networks may fire at other rates, so the numbers are what the counting rule gives at those rates, not a
measurement of trained networks at every width.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import cost  # noqa: E402

T, NINP, NOUT = 28, 28, 10
WIDTHS = (30, 60, 120, 240, 480, 800)  # the selection-criteria study's widths, and the paper's 800


def smnist_counts(width, rates=None, arithmetic="fp32"):
    """Per-sample counts and energies (pJ) of the pure RNN (rates None) or the pure SNN at firing rates
    (r1, r2), under the standard convention, with the sram-fit memory term (step model)."""
    w = width
    mac_pj, ac_pj = cost.ARITHMETIC[arithmetic]
    if rates is None:
        macs, acs = T * (NINP * w + 3 * w * w) + w * NOUT, 0
        neuron_macs, dense_macs = 0, macs
        params = NINP * w + 3 * w * w + w * NOUT + NOUT
        state_steps = T * 2 * w
    else:
        r1, r2 = rates
        neuron_macs = T * 2 * w
        macs = T * NINP * w + neuron_macs
        acs = r1 * T * w * w + r2 * T * w * NOUT
        dense_macs = T * (NINP * w + w * w) + w * NOUT
        params = NINP * w + w * w + w * NOUT + NOUT
        state_steps = T * 2 * w
    energy = macs * mac_pj + acs * ac_pj
    access_pj = cost.sram_fit_pj(4 * params)
    memory = (macs - neuron_macs + acs + 2 * state_steps) * access_pj
    return dict(macs=macs, acs=acs, energy_pj=energy, energy_dense_activations_pj=(dense_macs + neuron_macs) * mac_pj,
                params=params, memory_access_pj=access_pj, energy_memory_pj=memory,
                energy_with_memory_pj=energy + memory)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", default="0.132,0.240", help="firing rates of the SNN's layers 1 and 2")
    p.add_argument("--widths", default=",".join(map(str, WIDTHS)))
    p.add_argument("--arithmetic", choices=sorted(cost.ARITHMETIC), default="fp32")
    args = p.parse_args()
    rates = tuple(float(r) for r in args.rates.split(","))
    if len(rates) != 2 or not all(0 <= r <= 1 for r in rates):
        sys.exit(f"--rates: two firing rates in [0, 1], got {args.rates!r}")
    print(f"S-MNIST, standard convention, {args.arithmetic}, SNN firing rates {rates[0]:g} / {rates[1]:g}; "
          f"energy per sample in nJ")
    print("| width | RNN | SNN | RNN/SNN | architecture | spiking | RNN + mem | SNN + mem | RNN/SNN with memory |")
    print("|---|---|---|---|---|---|---|---|---|")
    for width in map(int, args.widths.split(",")):
        rnn, snn = smnist_counts(width, None, args.arithmetic), smnist_counts(width, rates, args.arithmetic)
        dense = snn["energy_dense_activations_pj"]
        print(f"| {width} | {rnn['energy_pj'] / 1e3:,.1f} | {snn['energy_pj'] / 1e3:,.1f} | "
              f"{rnn['energy_pj'] / snn['energy_pj']:.1f}x | {rnn['energy_pj'] / dense:.1f}x | "
              f"{dense / snn['energy_pj']:.1f}x | {rnn['energy_with_memory_pj'] / 1e3:,.0f} | "
              f"{snn['energy_with_memory_pj'] / 1e3:,.0f} | "
              f"{rnn['energy_with_memory_pj'] / snn['energy_with_memory_pj']:.1f}x |")


if __name__ == "__main__":
    main()
