"""Label remedies on D's targets: flipping and one-sided smoothing (the G step always uses clean labels)."""
from __future__ import annotations

import torch
from torch import Tensor

from trainables.remedies import Params, Remedy


def _flip(rt: Tensor, ft: Tensor, p: Params, ctx) -> tuple[Tensor, Tensor, dict[str, float]]:
    """Flip each D target independently with probability `rate` (per-label Bernoulli; seed label-noise study)."""
    rate = float(p["rate"])
    if rate <= 0:
        return rt, ft, {"remedy/label_flip/fraction": 0.0}
    flip_r = torch.rand(rt.shape, generator=ctx.gen, device=rt.device) < rate
    flip_f = torch.rand(ft.shape, generator=ctx.gen, device=ft.device) < rate
    frac = (flip_r.sum() + flip_f.sum()).item() / (rt.numel() + ft.numel())
    return torch.where(flip_r, 1.0 - rt, rt), torch.where(flip_f, 1.0 - ft, ft), {"remedy/label_flip/fraction": frac}


def _smooth(rt: Tensor, ft: Tensor, p: Params, ctx) -> tuple[Tensor, Tensor, dict[str, float]]:
    """One-sided label smoothing: real targets 1 -> alpha, fake targets unchanged (Salimans et al. 2016)."""
    alpha = float(p["alpha"])
    return torch.where(rt > 0.5, torch.full_like(rt, alpha), rt), ft, {}


REMEDIES: dict[str, Remedy] = {
    "label_flip": Remedy(doc="per-label Bernoulli flips of D's targets", defaults={"rate": 0.05},
                         targets=_flip, needs_targets=True),
    "label_smoothing": Remedy(doc="one-sided label smoothing (Salimans et al. 2016)", defaults={"alpha": 0.9},
                              targets=_smooth, needs_targets=True),
}
