"""Known-answer tests of the collapse verdict: states, collapse epoch, censoring, objective, sample size."""
from __future__ import annotations

import math

import pytest
import torch

from trainables.data.mixtures import ring8_centers
from trainables.metrics.collapse import (
    COLLAPSED,
    DEGRADED,
    DIVERSE,
    NOT_LEARNED,
    CollapseRule,
    check_sample_size,
    collapse_status,
    objective,
    states_of,
)
from trainables.metrics.modes import assign_to_centers, mode_metrics

N, K = 2500, 8
RULE = CollapseRule(threshold=0.5, patience=2, warmup=0, quality_floor=0.5)


def hist_sample(counts: list[int], junk: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mode assignments: counts[k] high-quality samples on mode k, plus `junk` low-quality ones on mode 0."""
    modes = torch.cat([torch.full((c,), k) for k, c in enumerate(counts)] + [torch.zeros(junk, dtype=torch.long)])
    hq = torch.cat([torch.ones(sum(counts), dtype=torch.bool), torch.zeros(junk, dtype=torch.bool)])
    return modes.long(), hq


def on_modes(held: list[int], n: int = N, k: int = K) -> tuple[torch.Tensor, torch.Tensor]:
    """n high-quality samples spread evenly over the modes in `held`."""
    counts = [0] * k
    for i in range(n):
        counts[held[i % len(held)]] += 1
    return hist_sample(counts)


def verdict(epochs, k: int = K, rule: CollapseRule = RULE):
    """(states, status) of a run whose evaluation at each epoch gives these (modes, hq) assignments."""
    metrics = [mode_metrics(m, hq, k, count_all=False) for m, hq in epochs]
    states = states_of([x["eval/spread"] for x in metrics], [x["eval/hq_fraction"] for x in metrics], rule)
    return states, collapse_status(states, rule)


ALL = list(range(K))


def test_all_mass_on_one_mode_is_collapsed_after_a_diverse_epoch():
    states, status = verdict([on_modes(ALL), on_modes([3]), on_modes([3]), on_modes([3])])
    assert states == [DIVERSE, COLLAPSED, COLLAPSED, COLLAPSED]
    assert status["collapsed"] == 1 and status["collapse_epoch"] == 2 and status["epochs_survived"] == 1


def test_uniform_over_all_modes_is_diverse_and_censored_at_the_last_confirmable_epoch():
    states, status = verdict([on_modes(ALL)] * 5)
    assert states == [DIVERSE] * 5
    assert status["collapsed"] == 0 and status["censor_epoch"] == 5 - RULE.patience + 1 == 4
    assert status["never_diverse"] == 0 and status["diverse_epochs"] == 5


def test_broad_blob_over_the_ring_has_too_few_good_samples_to_judge():
    gen = torch.Generator().manual_seed(0)
    angle, radius = torch.rand(N, generator=gen) * 2 * math.pi, 0.6 + 0.8 * torch.rand(N, generator=gen)
    blob = torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)  # covers the ring thinly
    modes, hq = assign_to_centers(blob, ring8_centers(), 0.01)
    assert float(hq.float().mean()) < 0.05  # a few percent are high quality
    states, status = verdict([(modes, hq)] * 4)
    assert states == [NOT_LEARNED] * 4 and status["collapsed"] == 0 and status["never_diverse"] == 1


def test_two_percent_good_samples_spread_evenly_is_not_diverse():
    modes, hq = hist_sample([N // 50 // K] * K, junk=N - N // 50)
    m = mode_metrics(modes, hq, K, count_all=False)
    assert m["eval/diversity"] == pytest.approx(1.0)  # the published metric alone would call it diverse
    states, status = verdict([(modes, hq)] * 3)
    assert states == [NOT_LEARNED] * 3 and status["never_diverse"] == 1


def test_mode_hopping_is_collapse():
    epochs = [on_modes(ALL)] + [on_modes([k]) for k in range(5)]  # one mode at a time, another each epoch
    states, status = verdict(epochs)
    assert states == [DIVERSE] + [COLLAPSED] * 5 and status["collapse_epoch"] == 2


def test_gradual_mode_loss_collapses_when_fewer_than_half_remain():
    epochs = [on_modes(list(range(k))) for k in range(8, 0, -1)]  # 8, 7, ..., 1 modes
    states, status = verdict(epochs)
    assert states == [DIVERSE] * 5 + [COLLAPSED] * 3  # 4 of 8 is not below 0.5; 3 of 8 is
    assert status["collapse_epoch"] == 6


def test_a_dip_shorter_than_the_patience_is_not_a_collapse():
    states, status = verdict([on_modes(ALL), on_modes([0]), on_modes(ALL), on_modes(ALL), on_modes([1])])
    assert states == [DIVERSE, COLLAPSED, DIVERSE, DIVERSE, COLLAPSED]
    assert status["collapsed"] == 0 and status["censor_epoch"] == 4


def test_quality_lost_after_being_judged_is_degraded_not_collapse():
    blur = hist_sample([10] * K, junk=N - 80)
    states, status = verdict([on_modes(ALL), blur, blur, blur])
    assert states == [DIVERSE, DEGRADED, DEGRADED, DEGRADED] and status["collapsed"] == 0


def test_collapse_before_any_diverse_epoch_is_never_diverse():
    states, status = verdict([on_modes([0])] * 4)
    assert states == [COLLAPSED] * 4 and status["collapsed"] == 0 and status["never_diverse"] == 1


def test_from_start_counts_a_generator_collapsed_as_soon_as_it_is_judged():
    rule = CollapseRule(threshold=0.5, patience=2, warmup=0, quality_floor=0.5, from_start=True)
    blur = hist_sample([10] * K, junk=N - 80)
    states, status = verdict([blur, on_modes([0]), on_modes([0, 1]), on_modes([0])], rule=rule)
    assert states == [NOT_LEARNED, COLLAPSED, COLLAPSED, COLLAPSED]
    assert status["collapse_epoch"] == 2 and status["epochs_survived"] == 1 and status["diverse_epochs"] == 0
    # blurry throughout is still never diverse, and no collapse: the quality floor, not from_start, decides that
    _, status = verdict([blur] * 4, rule=rule)
    assert status["collapsed"] == 0 and status["never_diverse"] == 1


def test_warmup_epochs_cannot_start_a_collapse():
    rule = CollapseRule(patience=1, warmup=2)
    states, status = verdict([on_modes(ALL), on_modes([0]), on_modes([0])], rule=rule)
    assert status["collapse_epoch"] == 3


@pytest.mark.parametrize("held, state", [(list(range(10)), DIVERSE), ([4], COLLAPSED), ([0, 2, 4, 6, 8], DIVERSE)])
def test_mnist_like_class_histograms(held, state):
    states, _ = verdict([on_modes(held, n=1000, k=10)], k=10)
    assert states == [state]


def test_five_of_ten_classes_is_a_partial_collapse_whose_verdict_is_the_threshold():
    five = [on_modes([0, 2, 4, 6, 8], n=1000, k=10)]
    assert verdict(five, k=10, rule=CollapseRule(threshold=0.6))[0] == [COLLAPSED]
    assert verdict(five, k=10, rule=CollapseRule(threshold=0.5))[0] == [DIVERSE]


def test_stacked_mnist_sample_size_is_checked():
    with pytest.raises(ValueError, match="cannot support a collapse verdict over 1000 modes"):
        check_sample_size(2000, 1000, 0.5)
    check_sample_size(26_000, 1000, 0.5)
    gen = torch.Generator().manual_seed(0)
    uniform = torch.randint(1000, (26_000,), generator=gen)  # a perfect generator, 26,000 samples
    m = mode_metrics(uniform, torch.ones(26_000, dtype=torch.bool), 1000, count_all=True, covered_needs_hq=False)
    assert m["eval/spread"] > 0.99 and m["eval/diversity"] > 0.97
    small = mode_metrics(uniform[:2000], torch.ones(2000, dtype=torch.bool), 1000, count_all=True)
    assert small["eval/diversity"] < 0.8  # why 2,000 samples are refused: a perfect generator scores ~0.75


def test_objective_cannot_be_gamed():
    e = 70
    never = collapse_status([NOT_LEARNED] * e, RULE, e)
    never_score = objective(never, [0.0] * e, [NOT_LEARNED] * e, e, diverged=False)
    sharp_never = collapse_status([COLLAPSED] * e, RULE, e)  # high quality, one mode from the start
    sharp_score = objective(sharp_never, [1.0] * e, [COLLAPSED] * e, e, diverged=False)
    late = [DIVERSE] * 67 + [COLLAPSED] * 3
    late_score = objective(collapse_status(late, RULE, e), [0.9] * e, late, e, diverged=False)
    one = [DIVERSE] + [COLLAPSED] * 69
    one_score = objective(collapse_status(one, RULE, e), [0.6] * e, one, e, diverged=False)
    full = [DIVERSE] * e
    full_score = objective(collapse_status(full, RULE, e), [0.9] * e, full, e, diverged=False)
    sharper = objective(collapse_status(full, RULE, e), [0.95] * e, full, e, diverged=False)
    diverged = objective(collapse_status(full[:30], RULE, e), [0.9] * 30, full[:30], e, diverged=True)
    assert never_score == 0.25 and sharp_score == 0.5
    assert diverged < never_score < sharp_score < one_score < late_score < full_score < sharper <= 2.0
