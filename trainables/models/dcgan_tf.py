"""Kim's DCGAN-tensorflow (github.com/carpedm20/DCGAN-tensorflow, `model.py`, `ops.py`; Radford et al. 2016) as
PacGAN's stacked-MNIST code runs it (github.com/fjxmlzn/PacGAN, `stacked_MNIST_experiments/VEEGAN_experiment/
model.py`): 5x5 kernels, stride 2, TF "SAME" sizes, a linear projection of z, biases everywhere, U(-1, 1) latents."""
from __future__ import annotations

import math
from typing import Any, Literal

from torch import nn


def _sizes(image_size: int) -> list[int]:
    """TF "SAME" stride-2 sizes from the image down, ceil-halved four times: 28 -> [28, 14, 7, 4, 2]."""
    sizes = [image_size]
    for _ in range(4):
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes


def _generator(nz: int, ngf: int, channels: int, sizes: list[int]) -> nn.Sequential:
    width = [ngf * 8, ngf * 4, ngf * 2, ngf, channels]  # g_h0_lin, g_h1..g_h4
    mods: list[nn.Module] = [nn.Linear(nz, width[0] * sizes[4] ** 2), nn.Unflatten(1, (width[0], sizes[4], sizes[4])),
                             nn.BatchNorm2d(width[0]), nn.ReLU(True)]
    for i in range(4):  # up from sizes[4 - i] to sizes[3 - i]: out = 2 in - 1 + output_padding
        s_in, s_out = sizes[4 - i], sizes[3 - i]
        mods.append(nn.ConvTranspose2d(width[i], width[i + 1], 5, 2, 2, output_padding=s_out - 2 * s_in + 1))
        mods += [nn.BatchNorm2d(width[i + 1]), nn.ReLU(True)] if i < 3 else [nn.Tanh()]
    return nn.Sequential(*mods)  # (B, nz) -> (B, channels, size, size)


def _features(ndf: int, channels: int) -> nn.Sequential:
    width = [channels, ndf, ndf * 2, ndf * 4, ndf * 8]  # d_h0..d_h3; BatchNorm on d_h1..d_h3
    mods: list[nn.Module] = []
    for i in range(4):
        mods.append(nn.Conv2d(width[i], width[i + 1], 5, 2, 2))  # "SAME" size ceil(in / 2)
        mods += ([nn.BatchNorm2d(width[i + 1])] if i else []) + [nn.LeakyReLU(0.2, True)]
    return nn.Sequential(*mods, nn.Flatten())  # (B, C, size, size) -> (B, 8 ndf * sizes[4]**2)


def init_tf(module: nn.Module, std: float = 0.02) -> None:
    """`ops.py`'s init: conv weights truncated N(0, 0.02), deconv and linear weights N(0, 0.02), biases 0,
    BatchNorm scale 1 and offset 0 (tf.contrib.layers.batch_norm)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.trunc_normal_(m.weight, 0.0, std, -2 * std, 2 * std)
        elif isinstance(m, (nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm2d)) and m.bias is not None:
            nn.init.zeros_(m.bias)


def dcgan_tf(
    data_shape: tuple[int, ...],
    pack: int = 1,
    nz: int = 100,
    ngf: int = 64,
    ndf: int = 64,
    latent: Literal["uniform", "normal"] = "uniform",
    **unused: Any,
):
    """G: linear z -> (8 ngf, s/16, s/16), BN-ReLU, four 5x5 stride-2 deconvs (BN-ReLU, tanh last); D: four 5x5
    stride-2 convs (ndf .. 8 ndf, LeakyReLU 0.2, BN from the second), then the linear head. z ~ U(-1, 1)."""
    from trainables.models import Built

    if unused:
        raise TypeError(f"dcgan_tf: unknown argument(s) {sorted(unused)}")
    channels, sizes = data_shape[0], _sizes(data_shape[-1])
    g, features = _generator(nz, ngf, channels, sizes), _features(ndf, channels * pack)
    init_tf(g)
    init_tf(features)
    return Built(g=g, features=features, feat_dim=ndf * 8 * sizes[4] ** 2, nz=nz, init=init_tf, latent=latent)
