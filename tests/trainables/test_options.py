"""Per-trial options: bf16 autocast, channels-last layout, deterministic algorithms, torch.compile."""
from __future__ import annotations

import math

import pytest
import torch

from trainables.run import GANRun

MLP = {"name": "mlp", "g_hidden": 16, "g_layers": 2, "d_hidden": 16, "d_layers": 2, "maxout": 2}
RING = {"seed": 2, "data": {"name": "ring8", "n_points": 400}, "model": MLP,
        "train": {"epochs": 2, "batch_size": 50}, "eval": {"n_samples": 200, "metrics": []}}
DIGITS = {"seed": 2, "data": {"name": "digits", "subset": 128}, "model": {"name": "dcgan", "nz": 8, "ngf": 4, "ndf": 4},
          "train": {"epochs": 1, "batch_size": 32}, "eval": {"n_samples": 200, "metrics": []}}


def _train(cfg: dict) -> list[dict]:
    run = GANRun(cfg)
    return [{k: v for k, v in run.step().items() if not k.startswith(("time/", "compute/seconds"))}
            for _ in range(run.epochs)]


def test_bf16_trains_in_autocast_with_fp32_weights():
    run = GANRun({**RING, "train": {**RING["train"], "precision": "bf16"}})
    seen = []
    run.ctx.d.register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
    logs = run.train_epoch()
    assert seen and set(seen) == {torch.bfloat16}  # D's forward ran in bf16
    assert all(p.dtype == torch.float32 for p in run.ctx.g.parameters())
    assert all(math.isfinite(v) for v in logs.values())


def test_deterministic_mode_is_on_while_training_and_reproducible():
    cfg = {**RING, "train": {**RING["train"], "deterministic": True}}
    first = _train(cfg)
    assert torch.are_deterministic_algorithms_enabled()
    assert _train(cfg) == first
    GANRun(RING)  # a trial without it turns it off again (actors are reused)
    assert not torch.are_deterministic_algorithms_enabled()


def test_channels_last_conv_nets_and_data():
    run = GANRun({**DIGITS, "train": {**DIGITS["train"], "channels_last": True}})
    conv = next(m for m in run.ctx.d.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert run.x.is_contiguous(memory_format=torch.channels_last)
    assert all(math.isfinite(v) for v in run.train_epoch().values())


@pytest.mark.slow
def test_compiled_nets_train_and_keep_their_state_dict_keys():
    plain = GANRun(RING)
    run = GANRun({**RING, "train": {**RING["train"], "compile": True}})
    assert set(run.ctx.g.state_dict()) == set(plain.ctx.g.state_dict())
    assert all(math.isfinite(v) for v in run.train_epoch().values())
