"""Remedies on D's inputs: packing (PacGAN) and annealed instance noise."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from trainables.remedies import Params, Remedy


def _pack_build(kwargs: dict[str, Any], p: Params) -> dict[str, Any]:
    """D's first layer takes m samples: model kwarg pack = m (Lin et al. 2018)."""
    return {**kwargs, "pack": int(p["m"])}


def _pack(x: Tensor, p: Params, ctx) -> Tensor:
    """(B, C, ...) -> (B // m, m * C, ...): m consecutive samples side by side, remainder dropped (Lin et al. 2018)."""
    m = int(p["m"])
    b = len(x) // m * m
    if b == 0:
        raise ValueError(f"packing: batch of {len(x)} is smaller than m = {m}")
    return x[:b].reshape(b // m, m * x.shape[1], *x.shape[2:])


def _noise(x: Tensor, p: Params, ctx) -> Tensor:
    """Gaussian noise, std annealed linearly to 0 at `anneal_end` of training (Sonderby et al. 2016)."""
    end = float(p["anneal_end"])
    std = float(p["std"]) * max(0.0, 1.0 - ctx.progress / end) if end > 0 else 0.0
    if std <= 0:
        return x
    return x + std * torch.randn(x.shape, generator=ctx.gen, device=x.device, dtype=x.dtype)


REMEDIES: dict[str, Remedy] = {
    "packing": Remedy(doc="PacGAN: D judges packs of m samples, all real or all fake (Lin et al. 2018)",
                      defaults={"m": 2}, build=_pack_build, inputs=_pack),
    "instance_noise": Remedy(
        doc="instance noise on every D input, real and fake, std annealed linearly to 0 (Sonderby et al. 2016)",
        defaults={"std": 0.1, "anneal_end": 1.0}, inputs=_noise),
}
