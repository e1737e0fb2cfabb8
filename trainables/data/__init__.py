"""Dataset registry: short name -> loader returning the whole dataset as one tensor (batches are index draws)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from torch import Tensor


@dataclass(frozen=True)
class Dataset:
    """A dataset held in memory. `x`: (N, 2) points or (N, C, H, W) images in [-1, 1]."""

    name: str
    x: Tensor
    kind: str  # "points" (2D mixtures: modes are the centres) or "images" (modes from a cached classifier)
    n_modes: int
    centers: Tensor | None = None  # (K, 2) for mixtures
    std: float | None = None  # mixture component std
    labels: Tensor | None = None  # (N,) class labels for images
    info: Mapping[str, Any] | None = None  # preprocessing and provenance, logged with the trial

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])


# name -> (module under trainables.data, loader function); modules are imported on first use
DATASETS: dict[str, tuple[str, str]] = {
    "ring8": ("mixtures", "ring8"),
    "grid25": ("mixtures", "grid25"),
    "mnist": ("images", "mnist"),
    "fashion_mnist": ("images", "fashion_mnist"),
    "digits": ("images", "digits"),
    "stacked_mnist": ("images", "stacked_mnist"),
}


def load_dataset(cfg: Mapping[str, Any]) -> Dataset:
    """Load `cfg['name']` with the rest of `cfg` (root, image_size, subset, ...) as options."""
    if cfg["name"] not in DATASETS:
        raise KeyError(f"unknown dataset {cfg['name']!r}; known: {', '.join(sorted(DATASETS))}")
    module, func = DATASETS[cfg["name"]]
    loader: Callable[[Mapping[str, Any]], Dataset] = getattr(importlib.import_module(f"trainables.data.{module}"), func)
    return loader(cfg)
