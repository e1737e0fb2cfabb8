"""Behaviour pins: the per-epoch metrics of tiny ring8 and DCGAN runs must not change under a refactor.

The typed-config refactor was checked against values recorded before it (all metrics equal, to the bit). The
pins were re-recorded after the protocol fixes that change training on purpose (D's output layer takes the
model's init; PacGAN-m draws m x batch samples a step; 2026-12-05, ring8_unrolled only: the unrolled G loss gained
the real half of D's loss at the unrolled D), and when a metric is added (2026-12-05: eval/modes_with_mass, every
other value unchanged): re-record them only for such a change, and say so.
Training and evaluation stay pinned to the bit. Two diagnostics are compared with a tolerance since the step
stopped doing per-step bookkeeping on the device (#12): an epoch's means are summed once at its end (float64,
other order: 1e-12), and gradient norms are a norm of per-tensor norms (float32, other order: 1e-6).

Pins are kept per CPU instruction set (`torch.backends.cpu.get_cpu_capability()`): PyTorch's float32 CPU kernels
round differently under AVX2 and AVX512, so the same code gives other bits on another CPU. Measured 2026-12-04: the
pins of the earlier machines, on an AVX512 Xeon, differ by up to 1.3e-7 relative in `grad/d`, and in one
evaluation (eval/coverage 0.01 against 0.0 at epoch 2 of ring8_pack_noise_gp); every commit back to the one that
recorded them gives the same differences here, so they come from the machine, not the code. On a CPU without pins
the test skips and says how to record them (`python tests/trainables/test_pinned.py --record`); record them only
from a commit whose pins pass on a CPU that has them.
The instruction set is not the whole story: measured 2026-12-05, an AMD EPYC with AVX512 gives the Xeon's AVX512
pins for the DCGAN but not for the MLPs (3.7e-8 relative in the first epoch's D-loss means, growing from there),
at the commit whose pins the Xeon passed (a40e5ea) as after it, from float32 matrix products that differ between
the two vendors. Pins recorded on a CPU model are kept under "<capability> <model name>" and preferred there; the
bare capability keeps the pins first recorded under it.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

from trainables.run import GANRun

PINS = Path(__file__).with_name("pinned_metrics.json")
CPU = torch.backends.cpu.get_cpu_capability()  # "AVX2", "AVX512", "DEFAULT", ...


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("AMD EPYC", ...), or "" where there is none."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return ""
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "")


CPU_KEY = f"{CPU} {_cpu_model()}".strip()  # where this CPU's own pins live


def _pins() -> dict | None:
    """This CPU model's pins, else those of its instruction set, else None."""
    recorded = json.loads(PINS.read_text())
    return recorded.get(CPU_KEY) or recorded.get(CPU)


MLP = {"name": "mlp", "g_hidden": 32, "g_layers": 2, "d_hidden": 32, "d_layers": 2, "maxout": 2}
RING = {"seed": 1, "data": {"name": "ring8", "n_points": 1000}, "model": MLP,
        "remedies": {"label_flip": {"rate": 0.1}}, "train": {"epochs": 3, "batch_size": 100, "lr": 1e-3},
        "eval": {"n_samples": 400, "probe_points": 64, "ndb_bins": 10}}
CONFIGS = {
    "ring8": RING,
    "dcgan_digits": {"seed": 2, "data": {"name": "digits", "subset": 256},
                     "model": {"name": "dcgan", "nz": 16, "ngf": 8, "ndf": 8},
                     "train": {"epochs": 2, "batch_size": 32, "lr": 2e-4},
                     "eval": {"n_samples": 200, "probe_points": 32, "ndb_bins": 10}},
    "ring8_pack_noise_gp": {**RING, "seed": 5, "remedies": {"packing": {"m": 2}, "instance_noise": {"std": 0.1},
                                                           "gradient_penalty": {}}},
    "ring8_unrolled": {**RING, "seed": 6, "remedies": {"unrolled": {"k": 2}, "label_smoothing": {}},
                       "train": {**RING["train"], "epochs": 2}},
}


def _epochs(name: str) -> list[dict]:
    run = GANRun(CONFIGS[name])
    got = []
    for _ in range(run.epochs):
        m = run.step()
        got.append({k: v for k, v in m.items() if not k.startswith("time/") and k != "compute/seconds"})
    return got


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_per_epoch_metrics_are_pinned(name):
    pins = _pins()
    if pins is None:
        pytest.skip(f"no pins recorded for CPU {CPU_KEY!r}: python tests/trainables/test_pinned.py --record")
    for epoch, pinned in zip(_epochs(name), pins[name], strict=True):
        assert set(epoch) == set(pinned)
        assert not [k for k in pinned if not _same(k, epoch[k], pinned[k])], (epoch, pinned)


def _same(key: str, got: object, pinned: object) -> bool:
    """Equal to the bit (NaN, nothing to measure, is pinned as such); the epoch's step means within 1e-12 and
    gradient norms within 1e-6 relative (summation order, see the module docstring)."""
    if got != got and pinned != pinned:
        return True
    tolerance = 1e-6 if key.startswith("grad/") else 1e-12 if key.startswith(STEP_MEANS) else 0.0
    if tolerance and isinstance(got, float) and isinstance(pinned, float):
        return math.isclose(got, pinned, rel_tol=tolerance)
    return got == pinned


STEP_MEANS = ("loss/", "d/", "remedy/")


if __name__ == "__main__":  # python tests/trainables/test_pinned.py --record: this CPU's pins
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/trainables/test_pinned.py --record")
    torch.set_num_threads(1)  # as the tests run (conftest.py): other thread counts sum in other orders
    recorded = json.loads(PINS.read_text())
    recorded[CPU_KEY] = {name: _epochs(name) for name in sorted(CONFIGS)}
    PINS.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    print(f"pins for {CPU_KEY} written to {PINS}")
