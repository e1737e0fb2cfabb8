"""Build-time changes to D: spectral normalisation and minibatch heads (discrimination, standard deviation)."""
from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from trainables.hooks import NoParams, Remedy, params

_NORMED = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


@params
class SN:
    n_power_iterations: int = Field(1, ge=1, le=100)


@params
class MBD:
    kernels: int = Field(100, ge=1)  # B in Salimans et al. 2016
    kernel_dim: int = Field(5, ge=1)  # C
    init_std: float = Field(0.05, gt=0.0)


def _spectral_norm(cfg: Any, p: SN, d: Any) -> Any:
    """Spectral normalisation of every Linear/Conv weight of D, n power iterations per forward (Miyato et al. 2018)."""
    for m in list(d.modules()):
        if isinstance(m, _NORMED) and not parametrize.is_parametrized(m, "weight"):
            spectral_norm(m, n_power_iterations=p.n_power_iterations)
    return d


def _linear_like(old: nn.Module, d_in: int) -> nn.Linear:
    """A Linear(d_in, 1) head replacing `old`, spectrally normalised when `old` was (remedy order does not matter)."""
    new = nn.Linear(d_in, 1)
    if isinstance(old, nn.Linear) and parametrize.is_parametrized(old, "weight"):
        iterations = old.parametrizations["weight"][0].n_power_iterations  # type: ignore[index,union-attr]
        spectral_norm(new, n_power_iterations=int(iterations))
    return new


def _head_width(d: nn.Module, name: str) -> int:
    if not isinstance(d.head, nn.Linear):
        raise TypeError(f"{name}: expects D.head to be a Linear, got {type(d.head).__name__}")
    return d.head.in_features


class MinibatchDiscrimination(nn.Module):
    """o_b(i) = sum_{j != i} exp(-||M_ib - M_jb||_1), M = f T, appended to f; then linear (Salimans et al. 2016)."""

    def __init__(self, d_in: int, kernels: int, kernel_dim: int, init_std: float, linear: nn.Linear):
        super().__init__()
        self.kernels, self.kernel_dim = kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(d_in, kernels * kernel_dim) * init_std)
        self.linear = linear

    def forward(self, f: Tensor) -> Tensor:  # (B, A) -> (B, 1)
        m = (f @ self.T).view(-1, self.kernels, self.kernel_dim)  # (B, kernels, C)
        l1 = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(dim=3)  # (B, B, kernels)
        o = torch.exp(-l1).sum(dim=1) - 1.0  # drop j == i, where exp(0) = 1
        return self.linear(torch.cat([f, o], dim=1))


class MinibatchStddev(nn.Module):
    """Append the mean over features of the batch std as one extra feature, then linear (Karras et al. 2018)."""

    def __init__(self, linear: nn.Linear, eps: float = 1e-8):
        super().__init__()
        self.linear, self.eps = linear, eps

    def forward(self, f: Tensor) -> Tensor:  # (B, F) -> (B, 1)
        std = (f.var(dim=0, unbiased=False) + self.eps).sqrt().mean()
        return self.linear(torch.cat([f, std.expand(len(f), 1)], dim=1))


def _mbd(cfg: Any, p: MBD, d: Any) -> Any:
    width = _head_width(d, "minibatch_discrimination")
    d.head = MinibatchDiscrimination(width, p.kernels, p.kernel_dim, p.init_std,
                                     _linear_like(d.head, width + p.kernels))
    return d


def _stddev(cfg: Any, p: NoParams, d: Any) -> Any:
    width = _head_width(d, "minibatch_stddev")
    d.head = MinibatchStddev(_linear_like(d.head, width + 1))
    return d


_HEADS = "both replace D's head"
REMEDIES: dict[str, Remedy] = {
    "spectral_norm": Remedy(
        doc="spectral normalisation of every D Linear/Conv weight, 1 power iteration (Miyato et al. 2018)",
        params=SN, wrap_d=_spectral_norm, conflicts=("weight_clipping",)),
    "minibatch_discrimination": Remedy(
        doc=f"minibatch discrimination on D's features, B=100 kernels of C=5, T ~ N(0, 0.05) (Salimans et al. "
            f"2016); not with minibatch_stddev: {_HEADS}",
        params=MBD, wrap_d=_mbd, conflicts=("minibatch_stddev",)),
    "minibatch_stddev": Remedy(
        doc=f"minibatch standard deviation appended to D's features (Karras et al. 2018); not with "
            f"minibatch_discrimination: {_HEADS}",
        wrap_d=_stddev, conflicts=("minibatch_discrimination",)),
}
