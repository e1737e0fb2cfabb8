"""Precision and recall (Kynkaanniemi et al. 2019), density and coverage (Naeem et al. 2020), chunked.

Definitions and the strict inequality follow `clovaai/generative-evaluation-prdc` (docs/metrics.md): the real
manifold is the union of balls B(x_i, NND_k(x_i)) with NND_k the distance to the k-th nearest other real
sample; the fake manifold likewise. Only (chunk, N) blocks of distances exist at any time.
"""
from __future__ import annotations

import torch
from torch import Tensor

from trainables.metrics.knn import (
    as_points,
    block,
    kth_neighbour_distance,
    less_than,
    rounding_bound,
    rows_per_chunk,
    sq_distances,
    workspace,
)


def prdc(real: Tensor, fake: Tensor, k: int = 5, real_radii: Tensor | None = None,
         fake_radii: Tensor | None = None, chunk: int | None = None) -> dict[str, float]:
    """Precision, recall, density, coverage of `fake` against `real` in a feature space (Naeem et al. 2020).

    real (N, ...), fake (M, ...): points or features. `real_radii` (N,): the cached NND_k of `real`
    (kth_neighbour_distance(real, k)), fitted once per run; `fake_radii` likewise, when already computed.
    `chunk`: rows per block (default: a budget of distances).
    """
    real, fake = as_points(real), as_points(fake).to(real.device)
    r_real = kth_neighbour_distance(real, k, chunk) if real_radii is None else real_radii.to(real.device).double()
    r_fake = kth_neighbour_distance(fake, k, chunk) if fake_radii is None else fake_radii.to(real.device).double()
    n, m = len(real), len(fake)
    in_real = torch.zeros((), dtype=torch.long, device=real.device)  # fakes inside the real manifold
    in_balls = torch.zeros((), dtype=torch.long, device=real.device)  # (fake, real ball) memberships
    covered = torch.zeros(n, dtype=torch.bool, device=real.device)  # real balls holding a fake
    recalled = torch.zeros(n, dtype=torch.bool, device=real.device)  # reals inside the fake manifold
    step, norms, tol = rows_per_chunk(n, chunk), real.pow(2).sum(1), rounding_bound(fake, real)
    buf, work = block(min(step, m), n, real), workspace(min(step, m), n, real)
    for i in range(0, m, step):
        rows = fake[i : i + step]
        d2 = sq_distances(rows, real, norms, out=buf)  # (c, N); decided exactly near the radii
        inside = less_than(d2, rows, real, r_real.unsqueeze(0), tol, work)  # fake j in real ball i
        in_real += inside.any(dim=1).sum()
        in_balls += inside.sum()
        covered |= inside.any(dim=0)
        recalled |= less_than(d2, rows, real, r_fake[i : i + step].unsqueeze(1), tol, work).any(dim=0)
    return {
        "eval/precision": float(in_real) / m,
        "eval/recall": float(recalled.sum()) / n,
        "eval/density": float(in_balls) / (k * m),
        "eval/coverage": float(covered.sum()) / n,
    }
