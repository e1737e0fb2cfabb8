"""Known answers for PRDC, NDB, duplicate rate and the D probes; chunked = unchunked; the run integration."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from trainables.metrics.d_surface import save_d_surface
from trainables.metrics.duplicates import duplicate_rate, duplicate_threshold, nn_distance
from trainables.metrics.knn import kth_neighbour_distance, pair_distance
from trainables.metrics.modes import assign_to_centers, mode_metrics
from trainables.metrics.ndb import NDBBins, different_bins, kmeans, nearest_centre
from trainables.metrics.prdc import prdc
from trainables.metrics.probes import ForgettingTracker, d_probes, local_max_and_basin, probe_directions


def _gauss(n: int, dim: int, seed: int) -> Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _reference_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """clovaai/generative-evaluation-prdc's compute_prdc (Naeem et al. 2020): full distance matrices."""
    from sklearn.metrics import pairwise_distances

    def radii(x):
        d = pairwise_distances(x, x)
        return np.take_along_axis(d, np.argpartition(d, k + 1, axis=-1)[..., : k + 1], axis=-1).max(axis=-1)

    r_real, r_fake, d = radii(real), radii(fake), pairwise_distances(real, fake)
    return {"eval/precision": (d < r_real[:, None]).any(axis=0).mean(),
            "eval/recall": (d < r_fake[None, :]).any(axis=1).mean(),
            "eval/density": (1.0 / k) * (d < r_real[:, None]).sum(axis=0).mean(),
            "eval/coverage": (d.min(axis=1) < r_real).mean()}


# ---- PRDC -------------------------------------------------------------------------------------------

def test_prdc_chunked_equals_unchunked_and_the_reference():
    real, fake = _gauss(300, 8, 0), _gauss(250, 8, 1) * 1.2 + 0.3
    whole = prdc(real, fake, k=5, chunk=10_000)
    assert prdc(real, fake, k=5, chunk=7) == whole
    assert prdc(real, fake, k=5, real_radii=kth_neighbour_distance(real, 5, chunk=13)) == whole
    assert whole == pytest.approx(_reference_prdc(real.numpy(), fake.numpy(), 5), abs=0)
    assert torch.equal(kth_neighbour_distance(real, 3, chunk=1), kth_neighbour_distance(real, 3))


def test_copy_of_the_real_set_is_perfect():
    real = _gauss(400, 16, 2)
    assert prdc(real, real.clone(), k=5) == {"eval/precision": 1.0, "eval/recall": 1.0, "eval/density": 1.0,
                                             "eval/coverage": 1.0}


def test_independent_sample_coverage_and_density():
    m = prdc(_gauss(1000, 2, 3), _gauss(1000, 2, 4), k=5)
    assert m["eval/coverage"] == pytest.approx(1 - 2**-5, abs=0.03)  # Naeem et al. 2020, Lemma 2 (M = N)
    assert m["eval/density"] == pytest.approx(1.0, abs=0.1)
    assert m["eval/precision"] > 0.95 and m["eval/recall"] > 0.95


def test_all_fakes_on_one_real_point():
    real = _gauss(500, 2, 5)
    fake = real[7].repeat(500, 1)
    m = prdc(real, fake, k=5)
    # coverage = share of real balls holding that point; each point lies in k balls on average (itself + k-1)
    balls = int((pair_distance(real, real[7]) < kth_neighbour_distance(real, 5)).sum())
    assert m["eval/coverage"] == balls / 500 and 1 <= balls <= 15
    assert m["eval/precision"] == 1.0 and m["eval/recall"] == 0.0  # fake radii are 0: the fake manifold is empty
    assert m["eval/density"] == pytest.approx(balls / 5)
    assert duplicate_rate(fake, duplicate_threshold(real))["eval/duplicate_rate"] == 1.0


# ---- duplicate rate ---------------------------------------------------------------------------------

def test_duplicate_rate_baseline_partial_and_chunked():
    real, fake = _gauss(800, 4, 6), _gauss(800, 4, 7)
    threshold = duplicate_threshold(real)
    assert duplicate_rate(fake, threshold)["eval/duplicate_rate"] < 0.04  # about the 1st percentile
    half = torch.cat([fake[:400], fake[:400]])  # every sample has an exact twin
    assert duplicate_rate(half, threshold)["eval/duplicate_rate"] == 1.0
    assert torch.equal(nn_distance(fake, chunk=9), nn_distance(fake))


# ---- NDB --------------------------------------------------------------------------------------------

def _ring10(n: int, seed: int, drop: int | None = None) -> tuple[Tensor, Tensor]:
    angles = torch.arange(10, dtype=torch.float64) * (2 * math.pi / 10)
    centres = torch.stack([angles.cos(), angles.sin()], 1)
    gen = torch.Generator().manual_seed(seed)
    pool = [c for c in range(10) if c != drop]
    idx = torch.tensor(pool)[torch.randint(len(pool), (n,), generator=gen)]
    return centres[idx] + 0.02 * torch.randn(n, 2, generator=gen, dtype=torch.float64), centres


def test_dropping_one_of_ten_classes_shows_in_ndb_and_modes_covered():
    real, centres = _ring10(2000, 8)
    bins = NDBBins.fit(real, k=20, seed=0)
    same, _ = _ring10(2000, 9)
    dropped, _ = _ring10(2000, 10, drop=3)
    assert bins.score(same)["eval/ndb"] <= 0.05
    assert bins.score(dropped)["eval/ndb"] >= 0.1  # the dropped class's bins (about 2 of 20)
    modes, hq = assign_to_centers(dropped, centres, 0.02)
    assert mode_metrics(modes, hq, 10, count_all=False)["eval/modes_covered"] == 9


def test_kmeans_is_seeded_and_assignment_chunked():
    x = _gauss(300, 3, 11)
    assert torch.equal(kmeans(x, 20, seed=1), kmeans(x, 20, seed=1))
    c = kmeans(x, 20, seed=1)
    assert torch.equal(nearest_centre(x, c, chunk=7), nearest_centre(x, c))
    assert len(kmeans(x[:10], 100)) == 10  # K is capped at the sample count


def test_two_proportion_z_test():
    real, fake = torch.tensor([500, 300, 200, 0]), torch.tensor([500, 200, 300, 0])
    assert different_bins(real, fake).tolist() == [False, True, True, False]  # an empty bin is not different


# ---- D probes ---------------------------------------------------------------------------------------

class Bumps(nn.Module):
    """D(x) = sum_i exp(-||x - x_i||^2 / (2 s^2)): a local maximum at every real point."""

    def __init__(self, points: Tensor, s: float):
        super().__init__()
        self.points, self.s = points, s

    def forward(self, x: Tensor) -> Tensor:
        return torch.exp(-torch.cdist(x.flatten(1), self.points.flatten(1)) ** 2 / (2 * self.s**2)).sum(1)


def bump(center: Tensor, s: float):
    """D(x) = exp(-||x - center||^2 / (2 s^2)): one maximum of width s."""
    return lambda x: torch.exp(-((x.flatten(1) - center) ** 2).sum(1) / (2 * s**2))


def test_memorising_discriminator_has_a_narrow_maximum_at_every_real_point():
    axis = torch.arange(6, dtype=torch.float32)
    real = torch.cartesian_prod(axis, axis)  # 36 points, spacing 1
    u = probe_directions(len(real), (2,), seed=0)
    m = d_probes(Bumps(real, 0.1), real, u, radius=0.3)
    assert m["eval/d_local_max_fraction"] == 1.0
    assert m["eval/d_basin_width"] == pytest.approx(0.4)  # half depth between 0.06 and 0.12 of r = 0.3: by hand


def test_basin_width_separates_sharp_from_wide_maxima():
    x0 = torch.zeros(1, 2)
    u = probe_directions(1, (2,), seed=0)
    sharp = d_probes(bump(x0, 0.05), x0, u, radius=0.3)
    wide = d_probes(bump(x0, 0.5), x0, u, radius=0.3)
    assert sharp["eval/d_local_max_fraction"] == wide["eval/d_local_max_fraction"] == 1.0
    assert sharp["eval/d_basin_width"] == pytest.approx(0.2) and wide["eval/d_basin_width"] == pytest.approx(0.8)


def test_flat_discriminator_has_no_maximum():
    real = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    m = d_probes(lambda x: torch.full((len(x),), 0.7), real, probe_directions(64, (2,), seed=1), radius=0.3)
    assert m == {"eval/d_local_max_fraction": 0.0, "eval/d_basin_width": 0.0}


def test_local_max_fraction_separates_flat_peaked_and_memorising():
    from trainables.data.mixtures import ring8_centers, sample_mixture

    centers = ring8_centers()
    real = sample_mixture(centers, 0.01, 256, torch.Generator().manual_seed(0))
    u, r = probe_directions(256, (2,), seed=1), 0.03  # 3 std, the platform's 2D default
    peaked = d_probes(lambda x: -torch.cdist(x, centers).min(1).values ** 2, real, u, r)  # smooth, at the modes
    memorising = d_probes(Bumps(real, 0.002), real, u, r)
    flat = d_probes(lambda x: torch.zeros(len(x)), real, u, r)
    assert flat["eval/d_local_max_fraction"] == 0.0
    assert 0.0 < peaked["eval/d_local_max_fraction"] < 0.5 < 0.8 < memorising["eval/d_local_max_fraction"]


def test_linear_discriminator_has_no_maxima():
    real = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))
    w = torch.randn(5, generator=torch.Generator().manual_seed(1))
    m = d_probes(lambda x: x @ w, real, probe_directions(64, (5,), seed=2), radius=1.0)
    assert m == {"eval/d_local_max_fraction": 0.0, "eval/d_basin_width": 0.0}


def test_basin_width_definition():
    rows = torch.tensor([[1.0, 2, 3, 2, 1], [0.0, 2, 3, 2, 5], [3.0, 2, 1, 2, 3], [1.0, 1, 1, 1, 1]])
    is_max, width = local_max_and_basin(rows)
    assert is_max.tolist() == [True, True, False, False]
    assert width.tolist() == [0.5, 1.0, 0.0, 0.0]  # half depth at +-r/2; left at -r, right never: the edge; none


def test_forgetting_is_the_same_for_every_monotone_scale_of_d():
    from trainables.metrics.probes import rank_scores

    before, after = torch.tensor([0.1, 0.5, 2.0, -1.0]), torch.tensor([0.6, 0.4, 2.0, -1.5])
    values = []
    for scale in (lambda f: f, lambda f: 5 * f + 3, torch.sigmoid):  # logit, a critic's scale, a probability
        t = ForgettingTracker()
        assert t.update(rank_scores(scale(before))) == 0.0
        values.append(t.update(rank_scores(scale(after))))
    assert values[0] == pytest.approx(1 / 6) and values == pytest.approx([values[0]] * 3)  # two ranks swap


def test_forgetting_counts_only_the_regions_g_held():
    from trainables.metrics.probes import DProbes

    x = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    probes = DProbes(x, radius=0.3, modes=torch.tensor([0, 0, 1, 1]))
    d0 = lambda p: p[:, 0]
    d1 = lambda p: torch.where(p[:, 0] > 4, 10.1 - p[:, 0], p[:, 0])  # D reorders mode 1's points only
    e = type("E", (), {})()
    for held, expected in (([True, False], 0.0), ([False, True], 1 / 3)):  # ranks 2/3 and 1 swap
        probes.remember(d0, torch.tensor(held))
        e.d, e.held = d1, torch.tensor(held)
        assert probes(e)["eval/forgetting"] == pytest.approx(expected)


def test_d_surface_png(tmp_path):
    from trainables.data import load_dataset

    data = load_dataset({"name": "ring8", "n_points": 200, "seed": 0})
    d = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    path = save_d_surface(lambda x: d(x).view(-1), data.x[:100], data, tmp_path / "d.png", n=30, arrows=8)
    assert path.stat().st_size > 1000


# ---- integration -----------------------------------------------------------------------------------

TINY = {"seed": 1, "data": {"name": "ring8", "n_points": 400},
        "model": {"name": "mlp", "g_hidden": 16, "g_layers": 2, "d_hidden": 16, "d_layers": 2, "maxout": 2},
        "train": {"epochs": 2, "batch_size": 100, "steps_per_epoch": 2},
        "eval": {"n_samples": 300, "ndb_bins": 20, "probe_points": 32, "extended_every": 2}}


def test_run_reports_extended_keys_on_schedule(tmp_path):
    from trainables.metrics.registry import METRICS
    from trainables.run import GANRun

    EXTENDED_KEYS = [k for m in METRICS.values() for k in m.keys]

    run = GANRun(TINY)
    first, second = run.step(), run.step()
    assert not set(EXTENDED_KEYS) & set(first)
    assert set(EXTENDED_KEYS) <= set(second)
    assert run.d_surface_png(tmp_path / "s.png") == tmp_path / "s.png"
    forced = GANRun({**TINY, "collapse": {"metric": "eval/duplicate_rate", "direction": "above"}})
    assert "eval/duplicate_rate" in forced.step()  # the collapse metric is computed every epoch


def test_packed_d_skips_line_probes_but_reports_forgetting(tmp_path):
    from trainables.run import GANRun

    run = GANRun({**TINY, "remedies": {"packing": {"m": 2}}, "eval": {**TINY["eval"], "extended_every": 1}})
    m = run.step()
    assert "eval/forgetting" in m and "eval/d_local_max_fraction" not in m
    assert run.d_surface_png(tmp_path / "s.png") is None
    with pytest.raises(ValueError, match="not reported"):
        GANRun({**TINY, "remedies": {"packing": {"m": 2}}, "collapse": {"metric": "eval/d_basin_width"}})


def test_collapse_metric_validation():
    from pydantic import ValidationError

    from trainables.config import CollapseConfig as CollapseCfg
    from trainables.config import EvalConfig as EvalCfg

    assert CollapseCfg(metric="eval/coverage").metric == "eval/coverage"
    assert CollapseCfg(metric="compute/g_steps").metric == "compute/g_steps"
    for bad in ("eval/covrage", "diversity"):
        with pytest.raises(ValidationError, match="unknown collapse metric"):
            CollapseCfg(metric=bad)
    with pytest.raises(ValidationError):
        EvalCfg(n_samples=10, k=10)
