"""Discriminator diagnostics along random lines through real points (Gainetdinov 2023; docs/metrics.md).

f(k) = D(x + k u) for a unit direction u and k on `steps` points of [-r, r] (k = 0 the middle one), with D's
raw output. A real point x is a local maximum when f(0) exceeds f at both neighbouring steps by more than a
tolerance (1e-3 of the range of D over all probed points, so a flat D has no maxima). The basin of a maximum
is the interval around 0 on which f stays above half its depth on the line (f(0) - (f(0) - min f) / 2): a
sharp maximum (a D that memorised its point) has a narrow basin, a wide one pulls G's samples in from afar;
basin width = (k_r - k_l) / (2 r) in (0, 1], averaged over the maxima (0 when there are none).
`forgetting` compares D's rank-normalised scores (each probe point's rank among the probe set, in [0, 1]: the
same scale for every loss) between consecutive epochs, on the probe points whose mode G held robustly at the
earlier epoch: how much D changed its judgement of the regions G covered.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

DFn = Callable[[Tensor], Tensor]  # (B, *shape) -> (B,) raw D outputs


def probe_directions(n: int, shape: tuple[int, ...], seed: int = 0) -> Tensor:
    """n random unit directions, uniform on the sphere, from a seeded CPU generator. -> (n, *shape)"""
    u = torch.randn(n, *shape, generator=torch.Generator().manual_seed(int(seed)))
    return u / u.flatten(1).norm(dim=1).clamp_min(1e-12).view(n, *([1] * len(shape)))


def offsets(radius: float, steps: int = 11) -> Tensor:
    """The shifts k: `steps` (odd) evenly spaced points of [-radius, radius]. -> (steps,)"""
    if steps < 3 or steps % 2 == 0:
        raise ValueError(f"steps must be odd and >= 3, got {steps}")
    return torch.linspace(-radius, radius, steps)


@torch.no_grad()
def line_scores(d: DFn, x: Tensor, u: Tensor, radius: float, steps: int = 11) -> Tensor:
    """f[i, j] = D(x_i + k_j u_i), one batch per shift k_j. x, u (N, *shape) -> (N, steps)"""
    u = u.to(x.device, x.dtype)
    return torch.stack([d(x + float(k) * u).reshape(len(x)).float() for k in offsets(radius, steps)], dim=1)


def local_max_and_basin(f: Tensor, rel_tol: float = 1e-3) -> tuple[Tensor, Tensor]:
    """Per row of f (N, steps): is k = 0 a strict local maximum, and its basin width as a fraction of [-r, r]."""
    c = f.shape[1] // 2
    tol = rel_tol * float(f.max() - f.min()) + 1e-12
    peak = f[:, c]
    is_max = (peak - f[:, c - 1] > tol) & (peak - f[:, c + 1] > tol)
    half = peak - (peak - f.min(dim=1).values) / 2  # half the depth of the maximum on this line
    below = f <= half.unsqueeze(1)  # (N, S)
    idx = torch.arange(f.shape[1], device=f.device)
    right = torch.where(below & (idx > c), idx, f.shape[1] - 1).min(dim=1).values  # first half-depth step right
    left = torch.where(below & (idx < c), idx, 0).max(dim=1).values  # ... and left
    width = (right - left).float() / (f.shape[1] - 1)
    return is_max, torch.where(is_max, width, torch.zeros_like(width))


def d_probes(d: DFn, x: Tensor, u: Tensor, radius: float, steps: int = 11) -> dict[str, float]:
    """Fraction of real points that are strict local maxima of D, and the mean basin width of those maxima
    (0 with none) (Gainetdinov 2023)."""
    is_max, width = local_max_and_basin(line_scores(d, x, u, radius, steps))
    n_max = int(is_max.sum())
    return {"eval/d_local_max_fraction": float(is_max.float().mean()),
            "eval/d_basin_width": float(width.sum()) / n_max if n_max else 0.0}


def rank_scores(scores: Tensor) -> Tensor:
    """Each score's rank among the scores, scaled to [0, 1] (ties share their mean rank). (N,) -> (N,)"""
    order = scores.float().argsort(stable=True)
    ranks = torch.empty_like(order, dtype=torch.float64)
    ranks[order] = torch.arange(len(scores), dtype=torch.float64, device=scores.device)
    sorted_scores = scores.float()[order]
    _, inverse, counts = torch.unique_consecutive(sorted_scores, return_inverse=True, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    mean_rank = (starts + (counts - 1) / 2).double()
    ranks[order] = mean_rank[inverse]
    return (ranks / max(1, len(scores) - 1)).float()


def forgetting(previous: Tensor, current: Tensor, where: Tensor | None = None) -> float:
    """Mean absolute change of the rank-normalised scores between two evaluations, over `where` (all points
    when None); NaN when `where` selects none (Gainetdinov 2023)."""
    change = (current.float() - previous.float().to(current.device)).abs()
    if where is not None:
        change = change[where.to(change.device)]
    return float(change.mean()) if len(change) else float("nan")


class ForgettingTracker:
    """Keeps the previous evaluation's rank-normalised probe scores and which probe points lay in modes G held."""

    def __init__(self, previous: Tensor | None = None, held: Tensor | None = None) -> None:
        self.previous, self.held = previous, held

    def update(self, ranks: Tensor, held: Tensor | None = None) -> float:
        """Forgetting against the kept scores over the kept held points (0.0 on the first call), then keep these."""
        value = 0.0 if self.previous is None else forgetting(self.previous, ranks, self.held)
        self.previous = ranks.detach().cpu().clone()
        self.held = None if held is None else held.detach().cpu().clone()
        return value


class DProbes:
    """D diagnostics on fixed real probe points and directions, a registry scorer (trainables.metrics.registry).

    Local maxima and basin width need an unpacked D (pack == 1) and are skipped otherwise; forgetting scores
    the probe set as D sees it (in packs of `pack` consecutive points; a pack lies in a held mode when all its
    points do). `modes`: each probe point's mode. The caller puts D in eval mode.
    """

    def __init__(self, x: Tensor, radius: float, pack: int = 1, seed: int = 0, steps: int = 11,
                 modes: Tensor | None = None) -> None:
        self.x, self.radius, self.pack, self.steps = x, float(radius), int(pack), int(steps)
        self.u = probe_directions(len(x), tuple(x.shape[1:]), seed).to(x.device, x.dtype)
        self.modes = modes
        self.tracker = ForgettingTracker()

    def held_points(self, held_modes: Tensor | None) -> Tensor | None:
        """Which (packed) probe points lie in modes G held. held_modes (K,) bool -> (len(x) // pack,) bool"""
        if held_modes is None or self.modes is None:
            return None
        b = len(self.x) // self.pack * self.pack
        return held_modes.to(self.modes.device)[self.modes[:b]].reshape(-1, self.pack).all(dim=1)

    @torch.no_grad()
    def d_scores(self, d: DFn) -> Tensor:
        """D's raw output on the probe set as D sees it. -> (len(x) // pack,)"""
        return d(self.x[: len(self.x) // self.pack * self.pack]).reshape(-1).float()

    def remember(self, d: DFn, held_modes: Tensor | None = None) -> None:
        """Keep D's current probe-set scores (and the modes G holds) as the baseline of the next forgetting."""
        self.tracker.update(rank_scores(self.d_scores(d)), self.held_points(held_modes))

    def __call__(self, e: Any) -> dict[str, float]:
        """eval/d_local_max_fraction and eval/d_basin_width (unpacked D only) and eval/forgetting of e.d."""
        out: dict[str, float] = {}
        if self.pack == 1:
            out.update(d_probes(e.d, self.x, self.u, self.radius, self.steps))
        out["eval/forgetting"] = self.tracker.update(rank_scores(self.d_scores(e.d)), self.held_points(e.held))
        return out
