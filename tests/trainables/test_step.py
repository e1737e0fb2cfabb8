"""The shared step's update order (train.updates): alternating vs simultaneous G and D steps, by known answers."""
from __future__ import annotations

import pytest
import torch

from trainables.config import resolve
from trainables.data.mixtures import ring8_centers
from trainables.step import build_context, burst_steps, d_steps, train_step

MLP = {"name": "mlp", "g_hidden": 16, "g_layers": 2, "d_hidden": 16, "d_layers": 2, "maxout": 1}


def one_step(updates: str, lr_d: float, lr_g: float, remedies: dict | None = None) -> tuple[list, list]:
    """G's and D's parameters after one training step from seed 0 on ring points."""
    cfg = resolve({"model": MLP, "remedies": remedies or {},
                   "train": {"batch_size": 16, "updates": updates, "lr_d": lr_d, "lr_g": lr_g}})
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    ctx = build_context(cfg, (2,), gen, torch.device("cpu"))
    data = ring8_centers()[torch.randint(8, (64,), generator=gen)] + 0.01 * torch.randn(64, 2, generator=gen)
    train_step(ctx, lambda: data[:16])
    return [p.detach().clone() for p in ctx.g.parameters()], [p.detach().clone() for p in ctx.d.parameters()]


def same(a: list, b: list) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("remedies", [{}, {"label_smoothing": {}}], ids=["plain", "smoothing"])
def test_simultaneous_g_step_is_taken_against_the_d_before_its_step(remedies):
    # (not with unrolled: its look-ahead copies of D take D's learning rate by design)
    # simultaneous: G's first step cannot depend on D's learning rate (it sees D before D moves)
    g_slow_d, _ = one_step("simultaneous", 1e-5, 1e-3, remedies)
    g_fast_d, _ = one_step("simultaneous", 1e-1, 1e-3, remedies)
    assert same(g_slow_d, g_fast_d)
    # alternating: G steps against the D that has just stepped, so D's learning rate shows in G's step
    g_slow_d, _ = one_step("alternating", 1e-5, 1e-3, remedies)
    g_fast_d, _ = one_step("alternating", 1e-1, 1e-3, remedies)
    assert not same(g_slow_d, g_fast_d)


def test_simultaneous_d_step_sees_the_fakes_of_g_before_its_step():
    # D's step does not depend on G's learning rate in either order (its fakes come from G before G steps) ...
    for updates in ("simultaneous", "alternating"):
        assert same(one_step(updates, 1e-3, 1e-5)[1], one_step(updates, 1e-3, 1e-1)[1])
    # ... so the two orders give the same first D step and different G steps
    sim_g, sim_d = one_step("simultaneous", 1e-3, 1e-3)
    alt_g, alt_d = one_step("alternating", 1e-3, 1e-3)
    assert same(sim_d, alt_d) and not same(sim_g, alt_g)


def test_updates_must_be_one_of_the_two_orders():
    with pytest.raises(ValueError, match="updates"):
        resolve({"train": {"updates": "interleaved"}})


@pytest.mark.parametrize("updates", ["alternating", "simultaneous"])
def test_a_g_step_with_n_critic_d_steps_logs_the_mean_of_all_of_them(updates):
    cfg = resolve({"model": MLP, "train": {"batch_size": 16, "n_critic": 3, "updates": updates}})
    gen = torch.Generator().manual_seed(0)
    ctx = build_context(cfg, (2,), gen, torch.device("cpu"))
    data = ring8_centers()[torch.randint(8, (64,), generator=gen)]
    batches = iter(data.split(16))
    logs = train_step(ctx, lambda: next(batches))
    steps, d_losses = ctx.watch.seen["D"]  # every D step's loss, as the step saw it
    assert steps == [0, 1, 2] and len({float(v) for v in d_losses}) == 3
    assert torch.allclose(logs["loss/d"], torch.stack(d_losses).mean())
    assert logs["grad/d"].shape == () and "loss/g" in logs


def test_wgans_burst_gives_d_its_extra_steps_at_the_first_25_g_steps_and_every_500th():
    """WGAN's code (and MMD-GAN's, which copies it): 100 D steps while gen_iterations < 25 or % 500 == 0."""
    cfg = resolve({"model": MLP, "remedies": {"n_critic": {"n": 5, "burst": 100}}})
    assert (cfg.train.n_critic, cfg.train.critic_burst) == (5, 100)
    ctx = build_context(cfg, (2,), torch.Generator().manual_seed(0), torch.device("cpu"))
    schedule = {}
    for g in (0, 24, 25, 499, 500, 501, 1000, 1001):
        ctx.counts["g_steps"] = g
        schedule[g] = d_steps(ctx)
    assert schedule == {0: 100, 24: 100, 25: 5, 499: 5, 500: 100, 501: 5, 1000: 100, 1001: 5}
    assert [burst_steps(t) for t in (1, 25, 26, 500, 501, 1001, 10_000)] == [1, 25, 25, 25, 26, 27, 44]
    ctx.critic_burst = 0  # no burst: n_critic throughout
    ctx.counts["g_steps"] = 0
    assert d_steps(ctx) == 5


def test_a_burst_step_takes_its_d_steps_from_the_data_stream():
    cfg = resolve({"model": MLP, "train": {"batch_size": 16}, "remedies": {"n_critic": {"n": 2, "burst": 7}}})
    gen = torch.Generator().manual_seed(0)
    ctx = build_context(cfg, (2,), gen, torch.device("cpu"))
    data = ring8_centers()[torch.randint(8, (16 * 7,), generator=gen)]
    batches = iter(data.split(16))
    train_step(ctx, lambda: next(batches))  # G step 0: a burst step
    assert ctx.counts == {"d_steps": 7, "g_steps": 1} and next(batches, None) is None
