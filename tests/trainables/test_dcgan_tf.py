"""PacGAN's stacked-MNIST protocol pieces: the DCGAN-tensorflow family (its layer sizes and parameter count by
known answers), its U(-1, 1) prior, two G updates a step on the same latents, sampling with G's running stats."""
from __future__ import annotations

import pytest
import torch

from trainables.config import resolve
from trainables.evaluate import generate
from trainables.models import LATENTS, MODELS
from trainables.step import _g_update, build_context, train_step


def _tf_count(nz: int, ngf: int, ndf: int, c: int, pack: int, s16: int) -> tuple[int, int]:
    """DCGAN-tensorflow's trainable variables (model.py): G's g_h0_lin, g_bn0..3, g_h1..4; D's d_h0..3, d_bn1..3."""
    k = 25  # 5x5 kernels
    g = nz * ngf * 8 * s16**2 + ngf * 8 * s16**2 + 2 * ngf * 8
    for a, b in ((8, 4), (4, 2), (2, 1)):
        g += k * ngf * a * ngf * b + ngf * b + 2 * ngf * b
    g += k * ngf * c + c
    d = k * c * pack * ndf + ndf
    for a, b in ((1, 2), (2, 4), (4, 8)):
        d += k * ndf * a * ndf * b + ndf * b + 2 * ndf * b
    return g, d


@pytest.mark.parametrize(("size", "s16"), [(28, 2), (64, 4)])
def test_dcgan_tf_has_the_tf_models_sizes_and_parameters(size: int, s16: int) -> None:
    b = MODELS["dcgan_tf"]((3, size, size), pack=2, ngf=16, ndf=8)
    x = b.g(LATENTS[b.latent]((4, 100)))
    assert x.shape == (4, 3, size, size) and x.abs().max() <= 1
    assert b.features(torch.zeros(2, 6, size, size)).shape == (2, b.feat_dim) and b.feat_dim == 64 * s16**2
    count = (sum(p.numel() for p in b.g.parameters()), sum(p.numel() for p in b.features.parameters()))
    assert count == _tf_count(100, 16, 8, 3, 2, s16)
    convs = [m for m in b.features if isinstance(m, torch.nn.Conv2d)]
    assert all(m.weight.abs().max() <= 0.04 for m in convs)  # truncated N(0, 0.02)
    assert b.latent == "uniform" and MODELS["dcgan_tf"]((1, 28, 28), latent="normal").latent == "normal"


def test_the_uniform_prior_is_u_minus_one_one_and_reaches_the_trial() -> None:
    z = LATENTS["uniform"]((20_000, 4), generator=torch.Generator().manual_seed(0))
    assert -1 <= float(z.min()) < -0.99 and 0.99 < float(z.max()) <= 1 and abs(float(z.mean())) < 0.01
    assert float(z.var()) == pytest.approx(1 / 3, abs=0.01)
    cfg = resolve({"model": {"name": "dcgan_tf", "ngf": 4, "ndf": 4}})
    ctx = build_context(cfg, (3, 28, 28), torch.Generator(), torch.device("cpu"))
    assert float(ctx.z(5000).min()) >= -1 and float(ctx.z(5000).max()) <= 1


def _ctx(g_updates: int):
    cfg = resolve({"model": {"name": "dcgan_tf", "ngf": 4, "ndf": 4}, "loss": "nonsaturating",
                   "train": {"batch_size": 8, "g_updates": g_updates}})
    torch.manual_seed(0)
    ctx = build_context(cfg, (3, 28, 28), torch.Generator().manual_seed(0), torch.device("cpu"))
    seen: list[torch.Tensor] = []

    def recording(shape: tuple[int, ...], **kw: object) -> torch.Tensor:  # the prior, keeping what it drew
        seen.append(LATENTS["uniform"](shape, **kw))
        return seen[-1]

    ctx.latent = recording
    return ctx, seen


def test_g_updates_2_is_a_second_g_update_on_a_fresh_g_of_the_same_latents() -> None:
    real = torch.rand(8, 3, 28, 28) * 2 - 1
    two, seen_two = _ctx(2)
    train_step(two, lambda: real)
    one, seen_one = _ctx(1)
    train_step(one, lambda: real)
    assert len(seen_two) == len(seen_one) == 1 and torch.equal(seen_two[0], seen_one[0])  # no extra draw
    assert two.counts == {"d_steps": 1, "g_steps": 2} and one.counts == {"d_steps": 1, "g_steps": 1}
    with one.autocast():
        fake = one.g(seen_one[0])
    _g_update(one, real, fake, seen_one[0])  # by hand: G(z) again on the same z, then G's update
    for a, b in zip(two.g.parameters(), one.g.parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(two.d.parameters(), one.d.parameters(), strict=True):
        assert torch.equal(a, b)  # D took one update in both


def test_g_updates_refuses_simultaneous_steps() -> None:
    with pytest.raises(ValueError, match="g_updates > 1 needs updates: alternating"):
        resolve({"train": {"g_updates": 2, "updates": "simultaneous"}})


def test_running_batchnorm_sampling_is_g_in_eval_mode_and_leaves_g_as_it_was() -> None:
    b = MODELS["dcgan_tf"]((1, 28, 28), ngf=4, ndf=4)
    g = b.g.train()
    for _ in range(3):
        g(LATENTS["uniform"]((16, 100)))  # running stats away from their init
    z = LATENTS["uniform"]((40, 100))
    state = {k: v.clone() for k, v in g.state_dict().items()}
    running = generate(g, z, chunk=7, running=True)
    assert g.training and all(torch.equal(v, g.state_dict()[k]) for k, v in state.items())
    assert torch.allclose(running, g.eval()(z), atol=1e-6)
    g.train()
    batch = generate(g, z, chunk=40)
    assert not torch.allclose(batch, running, atol=1e-3)  # batch statistics are another function
    with pytest.raises(ValueError, match="g_batchnorm"):
        resolve({"eval": {"g_batchnorm": "frozen"}})
