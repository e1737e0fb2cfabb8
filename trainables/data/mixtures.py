"""2D Gaussian mixtures of the PacGAN / VEEGAN synthetic experiments (Lin et al. 2018; Srivastava et al. 2017)."""
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


def ring8_centers() -> Tensor:
    """8 centres on the unit circle at angles linspace(0, 2 pi, 8, endpoint=False). (8, 2)"""
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return torch.stack([angles.cos(), angles.sin()], dim=1).float()


def grid25_centers() -> Tensor:
    """25 centres on {-4, -2, 0, 2, 4}^2. (25, 2)"""
    axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    return torch.cartesian_prod(axis, axis)


def sample_mixture(centers: Tensor, std: float, n: int, gen: torch.Generator) -> Tensor:
    """n points from the equal-weight mixture of N(centre, std^2 I). (n, 2)"""
    idx = torch.randint(len(centers), (n,), generator=gen)
    return centers[idx] + std * torch.randn(n, 2, generator=gen)


def _mixture(name: str, centers: Tensor, std: float, cfg: DataConfig) -> Dataset:
    n = int(cfg.n_points or 100_000)
    gen = torch.Generator().manual_seed(int(cfg.seed or 0))
    x = sample_mixture(centers, std, n, gen)
    info = {"n_points": n, "std": std, "data_seed": int(cfg.seed or 0)}
    modes = Modes(nearest_centre, None, count_all=False, covered_needs_hq=True, probe_radius=3.0 * std)
    return Dataset(name, x, "points", len(centers), modes, centers=centers, std=std, info=info)


def ring8(cfg: DataConfig) -> Dataset:
    """Ring of 8 Gaussians, std 0.01 (PacGAN synthetic config)."""
    return _mixture("ring8", ring8_centers(), 0.01, cfg)


def grid25(cfg: DataConfig) -> Dataset:
    """Grid of 25 Gaussians, std 0.05 (PacGAN; VEEGAN notebook)."""
    return _mixture("grid25", grid25_centers(), 0.05, cfg)
