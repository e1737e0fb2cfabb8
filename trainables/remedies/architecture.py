"""Build-time changes to D: spectral normalisation and minibatch heads (discrimination, standard deviation)."""
from __future__ import annotations

import copy
from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from trainables.hooks import Remedy, params

_NORMED = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


@params
class SN:
    n_power_iterations: int = Field(1, ge=1, le=100)


@params
class Stddev:
    group: int = Field(4, ge=1)  # samples per group of the std (ProGAN: 4)


@params
class MBD:
    kernels: int = Field(100, ge=1)  # B in Salimans et al. 2016
    kernel_dim: int = Field(5, ge=1)  # C
    init_std: float = Field(0.05, gt=0.0)


def _spectral_norm(cfg: Any, p: SN, d: Any, data_shape: tuple[int, ...]) -> Any:
    """Spectral normalisation of every Linear/Conv weight of D (a decoder's aside: Discriminator.constrained), n power
    iterations per forward (Miyato et al. 2018)."""
    for m in list(d.constrained()):
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


def head_width(d: nn.Module, name: str) -> int:
    """The width of the features D's head reads (B, F) -> F; TypeError naming remedy `name` unless the head is a
    Linear."""
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
    """Append the minibatch standard deviation as one extra feature map (images) or feature (MLP): the std over
    each group of `group` samples, averaged over features and positions (Karras et al. 2018, ProGAN's
    minibatch_stddev_layer; the whole batch is one group when it does not split evenly)."""

    def __init__(self, group: int = 4, eps: float = 1e-8):
        super().__init__()
        self.group, self.eps = group, eps

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, C + 1, H, W); (B, F) -> (B, F + 1)
        g = self.group if self.group <= len(x) and len(x) % self.group == 0 else len(x)
        y = x.reshape(g, -1, *x.shape[1:])  # (G, B / G, ...): sample i is in group i mod (B / G)
        std = (y.var(dim=0, unbiased=False) + self.eps).sqrt().mean(dim=list(range(1, y.dim() - 1)))  # (B / G,)
        stat = std.repeat(g).view(len(x), *([1] * (x.dim() - 1))).expand(len(x), 1, *x.shape[2:])
        return torch.cat([x, stat], dim=1)


_LAYERS = (nn.Linear, nn.Conv2d)


def _widened(layer: nn.Module, init: Any) -> nn.Module:
    """A copy of D's hidden layer `layer` (Linear, Conv2d or Maxout) that takes one more input feature or channel,
    initialised with the model's init and spectrally normalised when `layer` was."""
    inner: Any = getattr(layer, "linear", layer)  # Maxout wraps a Linear
    if isinstance(inner, nn.Linear):
        new: nn.Module = nn.Linear(inner.in_features + 1, inner.out_features, bias=inner.bias is not None)
    else:
        new = nn.Conv2d(inner.in_channels + 1, inner.out_channels, inner.kernel_size, inner.stride, inner.padding,
                        bias=inner.bias is not None)
    if init is not None:
        init(new)
    if parametrize.is_parametrized(inner, "weight"):
        iterations = inner.parametrizations["weight"][0].n_power_iterations
        spectral_norm(new, n_power_iterations=int(iterations))
    if inner is layer:
        return new
    widened = copy.copy(layer)  # a Maxout: same units and pieces, the widened Linear inside
    widened._modules = dict(layer._modules, linear=new)
    return widened


def _mbd(cfg: Any, p: MBD, d: Any, data_shape: tuple[int, ...]) -> Any:
    width = head_width(d, "minibatch_discrimination")
    d.head = MinibatchDiscrimination(width, p.kernels, p.kernel_dim, p.init_std,
                                     _linear_like(d.head, width + p.kernels))
    return d


def _stddev(cfg: Any, p: Stddev, d: Any, data_shape: tuple[int, ...]) -> Any:
    """The stddev feature enters before D's last hidden layer, which takes one more input (Karras et al. 2018)."""
    layers = list(d.features)
    last = max(i for i, m in enumerate(layers) if isinstance(getattr(m, "linear", m), _LAYERS))
    layers[last : last + 1] = [MinibatchStddev(p.group), _widened(layers[last], d.init)]
    d.features = nn.Sequential(*layers)
    return d


REMEDIES: dict[str, Remedy] = {
    "spectral_norm": Remedy(
        doc="spectral normalisation of every D Linear/Conv weight, 1 power iteration (Miyato et al. 2018)",
        params=SN, wrap_d=_spectral_norm, conflicts=("weight_clipping",)),
    "minibatch_discrimination": Remedy(
        doc="minibatch discrimination on D's features, B=100 kernels of C=5, T ~ N(0, 0.05), before D's output "
            "layer (Salimans et al. 2016)",
        params=MBD, wrap_d=_mbd),
    "minibatch_stddev": Remedy(
        doc="minibatch standard deviation (groups of 4) as an extra feature map or feature before D's last hidden "
            "layer (Karras et al. 2018)",
        params=Stddev, wrap_d=_stddev),
}
