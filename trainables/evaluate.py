"""Per-epoch evaluation of a GAN run on a fixed latent batch (docs/metrics.md).

Mode metrics always (the dataset's own mode protocol, trainables.data.Modes); the metrics the config lists
in `eval.metrics` (trainables.metrics.registry) are fitted once per run on a fixed real subset drawn with the
data seed, so trials on the same data share one reference, and scored every `eval.extended_every` epochs.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from trainables.config import TrialConfig
from trainables.data import Dataset
from trainables.metrics.modes import held_modes, mode_histogram, mode_metrics
from trainables.metrics.registry import METRICS, Evaluation, Reference, Scorer


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
def generate(g: nn.Module, z: Tensor, chunk: int = 500, running: bool = False) -> Tensor:
    """G(z) in chunks with batch statistics and frozen running stats, or (`running`) in eval mode with the running
    statistics (eval.g_batchnorm). z (N, nz) -> (N, *shape)"""
    with eval_mode(g) if running else batch_stats_frozen(g):
        return torch.cat([g(z[i : i + chunk]) for i in range(0, len(z), chunk)])


class ModeScorer:
    """Assigns samples to modes with the dataset's mode protocol (loading its cached classifier, if any)."""

    def __init__(self, data: Dataset, root: str | None, device: torch.device, hq_confidence: float = 0.9):
        self.data, self.device, self.hq_confidence = data, device, hq_confidence
        self.classifier: Any = None
        self.info: dict[str, Any] = {}
        if data.modes.classifier is not None:
            from trainables.metrics.classifier import get_classifier

            self.classifier, self.info = get_classifier(data.modes.classifier, data.shape[-1], root=root, device=device)
            self.classifier.eval()

    @torch.no_grad()
    def classify(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(mode, high quality, features) per sample. x (N, *shape) -> (N,), (N,), (N, F)"""
        return self.data.modes.assign(x, self.data, self.classifier, self.hq_confidence)

    def modes(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(mode index, high quality) per sample. x (N, *shape) -> (N,), (N,)"""
        return self.classify(x)[:2]

    def features(self, x: Tensor) -> Tensor:
        """The feature space of the diversity metrics. x (N, *shape) -> (N, F)"""
        return self.classify(x)[2]

    def score(self, modes: Tensor, hq: Tensor) -> dict[str, float]:
        """The mode metrics of one evaluation's mode assignments."""
        m = self.data.modes
        return mode_metrics(modes, hq, self.data.n_modes, count_all=m.count_all, covered_needs_hq=m.covered_needs_hq)


def real_subset(x: Tensor, n: int, seed: int) -> Tensor:
    """A fixed random subset of n real samples (seeded CPU permutation). (N, ...) -> (min(n, N), ...)"""
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(int(seed)))[: int(n)]
    return x[idx.to(x.device)]


def reported_keys(cfg: TrialConfig) -> set[str]:
    """The eval/ keys the listed metrics report under this config (D packing drops the line probes)."""
    return {key for name in cfg.eval.metrics for key in METRICS[name].reported(cfg.pack)}


class Evaluator:
    """Mode metrics plus the listed registry metrics, fitted once on a fixed real subset of the data."""

    def __init__(self, cfg: TrialConfig, data: Dataset, x: Tensor, scorer: ModeScorer):
        self.scorer, self.k = scorer, cfg.eval.k
        real = real_subset(x, cfg.eval.n_samples, 20_000 + cfg.data.seed)
        radius = cfg.eval.probe_radius or data.modes.probe_radius
        modes, _, feats = scorer.classify(real)
        ref = Reference(real, feats, modes, cfg.eval, cfg.data.seed, cfg.pack, radius)
        self.metrics: dict[str, Scorer] = {name: METRICS[name].fit(ref) for name in cfg.eval.metrics}

    def score(self, samples: Tensor, d: Callable[[Tensor], Tensor], extended: bool) -> dict[str, float]:
        """Mode metrics of `samples`; with `extended`, every listed metric too (`d`: D as it sees its inputs)."""
        modes, hq, feats = self.scorer.classify(samples)
        out = self.scorer.score(modes, hq)
        held = held_modes(mode_histogram(modes, hq, self.scorer.data.n_modes))
        if extended:
            e = Evaluation(feats, d, self.k, held)
            for scorer in self.metrics.values():
                out.update(scorer(e))
        elif self.probes is not None:  # forgetting stays a change between consecutive epochs
            self.probes.remember(d, held)
        return out

    @property
    def probes(self) -> Any:
        """The D-probe scorer (its forgetting baseline is part of a run's state), or None."""
        return self.metrics.get("probes")
