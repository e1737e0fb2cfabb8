"""Contract and mechanism tests of the remedy catalogue on tiny nets (mlp on ring points, dcgan at 16 px)."""
from __future__ import annotations

import math
import re

import pytest
import torch
from torch import nn

from trainables.config import resolve
from trainables.data.mixtures import ring8_centers
from trainables.models import Discriminator
from trainables.remedies import REMEDIES, make_params
from trainables.step import build_context, g_step, train_step

NETS = {
    "mlp": ({"name": "mlp", "g_hidden": 16, "g_layers": 2, "d_hidden": 16, "d_layers": 2, "maxout": 2}, (2,)),
    "dcgan": ({"name": "dcgan", "nz": 16, "ngf": 8, "ndf": 8}, (1, 16, 16)),
}
BATCH = 16
OWN_TERM = {
    "gradient_penalty": "remedy/gradient_penalty/penalty", "r1": "remedy/r1/penalty",
    "weight_clipping": "remedy/weight_clipping/clipped_fraction", "label_flip": "remedy/label_flip/fraction",
    "feature_matching": "remedy/feature_matching/distance", "unrolled": "remedy/unrolled/lookahead_d_loss",
    "mmd": "remedy/mmd/mmd2", "mmd_critic": "remedy/mmd_critic/mmd2_d",
    "veegan": "remedy/veegan/recon", "bigan": "remedy/bigan/encoder", "mdgan": "remedy/mdgan/geometric",
}


def make(net: str, remedies: dict, loss: str = "nonsaturating", seed: int = 0, **train):
    """A StepContext and a real-batch source for `net` with `remedies`."""
    model, shape = NETS[net]
    cfg = resolve({"model": model, "loss": loss, "remedies": remedies, "train": {"batch_size": BATCH, **train}})
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    ctx = build_context(cfg, shape, gen, torch.device("cpu"))
    if net == "mlp":
        data = ring8_centers()[torch.randint(8, (256,), generator=gen)] + 0.01 * torch.randn(256, 2, generator=gen)
    else:
        data = torch.rand((64, *shape), generator=gen) * 2 - 1
    return ctx, lambda: data[torch.randint(len(data), (BATCH,), generator=gen)]


def snapshot(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def run_and_check(net: str, remedies: dict, loss: str = "nonsaturating", steps: int = 2, **train) -> dict:
    ctx, next_real = make(net, remedies, loss, **train)
    g0, d0 = snapshot(ctx.g), snapshot(ctx.d)
    for _ in range(steps):
        logs = train_step(ctx, next_real)
    assert all(math.isfinite(v) for v in logs.values()), logs
    assert all(not torch.equal(a, b) for a, b in zip(g0, snapshot(ctx.g))), "a G parameter did not change"
    assert any(not torch.equal(a, b) for a, b in zip(d0, snapshot(ctx.d))), "no D parameter changed"
    for name in remedies:
        if name in OWN_TERM:
            assert OWN_TERM[name] in logs, (name, sorted(logs))
    return logs


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("name", sorted(REMEDIES))
def test_every_remedy_alone(name, net):
    models = REMEDIES[name].models
    if models and NETS[net][0]["name"] not in models:
        with pytest.raises(ValueError, match=f"remedy {name!r} works with model"):
            make(net, {name: {}}, REMEDIES[name].loss or "nonsaturating")
        return
    run_and_check(net, {name: {}}, REMEDIES[name].loss or "nonsaturating")


COMBOS = [
    ("wasserstein", {"gradient_penalty": {}, "n_critic": {"n": 2}, "two_timescale": {}}, {}),
    ("hinge", {"minibatch_discrimination": {}, "spectral_norm": {}, "packing": {}}, {}),
    ("nonsaturating", {"unrolled": {"k": 2}, "packing": {"m": 2}, "instance_noise": {}, "spectral_norm": {}}, {}),
    ("least_squares", {"feature_matching": {}, "label_smoothing": {}, "minibatch_stddev": {}, "r1": {}}, {}),
    ("wasserstein", {"weight_clipping": {}, "unrolled": {"k": 2}}, {"optimizer": "rmsprop", "lr": 5e-5}),
    ("minimax", {"label_flip": {}, "unrolled": {"k": 1}, "minibatch_discrimination": {}},
     {"optimizer": "sgd", "lr": 0.05}),
    ("kl", {"veegan": {"eps_dim": 1}, "instance_noise": {}, "spectral_norm": {}, "r1": {}}, {}),
    ("wasserstein", {"bigan": {}, "gradient_penalty": {}, "n_critic": {"n": 2}}, {}),
]


@pytest.mark.parametrize("net", NETS)
@pytest.mark.parametrize("loss,remedies,train", COMBOS, ids=lambda v: "+".join(v) if isinstance(v, dict) else None)
def test_combinations(loss, remedies, train, net):
    if any(REMEDIES[n].models and NETS[net][0]["name"] not in REMEDIES[n].models for n in remedies):
        pytest.skip(f"{net}: a remedy here works with other models (refusal: test_every_remedy_alone)")
    run_and_check(net, remedies, loss, **train)


def test_catalogue_records():
    for name, r in REMEDIES.items():
        if name != "label_flip":
            assert re.search(r"\(.*\d{4}\)", r.doc), f"{name}: doc should cite its paper"
        assert make_params(name, None) == r.params()  # the canonical defaults
        for other in r.conflicts:
            assert name in REMEDIES[other].conflicts, f"conflict {name}/{other} should be symmetric"


@pytest.mark.parametrize("remedies,loss", [
    ({"weight_clipping": {}, "gradient_penalty": {}}, "wasserstein"),
    ({"spectral_norm": {}, "weight_clipping": {}}, "hinge"),
    ({"feature_matching": {}, "unrolled": {}}, "nonsaturating"),
    ({"label_flip": {}}, "wasserstein"),
    ({"no_such_remedy": {}}, "nonsaturating"),
    ({"mmd_critic": {}}, "nonsaturating"),
    ({}, "none"),
    ({"mmd": {}, "feature_matching": {}}, "nonsaturating"),
    ({"mmd_critic": {}, "unrolled": {}}, "none"),
    ({"veegan": {}, "packing": {}}, "nonsaturating"),
    ({"bigan": {}, "unrolled": {}}, "nonsaturating"),
    ({"veegan": {}, "bigan": {}}, "nonsaturating"),
    ({"bigan": {}}, "least_squares"),
])
def test_invalid_combinations_are_refused(remedies, loss):
    with pytest.raises(ValueError, match="cannot be combined|acts on D's targets|unknown remedy|both replace|needs "
                                         "loss 'none'|has no adversarial term|works with loss"):
        make("mlp", remedies, loss)


@pytest.mark.parametrize("net,m", [("mlp", 3), ("dcgan", 2)])
def test_packing_feeds_d_m_samples(net, m):
    ctx, next_real = make(net, {"packing": {"m": m}})
    first = ctx.d.features[1].linear if net == "mlp" else ctx.d.features[0]
    width = first.in_features if net == "mlp" else first.in_channels
    assert width == m * NETS[net][1][0]
    seen = []
    ctx.d.features.register_forward_pre_hook(lambda mod, args: seen.append(tuple(args[0].shape)))
    train_step(ctx, next_real)
    assert seen and all(s[0] == BATCH // m and s[1] == m * NETS[net][1][0] for s in seen), seen
    x = next_real()
    packed = REMEDIES["packing"].inputs(ctx, make_params("packing", {"m": m}), x)
    assert torch.equal(packed[1], torch.cat(list(x[m:2 * m]), dim=0))  # a pack = m consecutive samples


def _g_grads(remedies: dict, lr: float = 1e-2) -> list[torch.Tensor]:
    ctx, next_real = make("mlp", remedies, lr=lr)
    train_step(ctx, next_real)  # D's optimiser now has moments, as in training
    real, fake = next_real(), ctx.g(ctx.z(BATCH))
    ctx.d.requires_grad_(False)
    d_before = snapshot(ctx.d)
    g_step(ctx, real, fake)
    assert all(torch.equal(a, b) for a, b in zip(d_before, snapshot(ctx.d))), "the look-ahead changed D"
    return [p.grad.clone() for p in ctx.g.parameters()]


def test_unrolled_changes_g_gradient():
    plain, k0, k5 = _g_grads({}), _g_grads({"unrolled": {"k": 0}}), _g_grads({"unrolled": {"k": 5}})
    assert all(torch.equal(a, b) for a, b in zip(plain, k0))
    diff = sum(float((a - b).norm()) for a, b in zip(k0, k5))
    assert diff > 1e-3 * sum(float(a.norm()) for a in k0)


def test_unrolled_gradient_matches_finite_differences():
    """k = 1 with SGD in float64: the autograd gradient of G's loss through the look-ahead is the true one."""
    ctx, next_real = make("mlp", {"unrolled": {"k": 1}}, optimizer="sgd", lr=0.5)
    ctx.g.double(), ctx.d.double()
    real, z = next_real().double(), ctx.z(BATCH).double()
    critic, g_of, p = REMEDIES["unrolled"].g_critic, REMEDIES["unrolled"].g_loss, make_params("unrolled", {"k": 1})
    ctx.d.requires_grad_(False)

    def g_loss() -> torch.Tensor:
        fake = ctx.g(z)
        d_fn, _ = critic(ctx, p, real, fake)
        return g_of(ctx, p, real, fake, d_fn)[0]

    params = list(ctx.g.parameters())
    grads = torch.autograd.grad(g_loss(), params)
    direction = [torch.randn_like(q) for q in params]
    analytic = sum(float((g * v).sum()) for g, v in zip(grads, direction))
    eps, values = 1e-6, []
    for sign in (1.0, -2.0):  # theta + eps v, then theta - eps v
        with torch.no_grad():
            for q, v in zip(params, direction):
                q.add_(sign * eps * v)
        values.append(float(g_loss().detach()))
    up, down = values
    assert abs((up - down) / (2 * eps) - analytic) <= 1e-5 * max(1.0, abs(analytic))


@pytest.mark.parametrize("real_term", [True, False])
def test_unrolled_g_gradient_is_the_value_functions_at_the_unrolled_d(real_term):
    """k = 1, SGD, minimax, float64: G's gradient is that of -L_D(theta_D^1(theta_G)), the real half included (Metz
    et al. 2017, Eq. 8; the notebook's `minimize(-unrolled_loss)`); real_term false leaves the fake half only."""
    lr = 0.5
    ctx, next_real = make("mlp", {"unrolled": {"k": 1, "real_term": real_term}}, loss="minimax", optimizer="sgd", lr=lr)
    ctx.g.double(), ctx.d.double()
    real, z = next_real().double(), ctx.z(BATCH).double()
    names, theta = zip(*((n, q.detach()) for n, q in ctx.d.named_parameters()))

    def d_of(ws, x):
        return torch.func.functional_call(ctx.d, dict(zip(names, ws)), (x,))

    def bce(ws, fake):  # D's loss -E log D(x) - E log(1 - D(G(z))), written out
        return nn.functional.softplus(-d_of(ws, real)).mean() + nn.functional.softplus(d_of(ws, fake)).mean()

    fake = ctx.g(z)
    ws = [w.clone().requires_grad_(True) for w in theta]
    grads = torch.autograd.grad(bce(ws, fake), ws, create_graph=True)
    theta1 = [w - lr * g for w, g in zip(ws, grads)]  # one SGD step of D, a function of G's parameters
    value = -bce(theta1, fake) if real_term else -nn.functional.softplus(d_of(theta1, fake)).mean()
    by_hand = torch.autograd.grad(value, list(ctx.g.parameters()), retain_graph=True)
    fake_only = torch.autograd.grad(-nn.functional.softplus(d_of(theta1, fake)).mean(), list(ctx.g.parameters()))
    ctx.d.requires_grad_(False)
    g_step(ctx, real, ctx.g(z), z)  # the platform's G step (it then moves G: by hand came first)
    platform = [q.grad.clone() for q in ctx.g.parameters()]
    for a, b in zip(platform, by_hand):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    if real_term:  # and the real half matters: without it the gradient differs
        assert sum(float((a - b).norm()) for a, b in zip(platform, fake_only)) > 1e-6


def test_gradient_penalty_zero_for_unit_linear_critic():
    ctx, next_real = make("mlp", {"gradient_penalty": {}})
    hook, p = REMEDIES["gradient_penalty"].d_extra, make_params("gradient_penalty", None)
    for scale, expected in ((1.0, 0.0), (2.0, p.weight)):
        lin = nn.Linear(2, 1)
        with torch.no_grad():
            lin.weight.copy_(scale * torch.tensor([[0.6, 0.8]]))
        ctx.d = Discriminator(nn.Identity(), lin)
        term, logs = hook(ctx, p, next_real(), torch.randn(BATCH, 2))
        assert float(term.detach()) == pytest.approx(expected, abs=1e-5)
        assert logs["remedy/gradient_penalty/grad_norm"] == pytest.approx(scale, abs=1e-5)


@pytest.mark.parametrize("net", NETS)
def test_weight_clipping_bounds_every_d_weight(net):
    c = 0.005
    ctx, next_real = make(net, {"weight_clipping": {"c": c}}, lr=1e-2)
    for _ in range(3):
        train_step(ctx, next_real)
    assert all(float(q.detach().abs().max()) <= c for q in ctx.d.parameters())


@pytest.mark.parametrize("net", NETS)
def test_spectral_norm_top_singular_values_near_one(net):
    ctx, next_real = make(net, {"spectral_norm": {}})
    for _ in range(3):
        train_step(ctx, next_real)
    normed = [m for m in ctx.d.modules() if hasattr(m, "parametrizations")]
    assert len(normed) == sum(isinstance(m, (nn.Linear, nn.Conv2d)) for m in ctx.d.modules())
    with torch.no_grad():
        for _ in range(30):  # more power iterations (one per access in train mode)
            [m.weight for m in normed]
        ctx.d.eval()
        tops = [float(torch.linalg.matrix_norm(m.weight.flatten(1), ord=2)) for m in normed]
    assert all(abs(t - 1) < 0.05 for t in tops), tops


def test_label_flip_fraction_within_binomial_bounds():
    ctx, _ = make("mlp", {"label_flip": {"rate": 0.1}})
    n, rate = 20_000, 0.1
    rt, ft, logs = REMEDIES["label_flip"].targets(ctx, make_params("label_flip", {"rate": rate}), torch.ones(n),
                                                  torch.zeros(n))
    flipped = float((rt == 0).sum() + (ft == 1).sum()) / (2 * n)
    bound = 5 * math.sqrt(rate * (1 - rate) / (2 * n))
    assert abs(flipped - rate) < bound
    assert logs["remedy/label_flip/fraction"] == pytest.approx(flipped)


@pytest.mark.parametrize("net", NETS)
def test_feature_matching_zero_when_features_equal(net):
    ctx, next_real = make(net, {"feature_matching": {}})
    hook = REMEDIES["feature_matching"].g_loss
    real = next_real()
    p = make_params("feature_matching", None)
    same, _ = hook(ctx, p, real, real.clone(), ctx.d)
    other, _ = hook(ctx, p, real, ctx.g(ctx.z(BATCH)), ctx.d)
    assert float(same.detach()) == pytest.approx(0.0, abs=1e-10) and float(other.detach()) > 0


def test_instance_noise_anneals_to_zero():
    ctx, _ = make("mlp", {"instance_noise": {"std": 0.5}})
    x, p = torch.zeros(4000, 2), make_params("instance_noise", {"std": 0.5})
    stds = []
    for progress in (0.0, 0.5, 1.0):
        ctx.progress = progress
        stds.append(float(REMEDIES["instance_noise"].inputs(ctx, p, x).std()))
    assert stds[0] == pytest.approx(0.5, rel=0.05) and stds[1] == pytest.approx(0.25, rel=0.05) and stds[2] == 0


def test_schedule_remedies_set_optimisers():
    ctx, _ = make("mlp", {"two_timescale": {}, "n_critic": {"n": 3}})
    assert ctx.opt_d.param_groups[0]["lr"] == 4e-4 and ctx.opt_g.param_groups[0]["lr"] == 1e-4
    assert ctx.n_critic == 3


def test_minibatch_stddev_enters_before_the_last_hidden_layer():
    from trainables.remedies.architecture import MinibatchStddev

    ctx, next_real = make("mlp", {"minibatch_stddev": {}})
    layers = list(ctx.d.features)
    assert isinstance(layers[-2], MinibatchStddev) and layers[-1].linear.in_features == 16 + 1
    ctx, _ = make("dcgan", {"minibatch_stddev": {}})
    convs = [m for m in ctx.d.features if isinstance(m, nn.Conv2d)]
    assert convs[-1].in_channels == 8 + 1 and any(isinstance(m, MinibatchStddev) for m in ctx.d.features)
    # known answer: two groups of 4 in a batch of 8, sample i in group i mod 2
    x = torch.tensor([[0.0], [1.0], [2.0], [1.0], [0.0], [1.0], [2.0], [1.0]]).repeat(1, 3)
    out = MinibatchStddev(group=4)(x)
    std_even = torch.tensor([0.0, 2.0, 0.0, 2.0]).std(unbiased=False)  # samples 0, 2, 4, 6
    assert out.shape == (8, 4) and torch.allclose(out[0::2, 3], std_even.expand(4), atol=1e-6)
    assert torch.allclose(out[1::2, 3], torch.full((4,), 1e-4), atol=1e-4)  # samples 1, 3, 5, 7 are all 1


@pytest.mark.parametrize("net", NETS)
def test_d_output_layer_follows_the_model_init(net):
    model, shape = NETS[net]
    wide = {**model, "d_hidden": 1000} if net == "mlp" else model  # enough weights for a sample std
    ctx = build_context(resolve({"model": wide}), shape, torch.Generator().manual_seed(0), torch.device("cpu"))
    head = ctx.d.head
    assert float(head.bias.abs().max()) == 0.0
    assert float(head.weight.std()) == pytest.approx(0.02, rel=0.25)  # N(0, 0.02), not PyTorch's uniform default


@pytest.mark.parametrize("count, packs_seen", [("packs", 50), ("samples", 25)])
def test_pacgan_d_sees_batch_packs_per_step(count, packs_seen):
    from trainables.run import GANRun

    cfg = {"data": {"name": "ring8", "n_points": 400}, "model": NETS["mlp"][0],
           "remedies": {"packing": {"m": 2, "batch": count}}, "train": {"epochs": 1, "batch_size": 50},
           "eval": {"n_samples": 200, "metrics": []}}
    run = GANRun(cfg)
    seen = []
    run.ctx.d.features.register_forward_pre_hook(lambda mod, args: seen.append(tuple(args[0].shape)))
    run.train_epoch()
    assert run.ctx.counts["g_steps"] == 400 // 50  # an epoch is len(data) // batch_size steps for every m
    assert seen and all(s == (packs_seen, 4) for s in seen), set(seen)
