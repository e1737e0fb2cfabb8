"""Extra D terms and constraints: gradient penalty, R1, weight clipping."""
from __future__ import annotations

from collections.abc import Callable

import torch
from pydantic import Field
from torch import Tensor
from torch.func import functional_call

from trainables.hooks import Logs, Remedy, StepContext, params


@params
class GP:
    weight: float = Field(10.0, ge=0.0)  # lambda of Gulrajani et al. 2017


@params
class R1:
    gamma: float = Field(10.0, ge=0.0)


@params
class Clip:
    c: float = Field(0.01, gt=0.0)


def side_effect_free(d: torch.nn.Module) -> Callable[[Tensor], Tensor]:
    """D on cloned buffers: an extra forward leaves BN running stats and spectral-norm vectors untouched."""
    buffers = {n: b.clone() for n, b in d.named_buffers()}
    return lambda x: functional_call(d, buffers, (x,))


def _input_grad(d_fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """grad_x sum D(x), kept in the graph so the penalty trains D. (B, numel per row)"""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d_fn(x).sum(), x, create_graph=True)
    return grad.flatten(1)


def _gradient_penalty(ctx: StepContext, p: GP, real: Tensor, fake: Tensor) -> tuple[Tensor, Logs]:
    """lambda E (||grad D(x_hat)||_2 - 1)^2 at uniform interpolates of real and fake (Gulrajani et al. 2017)."""
    n = min(len(real), len(fake))
    eps = ctx.draw(torch.rand, (n,) + (1,) * (real.dim() - 1))
    x_hat = eps * real[:n].detach() + (1 - eps) * fake[:n].detach()
    norm = _input_grad(side_effect_free(ctx.d), x_hat).norm(dim=1)
    penalty = p.weight * ((norm - 1.0) ** 2).mean()
    return penalty, {"remedy/gradient_penalty/penalty": penalty.detach(),
                     "remedy/gradient_penalty/grad_norm": norm.detach().mean()}


def _r1(ctx: StepContext, p: R1, real: Tensor, fake: Tensor) -> tuple[Tensor, Logs]:
    """(gamma / 2) E_real ||grad_x D(x)||^2 (Mescheder et al. 2018)."""
    sq = _input_grad(side_effect_free(ctx.d), real).pow(2).sum(dim=1)
    penalty = 0.5 * p.gamma * sq.mean()
    return penalty, {"remedy/r1/penalty": penalty.detach(), "remedy/r1/grad_norm": sq.detach().sqrt().mean()}


@torch.no_grad()
def _clip(ctx: StepContext, p: Clip) -> Logs:
    """Clamp every D parameter to [-c, c] after each D update (Arjovsky et al. 2017); an MMD-GAN decoder's are
    left free, as the authors' code leaves them (Discriminator.constrained)."""
    counts, total = [], 0
    for q in (q for m in ctx.d.constrained() for q in m.parameters(recurse=False)):
        counts.append((q.abs() > p.c).sum())
        total += q.numel()
        q.clamp_(-p.c, p.c)
    return {"remedy/weight_clipping/clipped_fraction": torch.stack(counts).sum().double() / max(total, 1)}


_BN_NOTE = "with BatchNorm in D (dcgan) the input gradient passes through batch statistics"

REMEDIES: dict[str, Remedy] = {
    "gradient_penalty": Remedy(
        doc=f"WGAN-GP penalty weight E(||grad D(x_hat)|| - 1)^2 (Gulrajani et al. 2017); {_BN_NOTE}",
        params=GP, d_extra=_gradient_penalty, conflicts=("weight_clipping",)),
    "r1": Remedy(
        doc=f"R1 penalty (gamma/2) E_real ||grad_x D(x)||^2 (Mescheder et al. 2018); {_BN_NOTE}",
        params=R1, d_extra=_r1),
    "weight_clipping": Remedy(
        doc="clip D weights to [-c, c] (Arjovsky et al. 2017); conflicts with the other Lipschitz constraints "
            "gradient_penalty (which replaces clipping) and spectral_norm (clipping the unnormalised weight)",
        params=Clip, after_d=_clip, conflicts=("gradient_penalty", "spectral_norm"), seed_separable=True),
}
