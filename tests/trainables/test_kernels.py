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


@pytest.mark.parametrize("net, options, lr", [("mlp", {"encoding": 0}, 1e-2), ("dcgan", {}, 1e-3)])
def test_mmd_gan_d_step_raises_the_mmd_on_its_features(net, options, lr):
    """The whole objective: on the 2D MLP's features as they are, and in the code's own setting, a BatchNorm'd conv
    D with its k-unit encoding. (The 2D MLP's k-unit encoding starts with features about 1e-4 apart, where the
    kernel is flat to float32 and D gets no gradient: why the 2D arm learns nothing, docs/protocols.md.)"""
    ctx, next_real = make(net, {"mmd_critic": options}, loss="none", optimizer="adam", lr=lr)
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


def test_mmd_gan_d_step_runs_d_once_on_each_batch_and_never_its_head():
    """Loss 'none' has no adversarial term, so D's step does not compute logits it would multiply by 0: one pass of
    D's features over the real and one over the fake batch, as mmd_gan.py's netD(x), netD(y); no D(x), D(G(z))."""
    ctx, next_real = make("dcgan", {"mmd_critic": {}}, loss="none")
    calls = {"features": 0, "head": 0}
    for name in calls:
        getattr(ctx.d, name).register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    real = next_real()
    with torch.no_grad():
        fake = ctx.g(ctx.z(len(real)))
    logs = d_step(ctx, real, fake)
    assert calls == {"features": 2, "head": 0}
    assert "d/real" not in logs and float(logs["remedy/mmd_critic/mmd2_d"]) > 0.0


def _critic_term(ctx, real: torch.Tensor, fake: torch.Tensor) -> tuple[float, dict]:
    (hook, p), = ctx.hooks("d_extra")
    term, logs = hook(ctx, p, real, fake)
    return float(term.detach()), logs


def test_mmd_gan_d_term_adds_lambda_ae_times_both_reconstruction_errors():
    """mmd_gan.py's errD: with a decoder that outputs 0, each reconstruction error is mean(x^2), so the D term with
    lambda_AE = 8 exceeds the term without a decoder by 8 (mean(x^2) + mean(y^2)), the rest being equal."""
    real, fake = torch.randn(32, 2, generator=torch.Generator().manual_seed(3)), torch.zeros(32, 2) + 0.5
    plain, _ = make("mlp", {"mmd_critic": {"autoencoder": 0.0}}, loss="none")
    ae, _ = make("mlp", {"mmd_critic": {}}, loss="none")
    assert not hasattr(plain.d, "decoder") and hasattr(ae.d, "decoder")
    for q in ae.d.decoder.parameters():
        torch.nn.init.zeros_(q)
    without, _ = _critic_term(plain, real, fake)
    with_ae, logs = _critic_term(ae, real, fake)
    expected = 8.0 * (float(real.pow(2).mean()) + float(fake.pow(2).mean()))
    assert with_ae - without == pytest.approx(expected, rel=1e-5)
    assert float(logs["remedy/mmd_critic/ae_real"]) == pytest.approx(float(real.pow(2).mean()), rel=1e-6)


def test_mmd_gan_decoder_has_gs_architecture_and_learns_to_reconstruct():
    ctx, next_real = make("mlp", {"mmd_critic": {}}, loss="none", optimizer="adam", lr=1e-3)
    shapes = [tuple(q.shape) for q in ctx.d.decoder.parameters()]
    g_shapes = [tuple(q.shape) for q in ctx.g.parameters()]
    assert shapes[1:] == g_shapes[1:] and shapes[0][1] == ctx.d.head.in_features  # G's net, latent = D's features
    real = torch.cat([next_real() for _ in range(4)])
    with torch.no_grad():
        fake = ctx.g(ctx.z(len(real)))
    before = float(_critic_term(ctx, real, fake)[1]["remedy/mmd_critic/ae_real"])
    for _ in range(100):
        logs = d_step(ctx, real, fake)
    assert float(logs["remedy/mmd_critic/ae_real"]) < 0.5 * before


def test_mmd_gan_clips_the_encoder_not_the_decoder():
    """mmd_gan.py clamps NetD's encoder to [-0.01, 0.01] and leaves its decoder free."""
    ctx, next_real = make("mlp", {"mmd_critic": {}, "weight_clipping": {"c": 0.01}}, loss="none",
                          optimizer="adam", lr=1e-2)
    for _ in range(5):
        train_step(ctx, next_real)
    decoder = set(ctx.d.decoder.parameters())
    critic = [q for q in ctx.d.parameters() if q not in decoder]
    assert critic and all(float(q.detach().abs().max()) <= 0.01 for q in critic)
    assert max(float(q.detach().abs().max()) for q in decoder) > 0.01


def test_mmd_gan_decoder_reconstructs_packs():
    ctx, next_real = make("mlp", {"mmd_critic": {}, "packing": {"m": 2}}, loss="none")
    assert list(ctx.d.decoder.parameters())[-1].shape == (4,)  # a pack of two 2D samples
    logs = train_step(ctx, next_real)
    assert math.isfinite(float(logs["remedy/mmd_critic/ae_fake"]))


@pytest.mark.parametrize("options, k", [({}, 2), ({"encoding": 7}, 7), ({"encoding": 0}, None)])
def test_mmd_gan_d_encodes_into_k_units_g_s_latent_size_unless_set(options, k):
    """mmd_gan.py: D's encoder ends in a conv to k = hidden_dim = nz units, which the kernel reads and the
    decoder starts from; `encoding: 0` leaves D's features as they are."""
    ctx, next_real = make("mlp", {"mmd_critic": options}, loss="none")  # the mlp's nz: 2
    real = next_real()
    width = ctx.d.features(real).shape[1]
    assert width == (k or 16) and ctx.d.head.in_features == width  # 16: the test MLP's D width
    assert list(ctx.d.decoder.parameters())[0].shape[1] == width  # the decoder's latent is the encoding
    if k:
        encoding = ctx.d.features[-1]
        assert isinstance(encoding, torch.nn.Linear) and encoding.bias is None and encoding in ctx.d.constrained()
