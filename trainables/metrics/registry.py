"""Metric registry: short name -> what it reports and how it is fitted once per run (docs/metrics.md).

Adding a metric is one `fit_*` function plus one line in METRICS; a spec lists the metrics it wants in
`eval.metrics`. A fit function gets the run's fixed real reference (`Reference`) and returns a scorer that
maps one evaluation (`Evaluation`: G's samples in the feature space, and D as it sees its inputs) to
{eval/<key>: value}. The mode metrics (trainables.metrics.modes) are always reported.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from torch import Tensor

from trainables.metrics.duplicates import duplicate_rate, duplicate_threshold
from trainables.metrics.knn import kth_neighbour_distance, neighbour_distances
from trainables.metrics.ndb import NDBBins
from trainables.metrics.prdc import prdc
from trainables.metrics.probes import DProbes

MODE_KEYS = ("eval/modes_covered", "eval/hq_fraction", "eval/kl_to_uniform", "eval/diversity", "eval/hq_count",
             "eval/modes_robust", "eval/spread", "eval/modes_with_mass")


@dataclass(frozen=True)
class Reference:
    """What a metric is fitted on, once per run: fixed real samples, their features, the eval config."""

    real: Tensor  # (N, *shape) real samples on the run's device
    features: Tensor  # (N, F) their features (2D: the points; images: the mode classifier's features)
    modes: Tensor  # (N,) their modes
    ev: Any  # trainables.config.EvalConfig
    seed: int  # the data seed: every fitted reference is shared by the trials on the same data
    pack: int  # samples per D input
    probe_radius: float  # half-length of the D probes' lines


class Evaluation:
    """One evaluation: G's samples' features and D's view; shared work (fake k-NN) is computed once."""

    def __init__(self, features: Tensor, d: Callable[[Tensor], Tensor], k: int, held: Tensor | None = None):
        self.features, self.d, self.k, self.held = features, d, k, held  # held: (K,) modes G holds robustly

    @cached_property
    def fake_knn(self) -> Tensor:
        """Distances of each fake sample to its k nearest fake neighbours, itself first. (N, k + 1)"""
        return neighbour_distances(self.features, self.k)


Scorer = Callable[[Evaluation], dict[str, float]]


@dataclass(frozen=True)
class Metric:
    """A registered metric: its doc (with the paper), the keys it reports (`packed_keys` when D is packed)."""

    doc: str
    keys: tuple[str, ...]
    fit: Callable[[Reference], Scorer]
    packed_keys: tuple[str, ...] | None = None

    def reported(self, pack: int) -> tuple[str, ...]:
        return self.keys if pack == 1 or self.packed_keys is None else self.packed_keys


def fit_prdc(ref: Reference) -> Scorer:
    """Precision, recall, density, coverage (Naeem et al. 2020) against the fixed real features."""
    k = ref.ev.k
    radii = kth_neighbour_distance(ref.features, k)
    return lambda e: prdc(ref.features, e.features, k, real_radii=radii, fake_radii=e.fake_knn[:, k])


def fit_ndb(ref: Reference) -> Scorer:
    """NDB / K: share of k-means bins whose frequencies differ (Richardson and Weiss 2018)."""
    bins = NDBBins.fit(ref.features, ref.ev.ndb_bins, ref.seed)
    return lambda e: bins.score(e.features)


def fit_duplicates(ref: Reference) -> Scorer:
    """Share of samples closer to another sample than real data's nearest neighbours allow."""
    threshold = duplicate_threshold(ref.features)
    return lambda e: duplicate_rate(e.features, threshold, fake_nn=e.fake_knn[:, 1])


def fit_probes(ref: Reference) -> Scorer:
    """D's local maxima, basin width and forgetting on fixed real probe points (Gainetdinov 2023)."""
    n = ref.ev.probe_points
    return DProbes(ref.real[:n], ref.probe_radius, ref.pack, ref.seed, modes=ref.modes[:n])


METRICS: dict[str, Metric] = {
    "prdc": Metric(fit_prdc.__doc__ or "", ("eval/precision", "eval/recall", "eval/density", "eval/coverage"),
                   fit_prdc),
    "ndb": Metric(fit_ndb.__doc__ or "", ("eval/ndb",), fit_ndb),
    "duplicates": Metric(fit_duplicates.__doc__ or "", ("eval/duplicate_rate",), fit_duplicates),
    "probes": Metric(fit_probes.__doc__ or "", ("eval/d_local_max_fraction", "eval/d_basin_width", "eval/forgetting"),
                     fit_probes, packed_keys=("eval/forgetting",)),
}


def metric_keys() -> tuple[str, ...]:
    """Every eval/ key the platform can report: mode keys, then each registered metric's."""
    return MODE_KEYS + tuple(k for m in METRICS.values() for k in m.keys)


def metric_of(key: str) -> str | None:
    """The registered metric that reports `key` (None for a mode key or another namespace)."""
    return next((name for name, m in METRICS.items() if key in m.keys), None)
