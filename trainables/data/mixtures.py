"""2D Gaussian mixtures of the PacGAN / VEEGAN synthetic experiments (Lin et al. 2018; Srivastava et al. 2017):
`ring` (K modes on a circle) and `grid` (n x n modes) of any size, radius, spacing and std; `ring8` and
`grid25` are PacGAN's two as fixed presets."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from trainables.data import Dataset, Modes
from trainables.metrics.modes import assign_to_centers

if TYPE_CHECKING:
    from trainables.config import DataConfig


def nearest_centre(x: Tensor, data: Dataset, classifier: Any, hq_confidence: float) -> tuple[Tensor, Tensor, Tensor]:
    """Mode = nearest centre, high quality within 3 std of it (PacGAN); features = the points. x (N, 2)"""
    assert data.centers is not None and data.std is not None
    mode, hq = assign_to_centers(x, data.centers.to(x.device), data.std)
    return mode, hq, x.reshape(len(x), -1).float()


RING = {"modes": 8, "radius": 1.0, "std": 0.01}  # PacGAN's ring (and ring8)
GRID = {"modes": 5, "spacing": 2.0, "std": 0.05}  # PacGAN's grid: 5 x 5 (grid25)


def ring_centers(k: int = 8, radius: float = 1.0) -> Tensor:
    """k centres on the circle of `radius` at angles 2 pi i / k, i = 0..k-1. (k, 2)"""
    angles = torch.arange(k, dtype=torch.float64) * (2 * math.pi / k)
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()


def grid_centers(n: int = 5, spacing: float = 2.0) -> Tensor:
    """n x n centres `spacing` apart, centred on 0: {-4, -2, 0, 2, 4}^2 for n = 5, spacing 2. (n * n, 2)"""
    axis = (torch.arange(n, dtype=torch.float64) - (n - 1) / 2) * spacing
    return torch.cartesian_prod(axis, axis).float()


def ring8_centers() -> Tensor:
    """PacGAN's 8 centres on the unit circle. (8, 2)"""
    return ring_centers(8, 1.0)


def grid25_centers() -> Tensor:
    """PacGAN's 25 centres on {-4, -2, 0, 2, 4}^2. (25, 2)"""
    return grid_centers(5, 2.0)


def sample_mixture(centers: Tensor, std: float, n: int, gen: torch.Generator) -> Tensor:
    """n points from the equal-weight mixture of N(centre, std^2 I). (n, 2)"""
    idx = torch.randint(len(centers), (n,), generator=gen)
    return centers[idx] + std * torch.randn(n, 2, generator=gen)


def _mixture(name: str, centers: Tensor, std: float, cfg: DataConfig, **shape: float) -> Dataset:
    n = int(cfg.n_points or 100_000)
    gen = torch.Generator().manual_seed(int(cfg.seed or 0))
    x = sample_mixture(centers, std, n, gen)
    info = {"modes": len(centers), **shape, "n_points": n, "std": std, "data_seed": int(cfg.seed or 0)}
    modes = Modes(nearest_centre, None, count_all=False, covered_needs_hq=True, probe_radius=3.0 * std)
    return Dataset(name, x, "points", len(centers), modes, centers=centers, std=std, info=info)


def ring8(cfg: DataConfig) -> Dataset:
    """Ring of 8 Gaussians, std 0.01 (PacGAN synthetic config)."""
    return _mixture("ring8", ring8_centers(), 0.01, cfg)


def grid25(cfg: DataConfig) -> Dataset:
    """Grid of 25 Gaussians, std 0.05 (PacGAN; VEEGAN notebook)."""
    return _mixture("grid25", grid25_centers(), 0.05, cfg)


def ring(cfg: DataConfig) -> Dataset:
    """Ring of data.modes Gaussians (default 8) of radius data.radius (1) and std data.std (0.01)."""
    k, radius, std = cfg.modes or RING["modes"], cfg.radius or RING["radius"], cfg.std or RING["std"]
    return _mixture("ring", ring_centers(int(k), float(radius)), float(std), cfg, radius=float(radius))


def grid(cfg: DataConfig) -> Dataset:
    """Grid of data.modes x data.modes Gaussians (default 5 x 5), data.spacing (2) apart, std data.std (0.05)."""
    n, spacing, std = cfg.modes or GRID["modes"], cfg.spacing or GRID["spacing"], cfg.std or GRID["std"]
    return _mixture("grid", grid_centers(int(n), float(spacing)), float(std), cfg, spacing=float(spacing))
