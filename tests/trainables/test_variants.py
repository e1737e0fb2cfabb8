"""Every variant preset resolves, builds and trains two steps; presets carry docs/protocols.md settings."""
from __future__ import annotations

import math

import pytest
import torch

from trainables.config import resolve
from trainables.step import build_context, train_step
from trainables.variants import VARIANTS

MLP = {"name": "mlp", "g_hidden": 16, "g_layers": 2, "d_hidden": 16, "d_layers": 2, "maxout": 2}


def build(variant: str, **over):
    cfg = resolve({"variant": variant, "model": MLP, "train": {"batch_size": 24}, **over})
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    return cfg, build_context(cfg, (2,), gen, torch.device("cpu")), gen


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_resolves_and_runs_two_steps(variant):
    cfg, ctx, gen = build(variant)
    assert VARIANTS[variant].doc
    data = torch.randn(128, 2, generator=gen)
    for _ in range(2):
        logs = train_step(ctx, lambda: data[torch.randint(128, (24,), generator=gen)])
    assert all(math.isfinite(v) for v in logs.values())
    # both steps are among the first 25, which WGAN's burst gives its extra D steps (trainables.step.d_steps)
    assert ctx.counts["g_steps"] == 2 and ctx.counts["d_steps"] == 2 * (ctx.critic_burst or ctx.n_critic)


def test_presets_follow_protocols():
    _, wgan, _ = build("wgan")
    assert isinstance(wgan.opt_d, torch.optim.RMSprop) and wgan.opt_d.param_groups[0]["lr"] == 5e-5
    assert wgan.n_critic == 5 and [n for n, _, _ in wgan.remedies] == ["weight_clipping", "n_critic"]
    assert wgan.critic_burst == 100  # the authors' code: 100 D steps at the first 25 G steps and every 500th
    _, gp, _ = build("wgan_gp")
    assert gp.opt_d.param_groups[0]["betas"] == (0.5, 0.9) and gp.opt_d.param_groups[0]["lr"] == 1e-4
    assert gp.n_critic == 5 and gp.remedies[0][2].weight == 10.0 and gp.critic_burst == 0  # WGAN-GP's code: none
    _, sn, _ = build("hinge_sngan")
    assert any(hasattr(m, "parametrizations") for m in sn.d.modules())
    for m in (2, 3, 4):
        _, pac, _ = build(f"pacgan{m}")
        assert pac.d.features[1].linear.in_features == 2 * m
    cfg, mmd_gan, _ = build("mmd_gan", train={})  # its own batch of 64 (mmd_gan.py's default)
    assert cfg.loss == "none" and cfg.train.batch_size == 64 and mmd_gan.n_critic == 5 and mmd_gan.critic_burst == 100
    assert isinstance(mmd_gan.opt_d, torch.optim.RMSprop) and mmd_gan.opt_d.param_groups[0]["lr"] == 5e-5
    assert cfg.remedies["mmd_critic"].rank_weight == 16.0 and cfg.remedies["weight_clipping"].c == 0.01
    cfg, veegan, _ = build("veegan", model={"name": "mlp"}, train={})  # the authors' 2D nets, as the preset gives them
    assert cfg.loss == "kl" and cfg.train.batch_size == 500 and veegan.opt_g.param_groups[0]["lr"] == 1e-3
    assert cfg.train.updates == "simultaneous"  # the notebook's one sess.run for both updates
    assert veegan.nz == 255 and cfg.remedies["veegan"].eps_dim == 1 and cfg.remedies["veegan"].weight == 0.5
    assert veegan.d.features[1].in_features == 2 + 254 and veegan.g.encoder[-1].out_features == 254
    assert len([m for m in veegan.d.features if isinstance(m, torch.nn.Linear)]) == 1  # one hidden layer of 128
    cfg, bigan, _ = build("bigan", model={"name": "mlp"}, train={})
    assert cfg.loss == "nonsaturating" and bigan.d.features[1].in_features == 2 + 254
    cfg, ali, _ = build("ali", model={"name": "mlp"}, train={})
    assert cfg.remedies["bigan"].stochastic and ali.g.encoder[-1].out_features == 2 * 254
    cfg, mdgan, _ = build("mdgan")
    assert (cfg.remedies["mdgan"].geometric, cfg.remedies["mdgan"].mode) == (0.2, 0.4) and mdgan.g.encoder is not None
    cfg, unrolled, _ = build("unrolled10")
    assert cfg.remedies["unrolled"].k == 10 and unrolled.opt_g.param_groups[0]["lr"] == 1e-3


def test_trial_config_overrides_preset():
    cfg, ctx, _ = build("wgan_gp", remedies={"gradient_penalty": {"weight": 1.0}}, train={"lr": 3e-4})
    assert cfg.remedies["gradient_penalty"].weight == 1.0 and "n_critic" in cfg.remedies
    assert ctx.opt_d.param_groups[0]["lr"] == 3e-4
