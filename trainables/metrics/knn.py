"""Chunked nearest-neighbour distances on the tensors' device (shared by PRDC, NDB and the duplicate rate).

Distances are computed in float64 (torch.cdist, matrix-product form): in float32 that form leaves errors of
about 1e-3 of the feature norm, so exact copies would not be at distance ~0 (duplicate rate, coverage). No
function here holds more than `budget` distances at once (default 2**22, 32 MiB of float64).
"""
from __future__ import annotations

import torch
from torch import Tensor

BUDGET = 2**22  # distances per chunk


def as_points(x: Tensor) -> Tensor:
    """(N, ...) -> (N, D) float64 rows."""
    return x.reshape(len(x), -1).double()


def rows_per_chunk(n_cols: int, chunk: int | None = None, budget: int = BUDGET) -> int:
    """Rows per chunk so that a (rows, n_cols) block stays within `budget`; `chunk` overrides."""
    return int(chunk) if chunk else max(1, budget // max(1, n_cols))


def cdist64(a: Tensor, b: Tensor) -> Tensor:
    """Euclidean distances in float64. (n, D), (m, D) -> (n, m)"""
    return torch.cdist(as_points(a), as_points(b))


def kth_neighbour_distance(x: Tensor, k: int, chunk: int | None = None) -> Tensor:
    """Distance from each row to its k-th nearest other row (Kynkaanniemi et al. 2019; Naeem et al. 2020).

    As in `clovaai/generative-evaluation-prdc`: the (k+1)-th smallest distance with the row itself (distance 0)
    counted, i.e. topk(k + 1) including self. (N, ...) -> (N,) float64
    """
    x = as_points(x)
    if not 1 <= k < len(x):
        raise ValueError(f"k must be in [1, {len(x) - 1}] for {len(x)} samples, got {k}")
    step = rows_per_chunk(len(x), chunk)
    parts = [torch.cdist(x[i : i + step], x).topk(k + 1, dim=1, largest=False).values[:, k]
             for i in range(0, len(x), step)]
    return torch.cat(parts)
