"""Known-answer tests for mode metrics and the collapse detector."""
from __future__ import annotations

import math

import pytest
import torch

from trainables.data.mixtures import grid25_centers, ring8_centers, sample_mixture
from trainables.metrics.collapse import CollapseRule, collapse_status, states_of
from trainables.metrics.modes import assign_to_centers, diversity, kl_to_uniform, mode_metrics


def status_of(values: list[float], rule: CollapseRule) -> dict:
    """The collapse status of a run whose collapse metric took `values`, every evaluation of full quality."""
    return collapse_status(states_of(values, [1.0] * len(values), rule), rule)


def _score(x, centers, std):
    modes, hq = assign_to_centers(x, centers, std)
    return mode_metrics(modes, hq, len(centers), count_all=False)


def test_all_samples_on_one_mode():
    centers = ring8_centers()
    x = centers[3].repeat(500, 1) + 0.001 * torch.randn(500, 2)
    m = _score(x, centers, 0.01)
    assert m["eval/modes_covered"] == 1
    assert m["eval/diversity"] == pytest.approx(1 / 8)
    assert m["eval/kl_to_uniform"] == pytest.approx(math.log(8))
    assert m["eval/hq_fraction"] == 1.0


def test_real_samples_cover_every_mode():
    gen = torch.Generator().manual_seed(0)
    for centers, std in ((ring8_centers(), 0.01), (grid25_centers(), 0.05)):
        m = _score(sample_mixture(centers, std, 2500, gen), centers, std)
        assert m["eval/modes_covered"] == len(centers)
        assert m["eval/diversity"] > 0.97
        assert m["eval/hq_fraction"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)  # P(chi_2 <= 3)
        assert m["eval/kl_to_uniform"] < 0.02


def test_modes_with_mass_tells_an_off_mode_blob_from_a_smear():
    """Radius-2 ring, std 0.02: one blob 0.3 off mode 2 (none within 3 std) has mass on 1 mode; points spread evenly
    round the ring, also off the modes, have mass on all 8; samples on the modes, 8 and 8 high quality."""
    centers, std, gen = 2.0 * ring8_centers(), 0.02, torch.Generator().manual_seed(0)
    blob = centers[2] * 1.15 + 0.05 * torch.randn(2000, 2, generator=gen)
    angles = torch.linspace(0, 2 * math.pi, 2001)[:-1]
    smear = 2.3 * torch.stack([angles.cos(), angles.sin()], 1)
    on_modes = sample_mixture(centers, std, 2000, gen)
    for x, mass, hq in ((blob, 1, 0.0), (smear, 8, 0.0), (on_modes, 8, None)):
        m = _score(x, centers, std)
        assert m["eval/modes_with_mass"] == mass
        if hq is not None:
            assert m["eval/hq_fraction"] == hq and m["eval/modes_robust"] == 0
    # 90 >= 0.25 / 8 of 1,000 > 10: two modes hold mass, the third does not
    two = torch.cat([centers[0].repeat(900, 1), centers[1].repeat(90, 1), centers[2].repeat(10, 1)])
    assert _score(two, centers, std)["eval/modes_with_mass"] == 2


def test_ring8_has_eight_distinct_centres():
    c = ring8_centers()
    assert len(torch.unique(c.round(decimals=4), dim=0)) == 8
    assert torch.allclose(c.norm(dim=1), torch.ones(8))


def test_far_samples_are_not_high_quality():
    centers = ring8_centers()
    m = _score(torch.full((100, 2), 5.0), centers, 0.01)
    assert m["eval/hq_fraction"] == 0 and m["eval/modes_covered"] == 0 and m["eval/diversity"] == 0


def test_diversity_and_kl_two_equal_modes():
    hist = torch.tensor([50.0, 50.0, 0, 0])
    assert diversity(hist) == pytest.approx(0.5)
    assert kl_to_uniform(hist) == pytest.approx(math.log(4) - math.log(2))


RULE = CollapseRule(threshold=0.5, patience=2, warmup=1)


@pytest.mark.parametrize(
    "values, expected",
    [
        ([0.9, 0.8, 0.3, 0.2, 0.1], {"collapsed": 1, "collapse_epoch": 3, "epochs_survived": 2, "never_diverse": 0}),
        ([0.9, 0.3, 0.9, 0.3, 0.9], {"collapsed": 0, "collapse_epoch": None, "epochs_survived": 5, "never_diverse": 0}),
        ([0.2, 0.3, 0.1, 0.1], {"collapsed": 0, "collapse_epoch": None, "epochs_survived": 4, "never_diverse": 1}),
        ([0.9, 0.9, 0.9, 0.2], {"collapsed": 0, "collapse_epoch": None, "epochs_survived": 4, "never_diverse": 0}),
        ([0.2, 0.9, 0.1, 0.1], {"collapsed": 1, "collapse_epoch": 3, "epochs_survived": 2, "never_diverse": 0}),
    ],
    ids=["collapses", "recovers", "never-diverse", "censored-tail", "late-diverse-then-collapse"],
)
def test_collapse_detector(values, expected):
    got = status_of(values, RULE)
    assert {k: got[k] for k in expected} == expected


def test_warmup_ignores_early_dips():
    rule = CollapseRule(threshold=0.5, patience=2, warmup=3)
    assert status_of([0.9, 0.1, 0.1, 0.9, 0.9], rule)["collapsed"] == 0
    assert status_of([0.9, 0.1, 0.1, 0.1, 0.1], rule)["collapse_epoch"] == 4


def test_direction_above():
    rule = CollapseRule(threshold=0.5, patience=1, direction="above")
    assert status_of([0.1, 0.2, 0.9], rule)["collapse_epoch"] == 3


def test_stacked_mnist_counts_modes_by_argmax():
    modes = torch.tensor([0, 0, 5, 999, 999])
    hq = torch.tensor([True, False, False, False, False])
    assert mode_metrics(modes, hq, 1000, count_all=True)["eval/modes_covered"] == 1
    assert mode_metrics(modes, hq, 1000, count_all=True, covered_needs_hq=False)["eval/modes_covered"] == 3


def test_mixtures_of_any_shape_and_their_presets():
    from trainables.data import load_dataset
    from trainables.data.mixtures import grid_centers, ring_centers

    assert torch.equal(ring_centers(8, 1.0), ring8_centers()) and torch.equal(grid_centers(5, 2.0), grid25_centers())
    six = load_dataset({"name": "ring", "modes": 6, "radius": 2.0, "std": 0.02, "n_points": 600})
    assert six.n_modes == 6 and six.std == 0.02
    assert torch.allclose(six.centers.norm(dim=1), torch.full((6,), 2.0))
    assert torch.allclose(six.centers[1], torch.tensor([1.0, math.sqrt(3.0)]))  # 60 degrees
    grid = load_dataset({"name": "grid", "modes": 3, "spacing": 1.0, "n_points": 90})
    assert grid.n_modes == 9 and sorted(set(grid.centers[:, 0].tolist())) == [-1.0, 0.0, 1.0]
    same = load_dataset({"name": "ring", "n_points": 500, "seed": 3})
    assert torch.equal(same.x, load_dataset({"name": "ring8", "n_points": 500, "seed": 3}).x)  # ring8 is a preset
