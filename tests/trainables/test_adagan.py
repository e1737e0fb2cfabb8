"""AdaGAN (Tolstikhin et al. 2017): mixture sampling by weight, the data weights W_t against the authors' loop and
a hand-built D, beta_t, round-2 batches drawn by W_t, exact resume mid-round, reproducibility."""
from __future__ import annotations

import math

import pytest
import torch

import trainables.adagan as adagan_mod
import trainables.step as step_mod
from tests.trainables.test_host_sync import counting_host_reads
from trainables.adagan import build_classifier, train_classifier
from trainables.config import resolve
from trainables.mixture import (
    DATA_WEIGHTS,
    density_ratios,
    mix,
    next_beta,
    pick,
    sample_mixture,
    weights_theory_star,
    weights_topk,
)
from trainables.run import GANRun
from trainables.seeds import SeedGroup, check_seed_batch
from trainables.step import draw_order

TINY = {
    "seed": 5,
    "data": {"name": "ring8", "n_points": 400},
    "model": {"name": "mlp", "g_hidden": 16, "g_layers": 2, "d_hidden": 16, "d_layers": 2, "maxout": 2},
    "remedies": {"adagan": {"rounds": 2, "classifier_epochs": 1, "mixture_samples": 400}},
    "train": {"epochs": 4, "batch_size": 100, "lr": 1e-3},
    "eval": {"n_samples": 200, "metrics": [], "grid_size": 16},
}


def _metrics(run: GANRun, epochs: int) -> list[dict]:
    out = []
    for _ in range(epochs):
        m = run.step()
        out.append({k: "nan" if v != v else v for k, v in m.items()
                    if not k.startswith("time/") and k != "compute/seconds" and k != "objective"})
    return out


def _authors_theory_star(beta: float, ratios: list[float]) -> list[float]:
    """A literal transcription of tolstikhin/adagan adagan.py _compute_data_weights_theory_star (the reference)."""
    num = len(ratios)
    rs = sorted(ratios)
    cs = [sum(rs[: i + 1]) for i in range(num)]
    lam, found = 0.0, False
    for i in range(num):
        lam = beta * num * (1.0 + (1.0 - beta) / beta / num * cs[i]) / (i + 1.0)
        if i == num - 1:
            if lam >= (1.0 - beta) * rs[-1]:
                found = True
                break
        elif (1 - beta) * rs[i] <= lam <= (1 - beta) * rs[i + 1]:
            found = True
            break
    if not found:
        return [1.0 / num] * num
    w = [(lam - (1 - beta) * r) / num / beta if r <= lam / (1.0 - beta) else 0.0 for r in ratios]
    return [v / sum(w) for v in w]


def test_mixture_samples_components_in_proportion_to_their_weights():
    weights = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    nets = [lambda z, k=k: torch.full((len(z), 1), float(k)) for k in range(3)]  # component k outputs k
    n = 200_000
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(n, 2, generator=gen)
    u = torch.rand(n, generator=gen, dtype=torch.float64)
    out = sample_mixture(nets, weights, z, u).squeeze(1)
    for k, p in enumerate(weights.tolist()):
        count = int((out == k).sum())
        sd = math.sqrt(n * p * (1 - p))
        assert abs(count - n * p) < 5 * sd, (k, count, n * p)  # 5 binomial sd: a false alarm about 1 in 10^6
    assert torch.equal(out, pick(weights, u).to(out.dtype))  # row i comes from the component its draw picked


def test_a_component_of_weight_zero_is_never_drawn():
    u = torch.rand(10_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    which = pick(torch.tensor([0.6, 0.0, 0.4], dtype=torch.float64), u)
    assert not (which == 1).any() and set(which.unique().tolist()) == {0, 2}


def test_beta_schedule_and_mixture_weights_follow_the_authors():
    assert [next_beta("uniform", t, 0.5) for t in (1, 2, 3, 4)] == [1.0, 0.5, 1 / 3, 0.25]
    assert [next_beta("constant", t, 0.3) for t in (1, 2, 3)] == [1.0, 0.3, 0.3]
    w = torch.zeros(0, dtype=torch.float64)
    for t in (1, 2, 3, 4):
        w = mix(w, next_beta("uniform", t, 0.5))
    assert torch.allclose(w, torch.full((4,), 0.25, dtype=torch.float64))  # beta_t = 1/t: the uniform mixture
    w = torch.zeros(0, dtype=torch.float64)
    for t in (1, 2, 3):
        w = mix(w, next_beta("constant", t, 0.5))
    assert w.tolist() == [0.25, 0.25, 0.5]


def test_data_weights_of_a_hand_built_d_go_where_the_mixture_is_missing():
    """D certain (logit 20) that the points x > 0 are real, undecided (logit 0) on the others, which the
    mixture covers: h = 0 and 1; with beta = 1/2 the paper's lambda* = 3/4, so w = 3/8 and 1/8 (eq. 17-18)."""
    x = torch.tensor([[1.0, 0.0], [2.0, 0.0], [-1.0, 0.0], [-2.0, 0.0]])

    def d(points):
        return torch.where(points[:, 0] > 0, 20.0, 0.0)

    w = weights_theory_star(density_ratios(torch.sigmoid(d(x)).double()), 0.5, 0.5)
    assert torch.allclose(w, torch.tensor([0.375, 0.375, 0.125, 0.125], dtype=torch.float64), atol=1e-7)
    # a D sure that the covered points are fake (h = 10): they get no weight at all, the missing ones all of it
    w = weights_theory_star(torch.tensor([0.0, 0.0, 10.0, 10.0], dtype=torch.float64), 0.5, 0.5)
    assert w.tolist() == [0.5, 0.5, 0.0, 0.0]


@pytest.mark.parametrize("beta", [0.5, 1 / 3, 0.1])
def test_theory_star_equals_the_authors_loop_and_is_a_distribution(beta):
    gen = torch.Generator().manual_seed(2)
    ratios = torch.rand(300, generator=gen, dtype=torch.float64).mul(4).exp().sub(1)  # spread over [0, e^4)
    w = weights_theory_star(ratios, beta, 0.5)
    assert torch.allclose(w, torch.tensor(_authors_theory_star(beta, ratios.tolist()), dtype=torch.float64))
    assert (w >= 0).all() and w.sum().item() == pytest.approx(1.0, abs=1e-12)
    order = ratios.argsort()
    assert (w[order].diff() <= 1e-15).all()  # the more the mixture covers a point (larger h), the less its weight


def test_topk_is_uniform_on_the_points_most_surely_real():
    ratios = torch.arange(10, dtype=torch.float64)
    w = weights_topk(ratios, 0.5, 0.3)
    assert w[:3].tolist() == pytest.approx([1 / 3] * 3) and (w[3:] == 0).all()
    assert set(DATA_WEIGHTS) == {"theory_star", "topk"}


def test_a_trained_classifier_weights_the_cluster_the_mixture_misses():
    """Real: two clusters; the mixture's samples: only the first. C's P(real) is higher on the missed cluster,
    and W_t puts most of the mass there."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    real = torch.cat([torch.randn(200, 2, generator=gen) * 0.1 + 2, torch.randn(200, 2, generator=gen) * 0.1 - 2])
    fake = torch.randn(400, 2, generator=gen) * 0.1 + 2
    cfg = resolve({**TINY, "train": {**TINY["train"], "lr": 1e-2}})
    prob = train_classifier(build_classifier(cfg, (2,)), cfg, real, fake, 200, gen)
    assert prob[200:].mean() > 0.9 > 0.6 > prob[:200].mean()
    w = weights_theory_star(density_ratios(prob.double()), 0.5, 0.5)
    assert w[200:].sum() > 0.7


def test_draw_order_follows_the_data_weights():
    gen = torch.Generator().manual_seed(3)
    assert sorted(draw_order(50, gen, torch.device("cpu")).tolist()) == list(range(50))  # no weights: a permutation
    w = torch.zeros(40_000)
    w[[3, 7]] = torch.tensor([0.75, 0.25])
    rows = draw_order(40_000, torch.Generator().manual_seed(4), torch.device("cpu"), w)
    assert set(rows.tolist()) == {3, 7}
    assert (rows == 3).float().mean().item() == pytest.approx(0.75, abs=0.01)  # 4.6 binomial sd


def test_round_two_gan_is_fresh_and_trains_on_the_reweighted_data(monkeypatch):
    run = GANRun(TINY)
    _metrics(run, 2)  # round 1
    g1 = {k: v.clone() for k, v in run.ctx.g.state_dict().items() if "num_batches" not in k}  # sampling counts
    favoured = torch.zeros(len(run.x))
    favoured[:5] = 0.2  # W_t on the first 5 rows only
    monkeypatch.setitem(adagan_mod.DATA_WEIGHTS, "theory_star", lambda ratios, beta, topk: favoured.double())
    seen: list[torch.Tensor] = []
    train_step = step_mod.train_step

    def spy(ctx, next_real):
        def recorded():
            real = next_real()
            seen.append(real)
            return real
        return train_step(ctx, recorded)

    monkeypatch.setattr(step_mod, "train_step", spy)
    result = run.step()  # the first epoch of round 2
    assert result["adagan/round"] == 2 and result["adagan/beta"] == 0.5
    assert torch.equal(run.ctx.data_weights, favoured)
    batches = torch.cat(seen)
    assert len(batches) > 0 and all(any(torch.equal(b, r) for r in run.x[:5]) for b in batches)
    assert len(run.rounds.components) == 1  # round 1's G is the first component; round 2's G is a fresh net
    assert all(torch.equal(v, run.rounds.components[0].state_dict()[k]) for k, v in g1.items())
    assert any(not torch.equal(v, run.ctx.g.state_dict()[k]) for k, v in g1.items())


def test_round_structure_in_the_metrics_and_grids():
    run = GANRun(TINY)
    ms = _metrics(run, 4)
    assert [m["epoch"] for m in ms] == [1, 2, 3, 4]  # monotone across rounds
    assert [m["adagan/round"] for m in ms] == [1, 1, 2, 2]
    assert [m["adagan/beta"] for m in ms] == [1.0, 1.0, 0.5, 0.5]
    assert "adagan/data_ess" in ms[2] and "adagan/component/spread" in ms[0] and "eval/spread" in ms[0]
    assert set(run.grids()) == {"component_01", "component_02"}
    assert run.samples().shape == (16, 2) and run.grids()["component_01"].shape == (16, 2)
    state = run.state_dict()["rounds"]
    assert len(state["components"]) == 1 and state["weights"].tolist() == [1.0]
    assert state["data_weights"].shape == (400,) and state["data_weights"].sum().item() == pytest.approx(1.0)


def test_the_mixture_is_what_the_trial_is_evaluated_on():
    run = GANRun(TINY)
    _metrics(run, 3)
    rounds = run.rounds
    z, u = run.z_eval, rounds.u_eval
    which = pick(rounds.mixture_weights(), u)
    mixture = run.generate(z)
    from trainables.evaluate import generate

    assert torch.equal(mixture[which == 0], generate(rounds.components[0], z)[which == 0])
    assert torch.equal(mixture[which == 1], generate(run.ctx.g, z)[which == 1])
    assert 0.35 < (which == 0).float().mean().item() < 0.65  # 200 draws at weight 1/2


def test_round_one_is_a_plain_gan():
    plain = {**TINY, "remedies": {}}
    ada, gan = _metrics(GANRun(TINY), 2), _metrics(GANRun(plain), 2)
    for a, g in zip(ada, gan):
        assert {k: v for k, v in a.items() if not k.startswith("adagan/")} == g


def test_same_seed_same_metrics_and_another_seed_differs():
    assert _metrics(GANRun(TINY), 4) == _metrics(GANRun(TINY), 4)
    assert _metrics(GANRun(TINY), 3)[2] != _metrics(GANRun({**TINY, "seed": 6}), 3)[2]


@pytest.mark.parametrize("stop", [2, 3])  # at the round boundary, and mid-round 2
def test_resume_continues_exactly(stop, tmp_path):
    straight = _metrics(GANRun(TINY), 4)
    first = GANRun(TINY)
    _metrics(first, stop)
    path = tmp_path / "state.pt"
    torch.save(first.state_dict(), path)
    state = torch.load(path, weights_only=True)  # as GANTrainable.load_checkpoint reads it
    torch.manual_seed(12345)  # the resumed process starts from another global RNG state
    second = GANRun(TINY)
    second.load_state_dict(state)
    assert _metrics(second, 4 - stop) == straight[stop:]


def test_refused_configurations():
    with pytest.raises(ValueError, match="does not split into 3 rounds"):
        resolve({**TINY, "remedies": {"adagan": {"rounds": 3}}})
    with pytest.raises(ValueError, match="compile"):
        resolve({**TINY, "train": {**TINY["train"], "compile": True}})
    with pytest.raises(ValueError, match="rounds"):
        check_seed_batch(resolve(TINY), 2)
    with pytest.raises(ValueError, match="seeds_per_trial: 1"):
        SeedGroup([resolve({**TINY, "seed": s}) for s in (1, 2)])
    assert resolve({"variant": "adagan"}).remedies["adagan"].rounds == 10


def test_the_trainable_logs_a_grid_of_the_mixture_and_of_each_component(tmp_path):
    """GANTrainable._log_samples (trainables/tune.py) with a stand-in MLflow client: the mixture's grid as before,
    and one per component under samples/component_NN."""
    from types import SimpleNamespace

    from trainables.tune import Child, GANTrainable

    run = GANRun(TINY)
    _metrics(run, 3)
    logged: list[tuple[str, str]] = []
    client = SimpleNamespace(log_artifact=lambda run_id, path, where: logged.append((where, path.rsplit("/", 1)[-1])),
                             log_image=lambda *a, **k: None)
    fake = SimpleNamespace(client=client, _run=GANTrainable._run, _log_image=lambda *a, **k: None)
    GANTrainable._log_samples(fake, Child(run.config, run=run, run_id="r"), 3, "epoch")  # type: ignore[arg-type]
    assert ("samples", "epoch_0003.png") in logged
    assert ("samples/component_01", "component_01_0003.png") in logged
    assert ("samples/component_02", "component_02_0003.png") in logged


@pytest.mark.parametrize("loss, remedies", [
    ("nonsaturating", {"packing": {"m": 2}}),
    ("minimax", {"unrolled": {"k": 1}}),
    ("wasserstein", {"gradient_penalty": {}, "n_critic": {"n": 2}}),
    ("nonsaturating", {"label_flip": {"rate": 0.1}, "spectral_norm": {}}),
])
def test_other_remedies_act_on_every_round(loss, remedies):
    """Each round's GAN is a GAN like any other: its remedies are built into the fresh nets of every round."""
    cfg = {**TINY, "loss": loss, "remedies": {**TINY["remedies"], **remedies}}
    run = GANRun(cfg)
    ms = _metrics(run, 3)
    assert [m["adagan/round"] for m in ms] == [1, 1, 2] and all(m["diverged"] == 0 for m in ms)
    assert [n for n, _, _ in run.ctx.remedies] == ["adagan", *remedies]
    if "spectral_norm" in remedies:  # round 2's fresh D is wrapped as round 1's was
        assert any("parametrizations" in n for n, _ in run.ctx.d.named_modules())


@pytest.mark.parametrize("steps", [8, 40])
def test_a_round_two_epoch_reads_the_host_as_a_plain_epoch(steps):
    """Drawing batches by W_t adds no host read to the step (tests/trainables/test_host_sync.py)."""
    cfg = {**TINY, "train": {**TINY["train"], "epochs": 2, "batch_size": 20, "steps_per_epoch": steps}}
    run = GANRun(cfg)
    _metrics(run, 1)  # round 1
    run.rounds.begin(run)  # round 2 starts outside the count (its classifier and W_t are read once a round)
    assert run.ctx.data_weights is not None
    with counting_host_reads() as calls:
        run.train_epoch()  # begin() again: nothing due
    assert len(calls) <= 4, calls  # the divergence check and the epoch's means, as a plain epoch
