"""DCGAN (Radford et al. 2016) at 64 px (the label-noise seed architecture), 32/28/16/8 px, any channel count."""
from __future__ import annotations

import math
from typing import Any

from torch import nn


def _plan(image_size: int) -> tuple[int, int]:
    """(start spatial size, number of stride-2 layers): 64 -> (4, 4), 32 -> (4, 3), 28 -> (7, 2), 8 -> (4, 1)."""
    for start in (4, 7):
        n = math.log2(image_size / start)
        if n >= 1 and n == int(n):
            return start, int(n)
    raise ValueError(f"dcgan: image_size must be 4 or 7 times a power of two (>= 8), got {image_size}")


def _act(g_slope: float) -> nn.Module:
    """G's hidden activation: ReLU at slope 0, else LeakyReLU(g_slope) (1.0: the identity)."""
    return nn.LeakyReLU(g_slope, True) if g_slope else nn.ReLU(True)


def _up(c_in: int, c_out: int, k: int, s: int, p: int, bn: bool, g_slope: float) -> list[nn.Module]:
    """ConvTranspose2d, BatchNorm (or a bias in its place when `bn` is off), G's activation."""
    conv = nn.ConvTranspose2d(c_in, c_out, k, s, p, bias=not bn)
    return [conv, nn.BatchNorm2d(c_out), _act(g_slope)] if bn else [conv, _act(g_slope)]


def _generator(
    nz: int, ngf: int, channels: int, start: int, n: int, g_slope: float = 0.0, bn: bool = True
) -> nn.Sequential:
    width = [ngf * 2 ** (n - 1 - i) for i in range(n)]  # 64 px: 512, 256, 128, 64
    mods: list[nn.Module] = [nn.Unflatten(1, (nz, 1, 1)), *_up(nz, width[0], start, 1, 0, bn, g_slope)]
    for c_in, c_out in zip(width[:-1], width[1:]):
        mods += _up(c_in, c_out, 4, 2, 1, bn, g_slope)
    mods += [nn.ConvTranspose2d(width[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*mods)  # (B, nz) -> (B, channels, size, size)


def _features(ndf: int, channels: int, n: int) -> nn.Sequential:
    width = [ndf * 2**i for i in range(n)]  # 64 px: 64, 128, 256, 512
    mods: list[nn.Module] = [nn.Conv2d(channels, width[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    for c_in, c_out in zip(width[:-1], width[1:]):
        mods += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
    return nn.Sequential(*mods, nn.Flatten())  # (B, C, size, size) -> (B, width[-1] * start**2)


def dcgan(
    data_shape: tuple[int, ...],
    pack: int = 1,
    nz: int = 100,
    ngf: int = 64,
    ndf: int = 64,
    g_slope: float = 0.0,
    bn: bool = True,
    **unused: Any,
):
    """The seed DCGAN; D's final Conv2d(512, 1, 4) is the Linear head over the flattened (512, 4, 4) features.
    `g_slope` is the negative slope of G's hidden activations: 0 is ReLU (Radford et al.); the seed experiment's
    code (rohitpatwa/gans-mode-collapse, src/model.py) writes `nn.LeakyReLU(True)`, slope 1, a linear G.
    `bn: false` drops G's BatchNorm, which Radford et al. (Sec. 3) found kept G from collapsing to one point."""
    from trainables.models import Built, init_normal

    if unused:
        raise TypeError(f"dcgan: unknown argument(s) {sorted(unused)}")
    if not 0.0 <= g_slope <= 1.0:
        raise ValueError(f"model.g_slope: must lie in [0, 1], got {g_slope}")
    channels, size = data_shape[0], data_shape[-1]
    start, n = _plan(size)
    g = _generator(nz, ngf, channels, start, n, g_slope, bn)
    features = _features(ndf, channels * pack, n)
    init_normal(g)
    init_normal(features)
    return Built(g=g, features=features, feat_dim=ndf * 2 ** (n - 1) * start**2, nz=nz, init=init_normal)
