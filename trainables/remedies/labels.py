"""Label remedies on D's targets: flipping and one-sided smoothing (the G step always uses clean labels)."""
from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from trainables.hooks import Logs, Remedy, StepContext, params


@params
class Flip:
    rate: float = Field(0.05, ge=0.0, le=1.0)  # probability of flipping each of D's targets


@params
class Smooth:
    alpha: float = Field(0.9, gt=0.0, le=1.0)  # the real target


def _fraction(flip_r: Tensor, flip_f: Tensor) -> Tensor:
    return (flip_r.sum() + flip_f.sum()).double() / (flip_r.numel() + flip_f.numel())


def _flip(ctx: StepContext, p: Flip, rt: Tensor, ft: Tensor) -> tuple[Tensor, Tensor, Logs]:
    """Flip each D target independently with probability `rate` (per-label Bernoulli; seed label-noise study)."""
    if p.rate <= 0:
        return rt, ft, {"remedy/label_flip/fraction": torch.zeros((), dtype=torch.float64, device=rt.device)}
    flip_r = ctx.draw(torch.rand, tuple(rt.shape)) < p.rate
    flip_f = ctx.draw(torch.rand, tuple(ft.shape)) < p.rate
    frac = ctx.per_seed(_fraction, flip_r, flip_f)
    return torch.where(flip_r, 1.0 - rt, rt), torch.where(flip_f, 1.0 - ft, ft), {"remedy/label_flip/fraction": frac}


def _smooth(ctx: StepContext, p: Smooth, rt: Tensor, ft: Tensor) -> tuple[Tensor, Tensor, Logs]:
    """One-sided label smoothing: real targets 1 -> alpha, fake targets unchanged (Salimans et al. 2016)."""
    return torch.where(rt > 0.5, torch.full_like(rt, p.alpha), rt), ft, {}


REMEDIES: dict[str, Remedy] = {
    "label_flip": Remedy(doc="per-label Bernoulli flips of D's targets", params=Flip, targets=_flip,
                         needs_targets=True, seed_separable=True),
    "label_smoothing": Remedy(doc="one-sided label smoothing (Salimans et al. 2016)", params=Smooth,
                              targets=_smooth, needs_targets=True, seed_separable=True),
}
