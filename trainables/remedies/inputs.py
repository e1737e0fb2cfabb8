"""Remedies on D's inputs: packing (PacGAN) and annealed instance noise."""
from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor

from trainables.hooks import Remedy, StepContext, params


@params
class Pack:
    m: int = Field(2, ge=1, le=64)  # samples per pack
    # "packs": train.batch_size counts D's packs, so a step draws m x batch_size samples of each source, as the
    # PacGAN code does; "samples": it counts samples (batch_size / m packs a step)
    batch: Literal["packs", "samples"] = "packs"


@params
class Noise:
    std: float = Field(0.1, ge=0.0)  # initial noise std (data units)
    anneal_end: float = Field(1.0, ge=0.0, le=1.0)  # fraction of training at which the std reaches 0


def _pack_model(cfg: Any, p: Pack, kwargs: dict[str, Any]) -> dict[str, Any]:
    """D's first layer takes m samples: model kwarg pack = m (Lin et al. 2018)."""
    return {**kwargs, "pack": p.m}


def _pack(ctx: StepContext, p: Pack, x: Tensor) -> Tensor:
    """(B, C, ...) -> (B // m, m * C, ...): m consecutive samples side by side, remainder dropped (Lin et al. 2018)."""
    b = len(x) // p.m * p.m
    if b == 0:
        raise ValueError(f"packing: batch of {len(x)} is smaller than m = {p.m}")
    return x[:b].reshape(b // p.m, p.m * x.shape[1], *x.shape[2:])


def d_input_shape(cfg: Any, data_shape: tuple[int, ...]) -> tuple[int, ...]:
    """One row of D's input: (m * C, ...) when D judges packs of m samples (Lin et al. 2018), else one sample's."""
    pack = cfg.remedies.get("packing")
    return data_shape if pack is None else (pack.m * data_shape[0], *data_shape[1:])


def _noise(ctx: StepContext, p: Noise, x: Tensor) -> Tensor:
    """Gaussian noise, std annealed linearly to 0 at `anneal_end` of training (Sonderby et al. 2016); off
    while evaluating."""
    end = p.anneal_end
    std = p.std * max(0.0, 1.0 - ctx.progress / end) if end > 0 else 0.0
    if std <= 0 or not ctx.training:
        return x
    return x + std * ctx.draw(torch.randn, tuple(x.shape), x.dtype)


REMEDIES: dict[str, Remedy] = {
    "packing": Remedy(doc="PacGAN: D judges packs of m samples, all real or all fake; train.batch_size packs a step "
                          "(Lin et al. 2018); not with veegan or bigan (a pack has no code per sample for a joint D)",
                      params=Pack, model=_pack_model, inputs=_pack, conflicts=("veegan", "bigan"), seed_separable=True),
    "instance_noise": Remedy(
        doc="instance noise on every D input, real and fake, std annealed linearly to 0 (Sonderby et al. 2016)",
        params=Noise, inputs=_noise, seed_separable=True),
}
