"""Kernel MMD (trainables/remedies/kernels.py): known answers of the estimate, and the mechanisms of GMMN (G
descends the MMD to the data, D plays no part) and MMD-GAN (D's step raises the MMD on its features)."""
from __future__ import annotations

import math

import pytest
import torch

from tests.trainables.test_remedies import make
from trainables.remedies.kernels import mix_rbf_mmd2, one_sided
from trainables.step import d_step, g_step, train_step

SIGMAS = (0.1, 0.2, 0.5, 1.0)


def test_mmd_is_zero_on_one_set_and_the_closed_form_on_two_points():
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    assert abs(float(mix_rbf_mmd2(x, x.clone(), SIGMAS))) < 1e-6
    for d in (0.1, 0.5, 2.0):  # {a}, {b}: sum_s 2 (1 - exp(-d^2 / 2 s^2))
        a, b = torch.zeros(1, 2), torch.tensor([[d, 0.0]])
        expected = sum(2 * (1 - math.exp(-d * d / (2 * s * s))) for s in SIGMAS)
        assert float(mix_rbf_mmd2(a, b, SIGMAS)) == pytest.approx(expected, rel=1e-5)


def test_mmd_grows_with_a_shift_of_the_same_sample():
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(1))
    values = [float(mix_rbf_mmd2(x, x + shift, SIGMAS)) for shift in (0.0, 0.1, 0.3, 1.0)]
    assert values[0] < 1e-6 and values == sorted(values) and values[1] > 0


def test_the_rank_term_is_zero_once_real_features_lead():
    f_fake = torch.zeros(4, 3)
    assert float(one_sided(f_fake + 1.0, f_fake)) == 0.0
    assert float(one_sided(f_fake - torch.tensor([1.0, 0.0, 2.0]), f_fake)) == pytest.approx(-1.0)  # -(1+0+2)/3


def _data_mmd(ctx, data: torch.Tensor) -> float:
    with torch.no_grad():
        return float(mix_rbf_mmd2(data[:512], ctx.g(ctx.z(512)), SIGMAS))


def test_gmmn_steps_bring_g_closer_to_the_data_in_mmd():
    ctx, next_real = make("mlp", {"mmd": {"sigmas": list(SIGMAS)}}, lr=1e-3)
    data = torch.cat([next_real() for _ in range(40)])
    before = _data_mmd(ctx, data)
    for _ in range(150):
        train_step(ctx, next_real)
    assert _data_mmd(ctx, data) < 0.5 * before


def test_gmmn_g_gradient_ignores_d():
    grads = []
    for d_seed in (0, 1):
        ctx, next_real = make("mlp", {"mmd": {}})
        torch.manual_seed(d_seed)
        for q in ctx.d.parameters():  # another D altogether
            torch.nn.init.normal_(q)
        real = next_real()
        torch.manual_seed(7)
        g_step(ctx, real, ctx.g(ctx.z(len(real))))
        grads.append([q.grad.clone() for q in ctx.g.parameters()])
    assert all(torch.allclose(a, b) for a, b in zip(*grads))


def test_mmd_gan_d_step_raises_the_mmd_on_its_features():
    ctx, next_real = make("mlp", {"mmd_critic": {}}, loss="none", optimizer="adam", lr=1e-2)
    real = torch.cat([next_real() for _ in range(4)])
    with torch.no_grad():
        fake = ctx.g(ctx.z(len(real)))

    def feature_mmd() -> float:
        with torch.no_grad():
            return float(mix_rbf_mmd2(ctx.d.features(real), ctx.d.features(fake), (1.0, 2.0, 4.0, 8.0, 16.0)))

    before = feature_mmd()
    for _ in range(20):
        logs = d_step(ctx, real, fake)
    assert feature_mmd() > before and float(logs["loss/d_base"]) == 0.0  # loss 'none': the remedy is D's objective
