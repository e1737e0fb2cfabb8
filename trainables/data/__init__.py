"""Dataset registry: short name -> loader returning the whole dataset as one tensor (batches are index draws).

Each dataset owns its mode protocol (`Modes`): how a sample is assigned to a mode and judged high quality,
so no code outside the dataset tests for a dataset's name.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from torch import Tensor

if TYPE_CHECKING:
    from trainables.config import DataConfig

# (samples (N, *shape), dataset, mode classifier or None, hq confidence)
#   -> (mode (N,), high quality (N,), features (N, F))
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


@dataclass(frozen=True)
class Entry:
    """A registered dataset: its loader (module under trainables.data, function; imported on first use) and
    its number of modes, known before loading (the collapse verdict's sample-size check needs it)."""

    module: str
    loader: str
    n_modes: int | Callable[[DataConfig], int]
    shape_keys: tuple[str, ...] = ()  # the data.* mixture-shape keys it takes (modes, radius, spacing, std)

    def modes_of(self, cfg: DataConfig) -> int:
        return self.n_modes(cfg) if callable(self.n_modes) else self.n_modes


DATASETS: dict[str, Entry] = {
    "ring8": Entry("mixtures", "ring8", 8),
    "grid25": Entry("mixtures", "grid25", 25),
    "ring": Entry("mixtures", "ring", lambda c: c.modes or 8, ("modes", "radius", "std")),
    "grid": Entry("mixtures", "grid", lambda c: (c.modes or 5) ** 2, ("modes", "spacing", "std")),
    "mnist": Entry("images", "mnist", 10),
    "fashion_mnist": Entry("images", "fashion_mnist", 10),
    "digits": Entry("images", "digits", 10),
    "stacked_mnist": Entry("images", "stacked_mnist", 1000),
}


def load_dataset(cfg: DataConfig | Mapping[str, Any]) -> Dataset:
    """Load the dataset a DataConfig (or a mapping of its keys) names, with its options."""
    from trainables.config import DataConfig

    cfg = cfg if isinstance(cfg, DataConfig) else DataConfig.model_validate(dict(cfg))
    entry = DATASETS[cfg.name]
    loader: Callable[[DataConfig], Dataset] = getattr(importlib.import_module(f"trainables.data.{entry.module}"),
                                                      entry.loader)
    return loader(cfg)
