"""Discriminator diagnostics along random lines through real points (Gainetdinov 2023; docs/metrics.md).

f(k) = D(x + k u) for a unit direction u and k on `steps` points of [-r, r] (k = 0 the middle one), with D's
raw output (logit or critic value: a monotone map of D's probability, without the ties that saturated
probabilities would make). A real point x is a local maximum when f(0) >= f at both neighbouring steps.
Its basin is the widest interval [k_l, k_r] around 0 on which f is non-increasing moving away from 0 (from
the maximum down); basin width = (k_r - k_l) / (2 r), in [0, 1], and 0 for a point that is not a local
maximum (it has no basin). Sharp maxima (an overfitted D) give narrow basins, wide ones pull G's samples in.
`forgetting` = mean |change| of D's probability on a fixed probe set between consecutive evaluations.
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


def _run_length(nonincreasing: Tensor) -> Tensor:
    """Length of the leading run of True per row. (N, S) bool -> (N,)"""
    return nonincreasing.long().cumprod(dim=1).sum(dim=1)


def local_max_and_basin(f: Tensor) -> tuple[Tensor, Tensor]:
    """Per row of f (N, steps): is k = 0 a local maximum, and the basin width as a fraction of [-r, r]."""
    c = f.shape[1] // 2
    right = _run_length(f[:, c + 1 :] <= f[:, c:-1])  # f non-increasing going right from 0
    left = _run_length(f[:, :c].flip(1) <= f[:, 1 : c + 1].flip(1))  # ... and going left
    is_max = (right >= 1) & (left >= 1)
    width = torch.where(is_max, (left + right).float() / (f.shape[1] - 1), torch.zeros_like(f[:, 0]))
    return is_max, width


def d_probes(d: DFn, x: Tensor, u: Tensor, radius: float, steps: int = 11) -> dict[str, float]:
    """Fraction of real points that are local maxima of D, and the mean basin width (Gainetdinov 2023)."""
    is_max, width = local_max_and_basin(line_scores(d, x, u, radius, steps))
    return {"eval/d_local_max_fraction": float(is_max.float().mean()), "eval/d_basin_width": float(width.mean())}


def forgetting(previous: Tensor, current: Tensor) -> float:
    """Mean absolute change of D's score on the same probe set between two evaluations (Gainetdinov 2023)."""
    return float((current.float() - previous.float().to(current.device)).abs().mean())


class ForgettingTracker:
    """Keeps D's previous probe-set scores; `update(scores)` returns the forgetting since the last call."""

    def __init__(self, previous: Tensor | None = None) -> None:
        self.previous = previous

    def update(self, scores: Tensor) -> float:
        """Forgetting against the kept scores (0.0 on the first call), then keep `scores`."""
        value = 0.0 if self.previous is None else forgetting(self.previous, scores)
        self.previous = scores.detach().cpu().clone()
        return value


class DProbes:
    """D diagnostics on fixed real probe points and directions, a registry scorer (trainables.metrics.registry).

    Local maxima and basin width need an unpacked D (pack == 1) and are skipped otherwise; forgetting scores
    the probe set as D sees it (in packs of `pack` consecutive points). The caller puts D in eval mode.
    """

    def __init__(self, x: Tensor, radius: float, pack: int = 1, seed: int = 0, steps: int = 11) -> None:
        self.x, self.radius, self.pack, self.steps = x, float(radius), int(pack), int(steps)
        self.u = probe_directions(len(x), tuple(x.shape[1:]), seed).to(x.device, x.dtype)
        self.tracker = ForgettingTracker()

    @torch.no_grad()
    def d_scores(self, d: DFn) -> Tensor:
        """D's probability on the probe set as D sees it. -> (len(x) // pack,)"""
        return torch.sigmoid(d(self.x[: len(self.x) // self.pack * self.pack]).reshape(-1).float())

    def remember(self, d: DFn) -> None:
        """Keep D's current probe-set scores as the baseline of the next forgetting value."""
        self.tracker.update(self.d_scores(d))

    def __call__(self, e: Any) -> dict[str, float]:
        """eval/d_local_max_fraction and eval/d_basin_width (unpacked D only) and eval/forgetting of e.d."""
        out: dict[str, float] = {}
        if self.pack == 1:
            out.update(d_probes(e.d, self.x, self.u, self.radius, self.steps))
        out["eval/forgetting"] = self.tracker.update(self.d_scores(e.d))
        return out
