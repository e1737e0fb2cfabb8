"""Joint (x, z) discriminators (trainables/remedies/joint.py): VEEGAN's reconstruction term in G's gradient, what
the joint D sees, ALI/BiGAN's encoder term, refusals, presets and exact resume."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.trainables.test_remedies import BATCH, NETS, snapshot
from tests.trainables.test_run import TINY, _metrics
from trainables.config import resolve
from trainables.run import GANRun
from trainables.seeds import check_seed_batch
from trainables.step import build_context, d_step, g_step

NZ = 5  # the tiny mlp's latent width here; VEEGAN with eps_dim 1 reconstructs 4 columns


def make(remedy: str, params: dict, loss: str = "kl", seed: int = 0, **train):
    """A StepContext of the tiny mlp with latent width NZ, and a batch of real rows and of latents."""
    cfg = resolve({"model": {**NETS["mlp"][0], "nz": NZ}, "loss": loss, "remedies": {remedy: params},
                   "train": {"batch_size": BATCH, **train}})
    torch.manual_seed(seed)
    ctx = build_context(cfg, (2,), torch.Generator().manual_seed(seed), torch.device("cpu"))
    batch = torch.Generator().manual_seed(100 + seed)
    return ctx, torch.randn(BATCH, 2, generator=batch), torch.randn(BATCH, NZ, generator=batch)


def g_grads(ctx, real: torch.Tensor, z: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """One g_step on (real, z): G's gradients and the encoder's (None where it got none)."""
    ctx.d.requires_grad_(False)
    g_step(ctx, real, ctx.g(z), z)
    ctx.d.requires_grad_(True)
    return ([p.grad.clone() for p in ctx.g.g.parameters()],
            [None if p.grad is None else p.grad.clone() for p in ctx.g.encoder.parameters()])


def _nonzero(grads: list[torch.Tensor | None]) -> bool:
    return any(g is not None and float(g.abs().max()) > 0 for g in grads)


@pytest.mark.parametrize("weight", [0.5, 2.0])
def test_veegan_g_gradient_is_the_adversarial_one_plus_the_weighted_reconstruction_term(weight):
    """Algorithm 1, line 11: grad_G [E D(z, G(z)) + weight E||z - F(G(z))||^2]; line 9: F only by the term."""
    base, real, z = make("veegan", {"weight": 0.0, "eps_dim": 1})
    ctx, _, _ = make("veegan", {"weight": weight, "eps_dim": 1})  # the same seed: the same nets
    recon = (z[:, :4] - ctx.g.encoder(ctx.g(z))).pow(2).sum(dim=1).mean()
    expected = torch.autograd.grad(recon, list(ctx.g.g.parameters()))
    g0, e0 = g_grads(base, real, z)
    gw, ew = g_grads(ctx, real, z)
    for a, b, r in zip(gw, g0, expected):
        assert torch.allclose(a - b, weight * r, atol=1e-6, rtol=1e-4)
    assert float(sum((a - b).norm() for a, b in zip(gw, g0))) > 1e-4
    assert not _nonzero(e0), "F got a gradient without the reconstruction term"
    assert _nonzero(ew), "F is not trained by the reconstruction term"


@pytest.mark.parametrize("weight,changes", [(0.0, False), (0.5, True)])
def test_veegan_g_gradient_changes_with_f_only_through_the_term(weight, changes):
    ctx, real, z = make("veegan", {"weight": weight, "eps_dim": 1})
    other, _, _ = make("veegan", {"weight": weight, "eps_dim": 1})
    with torch.no_grad():
        for q in other.g.encoder.parameters():
            q.add_(0.3 * torch.randn_like(q))
    a, _ = g_grads(ctx, real, z)
    b, _ = g_grads(other, real, z)
    assert any(not torch.equal(x, y) for x, y in zip(a, b)) == changes


def _d_inputs(ctx, real: torch.Tensor, z: torch.Tensor) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    handle = ctx.d.features.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    fake = ctx.g(z).detach()
    d_step(ctx, real, fake, z)
    handle.remove()
    return [seen[0], seen[1], fake]


@pytest.mark.parametrize("remedy,params,width", [("veegan", {"eps_dim": 1, "code_noise": 0.0}, 4), ("bigan", {}, NZ)])
def test_the_joint_d_sees_data_with_the_encoder_code_and_samples_with_their_z(remedy, params, width):
    ctx, real, z = make(remedy, params, "nonsaturating")
    assert ctx.d.features[1].linear.in_features == 2 + width  # D's first (maxout) layer takes (x, code)
    encoder_before = snapshot(ctx.g.encoder)
    with torch.no_grad():
        code = ctx.g.encoder(real)
    real_in, fake_in, fake = _d_inputs(ctx, real, z)
    assert real_in.shape == fake_in.shape == (BATCH, 2 + width)
    assert torch.equal(real_in[:, :2], real) and torch.allclose(real_in[:, 2:], code)
    assert torch.equal(fake_in[:, :2], fake) and torch.equal(fake_in[:, 2:], z[:, :width])  # D really receives z
    assert all(torch.equal(a, b) for a, b in zip(encoder_before, snapshot(ctx.g.encoder)))  # D's step leaves E
    assert all(q.grad is None for q in ctx.g.encoder.parameters())


def test_veegan_data_code_is_a_sample_of_n_f_x_while_training_and_f_x_while_evaluating():
    from trainables.hooks import d_view

    ctx, _, _ = make("veegan", {"code_noise": 0.5})
    x = torch.randn(4000, 2)
    with torch.no_grad():
        code = ctx.g.encoder(x)
        noisy = d_view(ctx, x)[:, 2:] - code
        ctx.training = False
        clean = d_view(ctx, x)[:, 2:]
    assert float(noisy.std()) == pytest.approx(0.5, rel=0.05) and abs(float(noisy.mean())) < 0.02
    assert torch.allclose(clean, code)


def test_ali_data_code_is_mu_plus_sigma_eps_while_training_and_mu_while_evaluating():
    from trainables.hooks import d_view

    ctx, real, z = make("bigan", {"stochastic": True}, "nonsaturating")
    assert ctx.g.encoder[-1].out_features == 2 * NZ and ctx.d.features[1].linear.in_features == 2 + NZ
    x = torch.randn(4000, 2)
    with torch.no_grad():
        mu, log_sigma = ctx.g.encoder(x).chunk(2, dim=1)
        eps = (d_view(ctx, x)[:, 2:] - mu) / log_sigma.exp()
        ctx.training = False
        clean = d_view(ctx, x)[:, 2:]
    assert float(eps.std()) == pytest.approx(1.0, rel=0.05) and torch.allclose(clean, mu)
    _, got_e = g_grads(ctx, real, z)
    assert all(g is not None and float(g.abs().max()) > 0 for g in got_e)  # mu and log sigma both learn


def test_bigan_encoder_is_trained_against_the_joint_d_with_swapped_labels():
    """G and E minimise -log D(G(z), z) - log(1 - D(x, E(x))): E's gradient is that of the second term, G's of the
    first (Donahue et al. 2017)."""
    ctx, real, z = make("bigan", {}, "nonsaturating")
    ref, _, _ = make("bigan", {}, "nonsaturating")
    logits_real = ref.d(torch.cat([real, ref.g.encoder(real)], dim=1))
    logits_fake = ref.d(torch.cat([ref.g(z), z], dim=1))
    want_e = torch.autograd.grad(F.softplus(logits_real).mean(), list(ref.g.encoder.parameters()))
    want_g = torch.autograd.grad(F.softplus(-logits_fake).mean(), list(ref.g.g.parameters()))
    got_g, got_e = g_grads(ctx, real, z)
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(got_e, want_e)) and _nonzero(got_e)
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(got_g, want_g))


def test_mdgan_regularisers_vanish_where_g_inverts_e():
    """G(E(x)) = x: the geometric term is 0 and the mode term is G's loss on D(x) (Che et al. 2017)."""
    from trainables.models.encoder import WithEncoder
    from trainables.remedies import REMEDIES, make_params

    ctx, real, z = make("mdgan", {}, "nonsaturating")
    ctx.g = WithEncoder(torch.nn.Identity(), torch.nn.Identity())  # E = G^-1 on the data
    term, logs = REMEDIES["mdgan"].g_extra(ctx, make_params("mdgan", {}), real, real, z)
    assert float(logs["remedy/mdgan/geometric"]) == 0.0
    with torch.no_grad():
        d_loss_of_data = float(F.softplus(-ctx.d(real)).mean())
    assert float(logs["remedy/mdgan/mode"]) == pytest.approx(d_loss_of_data, rel=1e-6)
    term = term.detach()
    assert float(term) == pytest.approx(0.4 * float(logs["remedy/mdgan/mode"]), rel=1e-6)


def test_mdgan_g_and_e_gradients_are_the_weighted_regularisers():
    params = {"geometric": 0.7, "mode": 0.3}
    base, real, z = make("mdgan", {"geometric": 0.0, "mode": 0.0}, "nonsaturating")
    ctx, _, _ = make("mdgan", params, "nonsaturating")
    ref, _, _ = make("mdgan", params, "nonsaturating")
    recon = ref.g(ref.g.encoder(real))
    reg = 0.7 * (real - recon).pow(2).sum(dim=1).mean() + 0.3 * F.softplus(-ref.d(recon)).mean()
    want = torch.autograd.grad(reg, list(ref.g.g.parameters()) + list(ref.g.encoder.parameters()))
    g0, e0 = g_grads(base, real, z)
    gw, ew = g_grads(ctx, real, z)
    n = len(g0)
    assert all(torch.allclose(a - b, w, atol=1e-6, rtol=1e-4) for a, b, w in zip(gw, g0, want[:n]))
    assert all(torch.allclose(a, w, atol=1e-7, rtol=1e-4) for a, w in zip(ew, want[n:])) and _nonzero(ew)
    assert not _nonzero(e0)  # E learns only from the regularisers


def _by_d(ctx, grads: list) -> tuple[list, list]:
    """Gradients aligned with ctx.d.parameters(), split into D_D's and D_M's."""
    dm = {id(p) for p in ctx.d.manifold.parameters()}
    tagged = [(id(p) in dm, g) for p, g in zip(ctx.d.parameters(), grads)]
    return [g for m, g in tagged if not m], [g for m, g in tagged if m]


def _split_grads(ctx) -> tuple[list[torch.Tensor | None], list[torch.Tensor | None]]:
    """D_D's gradients and D_M's (None where one got none)."""
    return _by_d(ctx, [None if p.grad is None else p.grad.clone() for p in ctx.d.parameters()])


def test_manifold_diffusion_d_judges_g_of_e_of_x_against_g_of_z_and_d_m_judges_x_against_g_of_e_of_x():
    """Alg. 1 steps 2 and 5 (Che et al. 2017): D's loss is the diffusion D's on (G(E(x)), G(z)) plus D_M's on
    (x, G(E(x))); each D gets the gradient of its own term only."""
    ctx, real, z = make("manifold_diffusion", {}, "nonsaturating")
    ref, _, _ = make("manifold_diffusion", {}, "nonsaturating")  # the same seed: the same nets
    fake = ref.g(z).detach()
    recon = ref.g(ref.g.encoder(real)).detach()
    assert not torch.allclose(recon, real, atol=1e-2)  # G(E(x)) is not x: the two pairs differ
    diffusion = F.softplus(-ref.d(recon)).mean() + F.softplus(ref.d(fake)).mean()
    manifold = F.softplus(-ref.d.manifold(real)).mean() + F.softplus(ref.d.manifold(recon)).mean()
    want_dd, _ = _split_grads_of(ref, diffusion)
    _, want_dm = _split_grads_of(ref, manifold)
    diffusion, manifold = diffusion.detach(), manifold.detach()
    logs = d_step(ctx, real, fake, z)  # one Adam step; the gradients stay in .grad
    assert float(logs["loss/d_base"]) == pytest.approx(float(diffusion), rel=1e-6)
    assert float(logs["loss/d"]) == pytest.approx(float(diffusion + manifold), rel=1e-6)
    assert float(logs["remedy/manifold_diffusion/d_manifold"]) == pytest.approx(float(manifold), rel=1e-6)
    got_dd, got_dm = _split_grads(ctx)
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(got_dd, want_dd))
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(got_dm, want_dm)) and _nonzero(got_dm)


def _split_grads_of(ctx, loss: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """d loss / d (D_D's parameters), d loss / d (D_M's), zeros where the loss does not reach one."""
    params = list(ctx.d.parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)
    return _by_d(ctx, [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)])


def test_manifold_diffusion_reduces_to_a_gan_plus_d_m_where_g_inverts_e():
    """G(E(x)) = x: the geometric term is 0, D's real batch is the data, and G's manifold term is its loss on
    D_M(x)."""
    from trainables.models.encoder import WithEncoder
    from trainables.remedies import REMEDIES, make_params

    ctx, real, z = make("manifold_diffusion", {}, "nonsaturating")
    ctx.g = WithEncoder(torch.nn.Identity(), torch.nn.Identity())
    p = make_params("manifold_diffusion", {})
    batch, term, logs = REMEDIES["manifold_diffusion"].d_real(ctx, p, real)
    assert torch.equal(batch, real)
    with torch.no_grad():
        on_data = ctx.d.manifold(real)
        want = float(F.softplus(-on_data).mean() + F.softplus(on_data).mean())
    assert float(term.detach()) == pytest.approx(want, rel=1e-6)
    g_term, g_logs = REMEDIES["manifold_diffusion"].g_extra(ctx, p, real, real, z)
    assert float(g_logs["remedy/manifold_diffusion/geometric"]) == 0.0
    assert float(g_term.detach()) == pytest.approx(float(F.softplus(-on_data).mean()), rel=1e-6)


def test_manifold_diffusion_g_and_e_gradients_are_both_steps_and_d_m_stays_frozen():
    """Alg. 1 steps 3 and 6: G's gradient is that of its loss on D(G(z)) plus geometric * E||x - G(E(x))||^2 plus
    manifold * its loss on D_M(G(E(x))); E's only the manifold step's; D_M gets none in G's step."""
    params = {"geometric": 0.7, "manifold": 0.3}
    ctx, real, z = make("manifold_diffusion", params, "nonsaturating")
    ref, _, _ = make("manifold_diffusion", params, "nonsaturating")
    recon = ref.g(ref.g.encoder(real))
    loss = (F.softplus(-ref.d(ref.g(z))).mean() + 0.7 * (real - recon).pow(2).sum(dim=1).mean()
            + 0.3 * F.softplus(-ref.d.manifold(recon)).mean())
    want = torch.autograd.grad(loss, list(ref.g.g.parameters()) + list(ref.g.encoder.parameters()))
    got_g, got_e = g_grads(ctx, real, z)
    n = len(got_g)
    assert all(torch.allclose(a, w, atol=1e-6, rtol=1e-4) for a, w in zip(got_g, want[:n]))
    assert all(torch.allclose(a, w, atol=1e-6, rtol=1e-4) for a, w in zip(got_e, want[n:])) and _nonzero(got_e)
    assert all(p.grad is None for p in ctx.d.parameters())


@pytest.mark.parametrize("over,match", [
    ({"remedies": {"mdgan": {}, "bigan": {}}}, "both replace 'wrap_g'"),
    ({"remedies": {"manifold_diffusion": {}, "mdgan": {}}}, "both replace 'wrap_g'"),
    ({"remedies": {"manifold_diffusion": {}, "mmd_critic": {}}, "loss": "none"}, "works with loss"),
    ({"remedies": {"mdgan": {}, "mmd_critic": {}}, "loss": "none"}, "remedy 'mdgan' works with loss"),
    ({"model": {"name": "dcgan"}}, "model.name: remedy 'veegan' works with model mlp, got 'dcgan'"),
    ({"remedies": {"veegan": {}, "packing": {}}}, "'veegan' and 'packing' cannot be combined"),
    ({"remedies": {"veegan": {}, "feature_matching": {}}}, "cannot be combined"),
    ({"remedies": {"bigan": {}, "mmd": {}}}, "cannot be combined"),
    ({"remedies": {"veegan": {}, "bigan": {}}}, "both replace 'code'"),
    ({"remedies": {"bigan": {}}, "loss": "least_squares"}, "loss: remedy 'bigan' works with loss"),
    ({"model": {"name": "mlp", "code": 3}}, "unknown argument 'code'"),
    ({"remedies": {"veegan": {"weight": -1.0}}}, "remedy 'veegan': weight"),
])
def test_combinations_that_cannot_work_are_refused_at_validation(over, match):
    cfg = {"remedies": {"veegan": {}}, **over}
    with pytest.raises(ValueError, match=match):
        resolve(cfg)


def test_eps_dim_that_leaves_no_code_is_refused_at_build_and_seeds_cannot_share_a_batch():
    with pytest.raises(ValueError, match="remedies.veegan.eps_dim"):
        build_context(resolve({"remedies": {"veegan": {"eps_dim": 2}}}), (2,), torch.Generator(), torch.device("cpu"))
    with pytest.raises(ValueError, match="remedy 'veegan' mixes"):
        check_seed_batch(resolve({"remedies": {"veegan": {}}}), 2)


JOINT = {**TINY, "model": {**TINY["model"], "nz": 3}, "loss": "kl", "remedies": {"veegan": {"eps_dim": 1}}}


@pytest.mark.parametrize("remedies,loss,updates", [
    ({"veegan": {"eps_dim": 1}}, "kl", "simultaneous"),
    ({"bigan": {"stochastic": True}}, "nonsaturating", "alternating"),
    ({"mdgan": {}}, "nonsaturating", "alternating"),
    ({"manifold_diffusion": {}}, "nonsaturating", "alternating")])
def test_a_joint_run_resumes_exactly_with_its_encoder_and_optimiser_state(remedies, loss, updates):
    cfg = {**JOINT, "remedies": remedies, "loss": loss, "train": {**JOINT["train"], "updates": updates}}
    straight = _metrics(GANRun(cfg), 4)
    first = GANRun(cfg)
    _metrics(first, 2)
    state = first.state_dict()
    assert any(k.startswith("encoder.") for k in state["g"])  # the encoder travels with G's state
    torch.manual_seed(12345)
    second = GANRun(cfg)
    second.load_state_dict(state)
    assert _metrics(second, 2) == straight[2:]


def test_a_joint_run_reports_the_extended_metrics_and_draws_d_on_the_data_code_pairs(tmp_path):
    """Probes, forgetting and the D surface read the joint D as it sees data: (x, E(x))."""
    run = GANRun({**JOINT, "train": {**JOINT["train"], "epochs": 1}, "eval": {"n_samples": 300, "ndb_bins": 20,
                                                                              "probe_points": 32}})
    m = run.step()
    assert "eval/forgetting" in m and "eval/d_local_max_fraction" in m and "remedy/veegan/recon" in m
    assert run.d_surface_png(tmp_path / "s.png") == tmp_path / "s.png"
