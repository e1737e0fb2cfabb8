"""MLP G and maxout D for 2D mixtures; defaults are PacGAN's synthetic setup (Lin et al. 2018)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn


class Maxout(nn.Module):
    """Maxout layer (Goodfellow et al. 2013): Linear to units x pieces, max over pieces. (B, in) -> (B, units)."""

    def __init__(self, d_in: int, units: int, pieces: int):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(d_in, units * pieces)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).view(-1, self.units, self.pieces).amax(dim=2)


_ACTS: dict[str, Callable[[], nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "leaky_relu": lambda: nn.LeakyReLU(0.2)}


def _g_stack(nz: int, hidden: int, layers: int, act: str, bn: bool, out_dim: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    d = nz
    for _ in range(layers):
        mods += [nn.Linear(d, hidden)] + ([nn.BatchNorm1d(hidden)] if bn else []) + [_ACTS[act]()]
        d = hidden
    return nn.Sequential(*mods, nn.Linear(d, out_dim))


class Scale(nn.Module):
    """x -> factor * x: D's input scaling of the Unrolled GAN paper (Metz et al. 2017, Appendix A: 1/4)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        return x * self.factor


def _d_stack(d_in: int, hidden: int, layers: int, act: str, maxout: int, scale: float = 1.0) -> nn.Sequential:
    mods: list[nn.Module] = [nn.Flatten()] + ([Scale(scale)] if scale != 1.0 else [])
    d = d_in
    for _ in range(layers):
        mods += [Maxout(d, hidden, maxout)] if maxout > 1 else [nn.Linear(d, hidden), _ACTS[act]()]
        d = hidden
    return nn.Sequential(*mods)


def mlp(
    data_shape: tuple[int, ...],
    pack: int = 1,
    nz: int = 2,
    g_hidden: int = 400,
    g_layers: int = 4,
    d_hidden: int = 200,
    d_layers: int = 3,
    maxout: int = 5,
    act: str = "relu",
    d_act: str = "relu",
    bn: bool = True,
    init: str = "normal",
    code: int = 0,
    d_scale: float = 1.0,
    **unused: Any,
):
    """PacGAN 2D nets: G 4 x 400 BN+ReLU, linear out; D 3 maxout x 200 (5 pieces); D sees `pack` samples, and
    beside them a `code` of that many columns when it is a joint D on (x, z) pairs (ALI/BiGAN, VEEGAN); D multiplies
    its input by `d_scale` first."""
    from trainables.models import INITS, Built

    if unused:
        raise TypeError(f"mlp: unknown argument(s) {sorted(unused)}")
    if init not in INITS:
        raise ValueError(f"model.init: unknown init {init!r}; known: {', '.join(sorted(INITS))}")
    out_dim = 1
    for s in data_shape:
        out_dim *= s
    g = _g_stack(nz, g_hidden, g_layers, act, bn, out_dim)
    if len(data_shape) > 1:
        g = nn.Sequential(g, nn.Unflatten(1, tuple(data_shape)))
    features = _d_stack(out_dim * pack + code, d_hidden, d_layers, d_act, maxout, d_scale)
    INITS[init](g)
    INITS[init](features)
    return Built(g=g, features=features, feat_dim=d_hidden, nz=nz, init=INITS[init])
