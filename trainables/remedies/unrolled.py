"""Unrolled GAN: G's loss against D after k differentiable look-ahead updates (Metz et al. 2017)."""
from __future__ import annotations

from collections.abc import Callable

import torch
from pydantic import Field
from torch import Tensor
from torch.func import functional_call

from trainables.hooks import DFn, Logs, Remedy, StepContext, d_view, params

_TINY = 1e-16  # inside sqrt: keeps d sqrt(v)/dv finite where a gradient is exactly 0 (unused maxout pieces)


@params
class Unroll:
    k: int = Field(5, ge=0, le=100)  # look-ahead D steps
    # G's loss also carries the real-data half of D's loss at the unrolled D, which depends on G through the
    # look-ahead: the paper's surrogate f(theta_G, theta_D^K) (Section 2.2) and the notebook's `-unrolled_loss`
    real_term: bool = True


def _update(opt: torch.optim.Optimizer, q: Tensor, theta: Tensor, g: Tensor, st: dict) -> Tensor:
    """One differentiable step of D's own optimiser (Adam, RMSprop or SGD) from its current state; st is advanced."""
    group, lr = opt.param_groups[0], float(opt.param_groups[0]["lr"])
    if not st:  # first look-ahead step: start from the optimiser's moments (zeros before its first step)
        state, zero = opt.state.get(q, {}), torch.zeros_like(q)
        st.update(t=float(state.get("step", 0)), m=state.get("exp_avg", zero),
                  v=state.get("exp_avg_sq", state.get("square_avg", zero)))
    if isinstance(opt, torch.optim.Adam):
        b1, b2 = group["betas"]
        st["t"] += 1
        st["m"] = b1 * st["m"] + (1 - b1) * g
        st["v"] = b2 * st["v"] + (1 - b2) * g * g
        m_hat, v_hat = st["m"] / (1 - b1 ** st["t"]), st["v"] / (1 - b2 ** st["t"])
        return theta - lr * m_hat / (torch.sqrt(v_hat + _TINY) + group["eps"])
    if isinstance(opt, torch.optim.RMSprop):
        a = group["alpha"]
        st["v"] = a * st["v"] + (1 - a) * g * g
        return theta - lr * g / (torch.sqrt(st["v"] + _TINY) + group["eps"])
    return theta - lr * g


def _unrolled_critic(ctx: StepContext, p: Unroll, real: Tensor, fake: Tensor) -> tuple[DFn, Logs]:
    """D after k look-ahead steps of its base loss on this real/fake batch; G's graph runs through all k.

    Cost for G: k D forward/backward passes with create_graph, then one forward and the backward through them.
    D's own parameters and buffers are untouched: the look-ahead works on copies.
    """
    k = p.k
    if k <= 0:
        return ctx.d, {}
    names, params = zip(*ctx.d.named_parameters())
    buffers = {n: b.clone() for n, b in ctx.d.named_buffers()}  # BN stats, spectral-norm vectors
    theta = [q.detach().requires_grad_(True) for q in params]  # D is frozen during the G step: copies that track grad
    states: list[dict] = [{} for _ in params]
    real_in, fake_in = d_view(ctx, real).detach(), d_view(ctx, fake)  # fake keeps G's graph

    def critic(ws: list[Tensor]) -> Callable[[Tensor], Tensor]:
        return lambda x: functional_call(ctx.d, {**dict(zip(names, ws)), **buffers}, (x,))

    for _ in range(k):
        d_fn = critic(theta)
        r, f = d_fn(real_in), d_fn(fake_in)
        loss = ctx.loss.d(r, f, torch.ones_like(r), torch.zeros_like(f))
        grads = torch.autograd.grad(loss, theta, create_graph=True, allow_unused=True)
        theta = [_update(ctx.opt_d, q, w, torch.zeros_like(w) if g is None else g, st)
                 for q, w, g, st in zip(params, theta, grads, states)]
    return critic(theta), {"remedy/unrolled/lookahead_d_loss": loss.detach()}


def _unrolled_g(ctx: StepContext, p: Unroll, real: Tensor, fake: Tensor, d_fn: DFn) -> tuple[Tensor, Logs]:
    """G's loss against the unrolled D; with real_term, plus the real half of D's value there (Metz et al. 2017,
    Eq. 8: G follows d f_K / d theta_G, and f_K's real term depends on theta_G through theta_D^K)."""
    loss = ctx.per_seed(ctx.loss.g, d_fn(d_view(ctx, fake)))
    if p.k > 0 and p.real_term:
        r = d_fn(d_view(ctx, real).detach())
        loss = loss - ctx.per_seed(lambda x: ctx.loss.d_real(x, torch.ones_like(x)), r)
    return loss, {}


REMEDIES: dict[str, Remedy] = {
    "unrolled": Remedy(
        doc="G's loss against D after k differentiable look-ahead steps of D's optimiser on the base D loss, "
            "plus (real_term) the real half of D's loss there, whose dependence on G runs through the look-ahead; "
            "D takes its normal step (Metz et al. 2017); not with feature_matching, mmd or mmd_critic, whose G loss "
            "ignores D's output, nor veegan or bigan, whose joint D needs G's latent",
        params=Unroll, g_critic=_unrolled_critic, g_loss=_unrolled_g,
        conflicts=("feature_matching", "mmd", "mmd_critic", "veegan", "bigan")),
}
