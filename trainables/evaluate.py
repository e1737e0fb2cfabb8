"""Per-epoch evaluation of a GAN run on a fixed latent batch: mode metrics for 2D mixtures and images."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from trainables.data import Dataset
from trainables.metrics.modes import assign_to_centers, mode_metrics


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
        if self.classifier is None:
            return assign_to_centers(x, self.data.centers.to(x.device), self.data.std)
        if self.data.name == "stacked_mnist":  # one MNIST digit per channel: mode = 100 d0 + 10 d1 + d2
            probs = [self._probs(x[:, c : c + 1]) for c in range(3)]
            conf = torch.stack([p.max(1).values for p in probs]).min(0).values
            digits = [p.argmax(1) for p in probs]
            return digits[0] * 100 + digits[1] * 10 + digits[2], conf >= self.hq_confidence
        probs = self._probs(x)
        return probs.argmax(1), probs.max(1).values >= self.hq_confidence

    def _probs(self, x: Tensor, chunk: int = 1000) -> Tensor:
        return torch.cat([self.classifier(x[i : i + chunk]).softmax(1) for i in range(0, len(x), chunk)])

    def score(self, samples: Tensor) -> dict[str, Any]:
        modes, hq = self.modes(samples)
        return mode_metrics(modes, hq, self.data.n_modes, count_all=self.data.kind == "images")
