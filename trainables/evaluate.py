"""Per-epoch evaluation of a GAN run on a fixed latent batch (DESIGN.md, "What a trial measures").

Mode metrics for 2D mixtures and images; the extended evaluation adds model-free diversity in a feature
space (2D: the points; images: the mode classifier's penultimate features) against a fixed real subset drawn
once per run (PRDC, NDB, duplicate rate), and D diagnostics on fixed real probe points (local maxima, basin
width, forgetting). Everything fitted on the real data (radii, k-means bins, thresholds, probe points and
directions) is seeded by the data seed, so trials on the same data share one reference.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping

import torch
from torch import Tensor, nn

from trainables.data import Dataset
from trainables.metrics.duplicates import duplicate_rate, duplicate_threshold
from trainables.metrics.knn import kth_neighbour_distance, neighbour_distances
from trainables.metrics.modes import assign_to_centers, mode_metrics
from trainables.metrics.ndb import NDBBins
from trainables.metrics.prdc import prdc
from trainables.metrics.probes import ForgettingTracker, d_probes, probe_directions

MODE_KEYS = ("eval/modes_covered", "eval/hq_fraction", "eval/kl_to_uniform", "eval/diversity")
EXTENDED_KEYS = ("eval/precision", "eval/recall", "eval/density", "eval/coverage", "eval/ndb", "eval/duplicate_rate",
                 "eval/d_local_max_fraction", "eval/d_basin_width", "eval/forgetting")
EVAL_KEYS = MODE_KEYS + EXTENDED_KEYS
IMAGE_PROBE_RADIUS = 0.5  # length of the probed segment's half, for images in [-1, 1]


@contextlib.contextmanager
def batch_stats_frozen(module: nn.Module) -> Iterator[None]:
    """Sample in train mode (batch statistics, as in training) without touching BatchNorm running stats."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom


@contextlib.contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """`module` in eval mode (BatchNorm running stats, no power iterations) for the block, then as it was."""
    was = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was)


@torch.no_grad()
def generate(g: nn.Module, z: Tensor, chunk: int = 500) -> Tensor:
    """G(z) in chunks with batch statistics and frozen running stats. z (N, nz) -> (N, *shape)"""
    with batch_stats_frozen(g):
        return torch.cat([g(z[i : i + chunk]) for i in range(0, len(z), chunk)])


class ModeScorer:
    """Assigns generated samples to modes: nearest centre (2D) or the cached classifier's argmax (images)."""

    def __init__(self, data: Dataset, root: str | None, device: torch.device, hq_confidence: float = 0.9):
        self.data, self.device, self.hq_confidence = data, device, hq_confidence
        self.classifier, self.info = None, {}
        if data.kind == "images":
            from trainables.metrics.classifier import get_classifier

            base = "mnist" if data.name == "stacked_mnist" else data.name
            self.classifier, self.info = get_classifier(base, data.shape[-1], root=root, device=device)
            self.classifier.eval()

    @torch.no_grad()
    def modes(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(mode index, high quality) per sample. x (N, *shape) -> (N,), (N,)"""
        modes, hq, _ = self._classify(x)
        return modes, hq

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """The feature space of the diversity metrics: the points (2D) or the classifier's penultimate layer
        (images; stacked MNIST: the three channels' features side by side). x (N, *shape) -> (N, F)"""
        return self._classify(x)[2]

    @torch.no_grad()
    def _classify(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(mode, high quality, features) per sample."""
        if self.classifier is None:
            mode, hq = assign_to_centers(x, self.data.centers.to(x.device), self.data.std)
            return mode, hq, x.reshape(len(x), -1).float()
        if self.data.name == "stacked_mnist":  # one MNIST digit per channel: mode = 100 d0 + 10 d1 + d2
            probs, feats = zip(*(self._probs(x[:, c : c + 1]) for c in range(3)))
            conf = torch.stack([p.max(1).values for p in probs]).min(0).values
            digits = [p.argmax(1) for p in probs]
            return digits[0] * 100 + digits[1] * 10 + digits[2], conf >= self.hq_confidence, torch.cat(feats, 1)
        probs, feats = self._probs(x)
        return probs.argmax(1), probs.max(1).values >= self.hq_confidence, feats

    def _probs(self, x: Tensor, chunk: int = 1000) -> tuple[Tensor, Tensor]:
        """Class probabilities and penultimate features, in chunks. -> (N, 10), (N, 128)"""
        feats = torch.cat([self.classifier.features(x[i : i + chunk]) for i in range(0, len(x), chunk)])
        return self.classifier.head(feats).softmax(1), feats

    def score(self, samples: Tensor, diversity: "DiversityScorer | None" = None) -> dict[str, Any]:
        """Mode metrics of `samples`, plus the feature-space diversity metrics when `diversity` is given."""
        modes, hq, feats = self._classify(samples)
        out = mode_metrics(modes, hq, self.data.n_modes, count_all=self.data.kind == "images",
                           covered_needs_hq=self.data.name != "stacked_mnist")
        if diversity is not None:
            out.update(diversity.score(feats))
        return out


def real_subset(x: Tensor, n: int, seed: int) -> Tensor:
    """A fixed random subset of n real samples (seeded CPU permutation). (N, ...) -> (min(n, N), ...)"""
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(int(seed)))[: int(n)]
    return x[idx.to(x.device)]


class DiversityScorer:
    """PRDC, NDB and duplicate rate of generated features against real features fitted once (PROTOCOLS.md)."""

    def __init__(self, real: Tensor, ev: Mapping[str, Any], seed: int = 0) -> None:
        self.real, self.k = real, int(ev["k"])
        self.radii = kth_neighbour_distance(real, self.k) if ev["prdc"] else None
        self.bins = NDBBins.fit(real, int(ev["ndb_bins"]), seed) if ev["ndb"] else None
        self.threshold = duplicate_threshold(real) if ev["duplicates"] else None

    @torch.no_grad()
    def score(self, fake: Tensor) -> dict[str, float]:
        """The enabled eval/ diversity metrics of `fake` (N, F) in the same feature space as the real set."""
        out: dict[str, float] = {}
        knn = neighbour_distances(fake, self.k) if (self.radii is not None or self.threshold is not None) else None
        if self.radii is not None:
            out.update(prdc(self.real, fake, self.k, real_radii=self.radii, fake_radii=knn[:, self.k]))
        if self.bins is not None:
            out.update(self.bins.score(fake))
        if self.threshold is not None:
            out.update(duplicate_rate(fake, self.threshold, fake_nn=knn[:, 1]))
        return out


class DProbes:
    """D diagnostics on fixed real probe points and directions (background/002); `score(d)` each evaluation.

    Local maxima and basin width need an unpacked D (pack == 1) and are skipped otherwise; forgetting scores
    the probe set in packs of `pack` consecutive points, as D sees its inputs. D runs in eval mode.
    """

    def __init__(self, x: Tensor, radius: float, pack: int = 1, seed: int = 0, steps: int = 11) -> None:
        self.x, self.radius, self.pack, self.steps = x, float(radius), int(pack), int(steps)
        self.u = probe_directions(len(x), tuple(x.shape[1:]), seed).to(x.device, x.dtype)
        self.tracker = ForgettingTracker()

    @torch.no_grad()
    def d_scores(self, d: nn.Module) -> Tensor:
        """D's probability on the (packed) probe set. -> (len(x) // pack,)"""
        b = len(self.x) // self.pack * self.pack
        packed = self.x[:b].reshape(b // self.pack, self.pack * self.x.shape[1], *self.x.shape[2:])
        with eval_mode(d):
            return torch.sigmoid(d(packed).reshape(-1).float())

    def remember(self, d: nn.Module) -> None:
        """Keep D's current probe-set scores as the baseline of the next forgetting value."""
        self.tracker.update(self.d_scores(d))

    def score(self, d: nn.Module) -> dict[str, float]:
        """eval/d_local_max_fraction and eval/d_basin_width (unpacked D only) and eval/forgetting."""
        out: dict[str, float] = {}
        if self.pack == 1:
            with eval_mode(d):
                out.update(d_probes(d, self.x, self.u, self.radius, self.steps))
        out["eval/forgetting"] = self.tracker.update(self.d_scores(d))
        return out


def extended_keys(ev: Mapping[str, Any], pack: int = 1) -> set[str]:
    """The eval/ keys the extended evaluation reports under this `eval` config and D packing."""
    on = {"prdc": EXTENDED_KEYS[:4], "ndb": ("eval/ndb",), "duplicates": ("eval/duplicate_rate",),
          "probes": EXTENDED_KEYS[6:] if pack == 1 else ("eval/forgetting",)}
    return {key for flag, keys in on.items() if ev[flag] for key in keys}


def extended_scorers(data: Dataset, x: Tensor, scorer: ModeScorer, ev: Mapping[str, Any], seed: int,
                     pack: int = 1) -> tuple[DiversityScorer | None, DProbes | None]:
    """The extended evaluation's scorers from the `eval` config: both fitted on one fixed real subset."""
    real = real_subset(x, int(ev["n_samples"]), 20_000 + int(seed))
    wanted = ev["prdc"] or ev["ndb"] or ev["duplicates"]
    diversity = DiversityScorer(scorer.features(real), ev, seed) if wanted else None
    probes = None
    if ev["probes"]:
        radius = ev.get("probe_radius") or (3.0 * float(data.std) if data.kind == "points" else IMAGE_PROBE_RADIUS)
        probes = DProbes(real[: int(ev["probe_points"])], radius, pack, seed)
    return diversity, probes
