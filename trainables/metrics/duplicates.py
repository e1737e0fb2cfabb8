"""Duplicate rate: generated samples closer to another generated sample than real data would allow.

duplicate_rate = fraction of generated samples whose nearest generated neighbour is closer than the
`percentile`-th percentile (default 1st) of the real samples' nearest-neighbour distances, both sets of the
same size. Chosen so that an independent sample of the data distribution scores about percentile / 100
(0.01) and total collapse (every sample the same point) scores 1; larger = more duplicated. Strict "<".
"""
from __future__ import annotations

import torch
from torch import Tensor

from trainables.metrics.knn import kth_neighbour_distance

PERCENTILE = 1.0


def nn_distance(x: Tensor, chunk: int | None = None) -> Tensor:
    """Distance from each row to its nearest other row, chunked. (N, ...) -> (N,) float64"""
    return kth_neighbour_distance(x, 1, chunk)


def duplicate_threshold(real: Tensor, percentile: float = PERCENTILE, chunk: int | None = None) -> float:
    """The `percentile`-th percentile of the real nearest-neighbour distances (fitted once per run)."""
    return float(torch.quantile(nn_distance(real, chunk), percentile / 100.0))


def duplicate_rate(fake: Tensor, threshold: float, fake_nn: Tensor | None = None,
                   chunk: int | None = None) -> dict[str, float]:
    """Fraction of fakes whose nearest other fake is closer than `threshold` (total collapse -> 1).

    `fake_nn` (M,): the fakes' nearest-neighbour distances, when already computed (nn_distance(fake)).
    """
    nn = nn_distance(fake, chunk) if fake_nn is None else fake_nn
    return {"eval/duplicate_rate": float((nn < threshold).double().mean())}
