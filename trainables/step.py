"""The one shared GAN training step; remedies act on it only through their hooks (trainables.remedies)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch
from torch import Tensor, nn

from trainables.losses import LOSSES, Loss, d_probability
from trainables.models import MODELS, Discriminator
from trainables.remedies import REMEDIES, Remedy, check_combination, resolve_params


class Diverged(RuntimeError):
    """A loss became NaN or infinite: the trial's outcome is `diverged`, distinct from collapse."""


@dataclass
class StepContext:
    """Everything one training step touches: nets, optimisers, loss, remedies and the trial's RNG."""

    g: nn.Module
    d: Discriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    loss: Loss
    remedies: list[tuple[str, Remedy, dict[str, Any]]]
    nz: int
    n_critic: int
    gen: torch.Generator
    device: torch.device
    progress: float = 0.0  # fraction of training done, for annealed remedies
    counts: dict[str, int] = field(default_factory=lambda: {"d_steps": 0, "g_steps": 0})

    def z(self, n: int) -> Tensor:
        """Latent batch z ~ N(0, I). (n, nz)"""
        return torch.randn(n, self.nz, generator=self.gen, device=self.device)

    def hooks(self, name: str) -> list[tuple[Callable, dict[str, Any]]]:
        return [(getattr(r, name), p) for _, r, p in self.remedies if getattr(r, name) is not None]


def _optimizer(name: str, params, lr: float, betas) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=tuple(betas))
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    raise KeyError(f"unknown optimizer {name!r}; known: adam, rmsprop, sgd")


def build_context(cfg: Mapping[str, Any], data_shape: tuple[int, ...], gen: torch.Generator,
                  device: torch.device) -> StepContext:
    """Nets, optimisers and remedies from a resolved trial config (trainables.config.resolve)."""
    check_combination(list(cfg.get("remedies") or {}), LOSSES[cfg["loss"]].uses_targets)
    remedies = [(n, REMEDIES[n], resolve_params(n, p)) for n, p in (cfg.get("remedies") or {}).items()]
    kwargs = {k: v for k, v in cfg["model"].items() if k != "name"}
    train = dict(cfg["train"])
    for _, r, p in remedies:
        kwargs = r.build(kwargs, p) if r.build else kwargs
        train = r.optim(train, p) if r.optim else train
    built = MODELS[cfg["model"]["name"]](data_shape, **kwargs)
    d = Discriminator(built.features, nn.Linear(built.feat_dim, 1))
    for _, r, p in remedies:
        d = r.wrap_d(d, p) if r.wrap_d else d
    g, d = built.g.to(device), d.to(device)
    lr_d, lr_g = train.get("lr_d") or train["lr"], train.get("lr_g") or train["lr"]
    opt_d = _optimizer(train["optimizer"], d.parameters(), lr_d, train["betas"])
    opt_g = _optimizer(train["optimizer"], g.parameters(), lr_g, train["betas"])
    return StepContext(g, d, opt_g, opt_d, LOSSES[cfg["loss"]], remedies, built.nz, int(train["n_critic"]),
                       gen, device)


def _d_input(ctx: StepContext, x: Tensor) -> Tensor:
    for hook, p in ctx.hooks("inputs"):
        x = hook(x, p, ctx)
    return x


def _grad_norm(module: nn.Module) -> float:
    grads = [p.grad.detach().flatten() for p in module.parameters() if p.grad is not None]
    return float(torch.cat(grads).norm()) if grads else 0.0


def d_step(ctx: StepContext, real: Tensor, fake: Tensor) -> dict[str, float]:
    """One D update on a real batch and a (detached) fake batch, with target, input and penalty hooks."""
    real_in, fake_in = _d_input(ctx, real), _d_input(ctx, fake)
    real_logits, fake_logits = ctx.d(real_in), ctx.d(fake_in)  # (B,), (B,) or (B/m,) when packed
    rt, ft = torch.ones_like(real_logits), torch.zeros_like(fake_logits)
    logs: dict[str, float] = {}
    for hook, p in ctx.hooks("targets"):
        rt, ft, extra = hook(rt, ft, p, ctx)
        logs.update(extra)
    loss = ctx.loss.d(real_logits, fake_logits, rt, ft)
    for hook, p in ctx.hooks("d_extra"):
        logs["loss/d_base"] = float(loss.detach())
        term, extra = hook(ctx, real_in, fake_in, p)
        loss = loss + term
        logs.update(extra)
    if not torch.isfinite(loss):
        raise Diverged(f"D loss is {float(loss.detach())} at D step {ctx.counts['d_steps']}")
    ctx.opt_d.zero_grad(set_to_none=True)
    loss.backward()
    logs["grad/d"] = _grad_norm(ctx.d)
    ctx.opt_d.step()
    ctx.counts["d_steps"] += 1
    for hook, p in ctx.hooks("after_d"):
        logs.update(hook(ctx, p))
    logs.update({"loss/d": float(loss.detach()), "d/real": d_probability(real_logits), "d/fake": d_probability(fake_logits)})
    return logs


def g_step(ctx: StepContext, real: Tensor, fake: Tensor) -> dict[str, float]:
    """One G update: G's loss against D (or the D a g_critic hook gives, e.g. unrolled), or a g_loss hook's."""
    logs: dict[str, float] = {}
    d_fn: Callable[[Tensor], Tensor] = ctx.d
    for hook, p in ctx.hooks("g_critic"):
        d_fn, extra = hook(ctx, real, fake, p)
        logs.update(extra)
    replaced = ctx.hooks("g_loss")
    if replaced:
        hook, p = replaced[0]
        loss, extra = hook(ctx, real, fake, d_fn, p)
        logs.update(extra)
    else:
        loss = ctx.loss.g(d_fn(_d_input(ctx, fake)))
    if not torch.isfinite(loss):
        raise Diverged(f"G loss is {float(loss.detach())} at G step {ctx.counts['g_steps']}")
    ctx.opt_g.zero_grad(set_to_none=True)
    loss.backward()
    logs["grad/g"] = _grad_norm(ctx.g)
    ctx.opt_g.step()
    ctx.counts["g_steps"] += 1
    logs["loss/g"] = float(loss.detach())
    return logs


def train_step(ctx: StepContext, next_real: Callable[[], Tensor]) -> dict[str, float]:
    """n_critic D updates (a fresh real and fake batch each), then one G update on the last fake batch."""
    logs: dict[str, float] = {}
    for i in range(ctx.n_critic):
        real = next_real()
        if i < ctx.n_critic - 1:
            with torch.no_grad():
                fake = ctx.g(ctx.z(len(real)))
        else:
            fake = ctx.g(ctx.z(len(real)))  # kept with its graph for the G update below
        logs.update(d_step(ctx, real, fake.detach()))
    ctx.d.requires_grad_(False)  # G's backward needs no D parameter grads
    try:
        logs.update(g_step(ctx, real, fake))
    finally:
        ctx.d.requires_grad_(True)
    return logs
