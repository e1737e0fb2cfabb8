"""Behaviour pins: the per-epoch metrics of tiny ring8 and DCGAN runs, recorded before the typed-config
refactor (one trial config, typed remedies, metric registry), must not change. The verdict keys and the D
diagnostics are left out: the collapse-verdict change redefined them on purpose, with known answers in
tests/trainables/test_collapse.py and test_diversity_metrics.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainables.run import GANRun

PINNED = json.loads((Path(__file__).with_name("pinned_metrics.json")).read_text())
VERDICT_KEYS = {"collapsed", "epochs_survived", "never_diverse", "objective",
                "eval/d_local_max_fraction", "eval/d_basin_width", "eval/forgetting"}
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


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_per_epoch_metrics_are_pinned(name):
    run = GANRun(CONFIGS[name])
    got = []
    for _ in range(run.epochs):
        m = run.step()
        got.append({k: v for k, v in m.items() if not k.startswith("time/") and k != "compute/seconds"})
    for epoch, pinned in zip(got, PINNED[name], strict=True):
        assert {k: epoch[k] for k in pinned if k not in VERDICT_KEYS} == {
            k: v for k, v in pinned.items() if k not in VERDICT_KEYS}
