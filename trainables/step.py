"""The one shared GAN training step; remedies act on it only through their hooks (trainables.hooks)."""
from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from trainables.config import TrialConfig
from trainables.hooks import DFn, Logs, StepContext, d_view
from trainables.losses import LOSSES, d_probability
from trainables.models import MODELS, Discriminator
from trainables.remedies import REMEDIES


class Diverged(RuntimeError):
    """A loss became NaN or infinite: the trial's outcome is `diverged`, distinct from collapse."""


Params = Iterable[nn.Parameter]
# train.optimizer -> (parameters, lr, betas) -> optimiser; betas apply to Adam only
OPTIMIZERS: dict[str, Callable[[Params, float, tuple[float, float]], torch.optim.Optimizer]] = {
    "adam": lambda params, lr, betas: torch.optim.Adam(params, lr=lr, betas=betas),
    "rmsprop": lambda params, lr, betas: torch.optim.RMSprop(params, lr=lr),
    "sgd": lambda params, lr, betas: torch.optim.SGD(params, lr=lr),
}


def build_context(cfg: TrialConfig, data_shape: tuple[int, ...], gen: torch.Generator,
                  device: torch.device) -> StepContext:
    """Nets, optimisers and remedies from a resolved trial config (trainables.config.resolve)."""
    remedies = [(n, REMEDIES[n], p) for n, p in cfg.remedies.items()]
    kwargs = cfg.model.kwargs
    for _, r, p in remedies:
        kwargs = r.model(cfg, p, kwargs) if r.model else kwargs
    built = MODELS[cfg.model.name](data_shape, **kwargs)
    head = nn.Linear(built.feat_dim, 1)
    built.init(head)  # D's output layer follows the model's init scheme, as its other layers do
    d = Discriminator(built.features, head, built.init)
    for _, r, p in remedies:
        d = r.wrap_d(cfg, p, d) if r.wrap_d else d
    g, d = built.g.to(device), d.to(device)
    train = cfg.train
    opt_d = OPTIMIZERS[train.optimizer](d.parameters(), train.lr_d or train.lr, train.betas)
    opt_g = OPTIMIZERS[train.optimizer](g.parameters(), train.lr_g or train.lr, train.betas)
    return StepContext(g, d, opt_g, opt_d, LOSSES[cfg.loss], remedies, built.nz, train.n_critic, gen, device)


def _grad_norm(module: nn.Module) -> float:
    grads = [p.grad.detach().flatten() for p in module.parameters() if p.grad is not None]
    return float(torch.cat(grads).norm()) if grads else 0.0


def d_step(ctx: StepContext, real: Tensor, fake: Tensor) -> Logs:
    """One D update on a real batch and a (detached) fake batch, with target, input and penalty hooks."""
    real_in, fake_in = d_view(ctx, real), d_view(ctx, fake)
    real_logits, fake_logits = ctx.d(real_in), ctx.d(fake_in)  # (B,), (B,) or (B/m,) when packed
    rt, ft = torch.ones_like(real_logits), torch.zeros_like(fake_logits)
    logs: Logs = {}
    for hook, p in ctx.hooks("targets"):
        rt, ft, extra = hook(ctx, p, rt, ft)
        logs.update(extra)
    loss = ctx.loss.d(real_logits, fake_logits, rt, ft)
    for hook, p in ctx.hooks("d_extra"):
        logs["loss/d_base"] = float(loss.detach())
        term, extra = hook(ctx, p, real_in, fake_in)
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
    logs.update({"loss/d": float(loss.detach()), "d/real": d_probability(real_logits),
                 "d/fake": d_probability(fake_logits)})
    return logs


def g_step(ctx: StepContext, real: Tensor, fake: Tensor) -> Logs:
    """One G update: G's loss against D (or the D a g_critic hook gives, e.g. unrolled), or a g_loss hook's."""
    logs: Logs = {}
    d_fn: DFn = ctx.d
    for hook, p in ctx.hooks("g_critic"):
        d_fn, extra = hook(ctx, p, real, fake)
        logs.update(extra)
    replaced = ctx.hooks("g_loss")
    if replaced:
        hook, p = replaced[0]
        loss, extra = hook(ctx, p, real, fake, d_fn)
        logs.update(extra)
    else:
        loss = ctx.loss.g(d_fn(d_view(ctx, fake)))
    if not torch.isfinite(loss):
        raise Diverged(f"G loss is {float(loss.detach())} at G step {ctx.counts['g_steps']}")
    ctx.opt_g.zero_grad(set_to_none=True)
    loss.backward()
    logs["grad/g"] = _grad_norm(ctx.g)
    ctx.opt_g.step()
    ctx.counts["g_steps"] += 1
    logs["loss/g"] = float(loss.detach())
    return logs


def train_step(ctx: StepContext, next_real: Callable[[], Tensor]) -> Logs:
    """n_critic D updates (a fresh real and fake batch each), then one G update on the last fake batch."""
    logs: Logs = {}
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
