"""Number of statistically Different Bins, NDB/K (Richardson and Weiss 2018), with a small seeded k-means.

The bins are fitted once per run on the real features (`NDBBins.fit`, k-means++ then Lloyd iterations) and
each evaluation only assigns the fakes to the nearest centre and runs one two-proportion z-test per bin.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from trainables.metrics.knn import as_points, rows_per_chunk, sq_distances


def nearest_centre(x: Tensor, centres: Tensor, chunk: int | None = None) -> Tensor:
    """Index of the nearest centre of each row, in chunks. (N, ...), (K, D) -> (N,)"""
    x, centres = as_points(x), centres.to(x.device).double()
    step, norms = rows_per_chunk(len(centres), chunk), centres.pow(2).sum(1)
    return torch.cat([sq_distances(x[i : i + step], centres, norms).argmin(dim=1) for i in range(0, len(x), step)])


def kmeans(x: Tensor, k: int = 100, iters: int = 10, seed: int = 0) -> Tensor:
    """Seeded k-means: k-means++ init, `iters` Lloyd steps, an empty cluster keeps its centre (Lloyd 1982)."""
    x = as_points(x)
    k = min(int(k), len(x))
    gen = torch.Generator().manual_seed(int(seed))  # CPU draws: the same centres on every device
    centres = [x[int(torch.randint(len(x), (1,), generator=gen))]]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):  # k-means++ (Arthur and Vassilvitskii 2007): next centre with probability ~ D(x)^2
        w = d2.cpu() if float(d2.sum()) > 0 else torch.ones(len(x), dtype=torch.float64)
        centres.append(x[int(torch.multinomial(w, 1, generator=gen))])
        d2 = torch.minimum(d2, ((x - centres[-1]) ** 2).sum(1))
    c = torch.stack(centres)
    for _ in range(iters):
        assign = nearest_centre(x, c)
        counts = torch.bincount(assign, minlength=k).unsqueeze(1)
        sums = torch.zeros_like(c).index_add_(0, assign, x)
        c = torch.where(counts > 0, sums / counts.clamp_min(1), c)
    return c


def different_bins(real_counts: Tensor, fake_counts: Tensor, alpha: float = 0.05) -> Tensor:
    """Two-proportion two-sided z-test per bin at level alpha (Richardson and Weiss 2018). (K,), (K,) -> (K,) bool"""
    n1, n2 = real_counts.sum().double(), fake_counts.sum().double()
    p1, p2 = real_counts.double() / n1, fake_counts.double() / n2
    p = (p1 * n1 + p2 * n2) / (n1 + n2)
    se = torch.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    z = (p1 - p2) / se  # 0/0 = nan in a bin empty in both: not significant
    p_value = 2.0 * torch.special.ndtr(-z.abs())
    return p_value < alpha


@dataclass
class NDBBins:
    """K-means bins fitted once on the real features; `score(fake)` -> {'eval/ndb': NDB / K}."""

    centres: Tensor  # (K, D) float64
    real_counts: Tensor  # (K,)
    alpha: float = 0.05

    @classmethod
    def fit(cls, real: Tensor, k: int = 100, seed: int = 0, iters: int = 10, alpha: float = 0.05) -> NDBBins:
        """Bins of `real` (Richardson and Weiss 2018): k-means centres and the real count per bin."""
        centres = kmeans(real, k, iters, seed)
        counts = torch.bincount(nearest_centre(real, centres), minlength=len(centres))
        return cls(centres, counts, alpha)

    def score(self, fake: Tensor) -> dict[str, float]:
        """NDB/K of `fake`: the fraction of bins whose share of fakes differs significantly from the real one."""
        counts = torch.bincount(nearest_centre(fake, self.centres), minlength=len(self.centres))
        diff = different_bins(self.real_counts.to(counts.device), counts, self.alpha)
        return {"eval/ndb": float(diff.sum()) / len(self.centres)}
