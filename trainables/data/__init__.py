"""Dataset registry: short name -> loader returning the whole dataset as one tensor (batches are index draws).

Each dataset owns its mode protocol (`Modes`): how a sample is assigned to a mode and judged high quality,
so no code outside the dataset tests for a dataset's name.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from torch import Tensor

if TYPE_CHECKING:
    from trainables.config import DataConfig

# (samples (N, *shape), dataset, mode classifier or None, hq confidence) -> (mode (N,), high quality (N,), features (N, F))
Assign = Callable[[Tensor, "Dataset", Any, float], "tuple[Tensor, Tensor, Tensor]"]


@dataclass(frozen=True)
class Modes:
    """A dataset's mode protocol (docs/metrics.md).

    assign: mode, high quality and feature vector of each sample.
    classifier: the dataset whose cached mode classifier `assign` uses (None: no classifier).
    count_all: the mode histogram counts every sample (images) or only the high-quality ones (2D mixtures).
    covered_needs_hq: a mode is covered by a high-quality sample (PacGAN 2D, VEEGAN) or by any (stacked MNIST).
    probe_radius: default half-length of the D probes' lines, in data units.
    """

    assign: Assign
    classifier: str | None
    count_all: bool
    covered_needs_hq: bool
    probe_radius: float


@dataclass(frozen=True)
class Dataset:
    """A dataset held in memory. `x`: (N, 2) points or (N, C, H, W) images in [-1, 1]."""

    name: str
    x: Tensor
    kind: str  # "points" (2D mixtures: modes are the centres) or "images" (modes from a cached classifier)
    n_modes: int
    modes: Modes
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


def load_dataset(cfg: DataConfig | Mapping[str, Any]) -> Dataset:
    """Load the dataset a DataConfig (or a mapping of its keys) names, with its options."""
    from trainables.config import DataConfig

    cfg = cfg if isinstance(cfg, DataConfig) else DataConfig.model_validate(dict(cfg))
    module, func = DATASETS[cfg.name]
    loader: Callable[[DataConfig], Dataset] = getattr(importlib.import_module(f"trainables.data.{module}"), func)
    return loader(cfg)
