"""Chunked nearest-neighbour distances and ball memberships on the tensors' device (PRDC, NDB, duplicates).

Squared distances come from one float64 matrix product per block (|a|^2 + |b|^2 - 2 a.b), and every
decision that its rounding could flip is made on the exact distance, `pair_distance` (the square root of
the sum of squared differences: symmetric, and the same whatever the chunking). It ranks the k + 3 nearest
candidates of each row and decides the pairs within the rounding bound of a ball's radius. So results do
not depend on the chunk size, and a copy of a sample lies at exactly the sample's distance (the strict
inequality of the PRDC balls then holds exactly). Blocks hold at most `budget` distances (default 2**22,
32 MiB of float64); a call allocates its few blocks once and reuses them for every chunk.
"""
from __future__ import annotations

import torch
from torch import Tensor

BUDGET = 2**22  # distances per chunk
EPS = torch.finfo(torch.float64).eps


def as_points(x: Tensor) -> Tensor:
    """(N, ...) -> (N, D) float64 rows."""
    return x.reshape(len(x), -1).double()


def rows_per_chunk(n_cols: int, chunk: int | None = None, budget: int = BUDGET) -> int:
    """Rows per chunk so that a (rows, n_cols) block stays within `budget`; `chunk` overrides."""
    return int(chunk) if chunk else max(1, budget // max(1, n_cols))


def pair_distance(a: Tensor, b: Tensor) -> Tensor:
    """Exact Euclidean distance between paired rows, broadcasting. (..., D), (..., D) -> (...)"""
    return (a - b).pow(2).sum(-1).sqrt()


def sq_distances(a: Tensor, b: Tensor, nb: Tensor | None = None, out: Tensor | None = None) -> Tensor:
    """Approximate squared distances |a|^2 + |b|^2 - 2 a.b (one matrix product). (n, D), (m, D) -> (n, m)

    `nb`: the rows' squared norms of b, when cached; `out`: a (>= n, m) float64 buffer to write into.
    """
    nb = b.pow(2).sum(1) if nb is None else nb
    d2 = torch.add(a.pow(2).sum(1).unsqueeze(1), nb.unsqueeze(0), out=None if out is None else out[: len(a)])
    return d2.addmm_(a, b.T, alpha=-2.0).clamp_min_(0)


def rounding_bound(a: Tensor, b: Tensor) -> float:
    """A bound on the error of `sq_distances(a, b)`: 4 D eps (max|a|^2 + max|b|^2 + 1) (Higham 2002, 3.1)."""
    return 4 * a.shape[1] * EPS * float(a.pow(2).sum(1).max() + b.pow(2).sum(1).max() + 1)


def block(rows: int, cols: int, like: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """A (rows, cols) buffer reused by every chunk of one call: a fixed few allocations per call, so repeated
    blocks do not fragment the C heap (glibc's dynamic mmap threshold would otherwise leave growing holes)."""
    return torch.empty(rows, cols, dtype=dtype, device=like.device)


def less_than(d2: Tensor, a: Tensor, b: Tensor, r: Tensor, tol: float,
              work: tuple[Tensor, Tensor, Tensor] | None = None) -> Tensor:
    """Exact dist(a_i, b_j) < r_ij, given d2 = sq_distances(a, b) and its rounding bound `tol`.

    r broadcasts to (n, m). Pairs whose d2 lies within `tol` of r^2 are recomputed with `pair_distance`;
    every other pair is decided by d2. `work`: (float64, bool, bool) buffers of >= (n, m) for the result and
    the band test (the result is a view of work[1]). -> (n, m) bool
    """
    gap_buf, out_buf, near_buf = (None, None, None) if work is None else (w[: len(d2)] for w in work)
    r2 = r * r
    out = torch.lt(d2, r2, out=out_buf)
    near = torch.le(torch.sub(d2, r2, out=gap_buf).abs_(), tol, out=near_buf).nonzero(as_tuple=True)
    if len(near[0]):
        out[near] = pair_distance(a[near[0]], b[near[1]]) < r.expand_as(d2)[near]
    return out


def workspace(rows: int, cols: int, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Buffers for `less_than` on blocks of up to (rows, cols)."""
    return block(rows, cols, like), block(rows, cols, like, torch.bool), block(rows, cols, like, torch.bool)


def neighbour_distances(x: Tensor, k: int, chunk: int | None = None) -> Tensor:
    """Exact sorted distances from each row to its k + 1 nearest rows, itself (0) first. (N, ...) -> (N, k + 1)

    Candidates are the k + 3 nearest by approximate distance; they are then ranked by exact distance.
    """
    x = as_points(x)
    if not 1 <= k < len(x):
        raise ValueError(f"k must be in [1, {len(x) - 1}] for {len(x)} samples, got {k}")
    norms, step, m = x.pow(2).sum(1), rows_per_chunk(len(x), chunk), min(len(x), k + 3)
    buf, parts = block(min(step, len(x)), len(x), x), []
    for i in range(0, len(x), step):
        rows = x[i : i + step]
        idx = sq_distances(rows, x, norms, out=buf).topk(m, dim=1, largest=False).indices  # (c, m)
        parts.append(pair_distance(rows.unsqueeze(1), x[idx]).sort(dim=1).values[:, : k + 1])
    return torch.cat(parts)


def kth_neighbour_distance(x: Tensor, k: int, chunk: int | None = None) -> Tensor:
    """Distance from each row to its k-th nearest other row (Kynkaanniemi et al. 2019; Naeem et al. 2020).

    As in `clovaai/generative-evaluation-prdc`: the (k+1)-th smallest distance with the row itself (distance 0)
    counted, i.e. topk(k + 1) including self. (N, ...) -> (N,) float64
    """
    return neighbour_distances(x, k, chunk)[:, k]
