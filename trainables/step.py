"""The one shared GAN training step; remedies act on it only through their hooks (trainables.hooks)."""
from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from trainables.config import TrialConfig
from trainables.hooks import DFn, Logs, StepContext, d_view
from trainables.losses import LOSSES, d_probability
from trainables.models import LATENTS, MODELS, Discriminator
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
        d = r.wrap_d(cfg, p, d, data_shape) if r.wrap_d else d
    g = built.g
    for _, r, p in remedies:  # G's side: G and the nets G's optimiser trains with it (an encoder)
        g = r.wrap_g(cfg, p, built, data_shape) if r.wrap_g else g
    g, d = g.to(device), d.to(device)
    train = cfg.train
    opt_d = OPTIMIZERS[train.optimizer](d.parameters(), train.lr_d or train.lr, train.betas)
    opt_g = OPTIMIZERS[train.optimizer](g.parameters(), train.lr_g or train.lr, train.betas)
    return StepContext(g, d, opt_g, opt_d, LOSSES[cfg.loss], remedies, built.nz, train.n_critic, gen, device,
                       watch=FiniteWatch(), bf16=train.precision == "bf16", gens=(gen,),
                       simultaneous=train.updates == "simultaneous", g_updates=train.g_updates,
                       latent=LATENTS[built.latent], critic_burst=train.critic_burst)


def _grad_norm(module: nn.Module, seeds: int = 1) -> Tensor:
    """The norm of all of a module's gradients, as a 0-dim tensor on their device (no host read); of a
    seed-batched module (trainables.models.seeded), each seed's norm: (S,)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(() if seeds == 1 else (seeds,), device=next(module.parameters()).device)
    if seeds == 1:  # the norm of the per-tensor norms (clip_grad_norm_'s foreach kernel): no copy of the gradients
        return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    return torch.stack([g.reshape(seeds, -1).square().sum(dim=1) for g in grads]).sum(dim=0).sqrt()


def _backward(ctx: StepContext, loss: Tensor) -> None:
    """Backward of the loss; with S seeds of the seeds' own losses (S,) summed: each seed gets its own gradient."""
    (loss if ctx.seeds == 1 else loss.sum()).backward()


class FiniteWatch:
    """The first non-finite loss of each net since the last check. A step only keeps a reference to its loss (no
    kernel, no host read); `found()` stacks an epoch's losses once, finds the first non-finite one of each net
    on the device and reads the result in one host read; `check()` raises Diverged naming it."""

    def __init__(self, seeds: int = 1):
        self.seeds = seeds  # a seed-batched run's losses are (S,): one verdict per seed
        self.seen: dict[str, tuple[list[int], list[Tensor]]] = {"D": ([], []), "G": ([], [])}

    def see(self, net: str, loss: Tensor, step: int) -> None:
        steps, losses = self.seen[net]
        steps.append(step)
        losses.append(loss.detach())

    def _first_bad(self, losses: list[Tensor], device: torch.device) -> Tensor:
        """(2, S): per seed, the index of the first non-finite loss (-1: none) and its value."""
        if not losses:
            return torch.tensor([[-1.0] * self.seeds, [0.0] * self.seeds], device=device)
        stacked = torch.stack(losses).float().reshape(len(losses), self.seeds)  # (steps, S)
        bad = ~torch.isfinite(stacked)
        index = bad.int().argmax(dim=0)  # the first True (argmax returns the first maximum)
        value = stacked.gather(0, index.unsqueeze(0)).squeeze(0)
        return torch.stack([torch.where(bad.any(dim=0), index.float(), -1.0), value])

    def found(self) -> list[str | None]:
        """Per seed, the first non-finite loss as a message (None where all were finite); forgets what it saw."""
        device = next((losses[0].device for _, losses in self.seen.values() if losses), torch.device("cpu"))
        firsts = torch.stack([self._first_bad(losses, device) for _, losses in self.seen.values()]).tolist()
        out: list[str | None] = []
        for seed in range(self.seeds):
            bad = [(self.seen[net][0][int(f[0][seed])], f[1][seed], net)
                   for net, f in zip(self.seen, firsts) if f[0][seed] >= 0]
            step, value, net = min(bad, key=lambda b: (b[0], b[2])) if bad else (0, 0.0, "")
            out.append(f"{net} loss is {value} at {net} step {step}" if bad else None)
        self.seen = {"D": ([], []), "G": ([], [])}
        return out

    def check(self) -> None:
        """Raise Diverged with the first non-finite loss of a one-seed run."""
        message = self.found()[0]
        if message:
            raise Diverged(message)


def draw_order(n: int, gen: torch.Generator, device: torch.device, weights: Tensor | None = None) -> Tensor:
    """The row order of one pass over n data rows: a permutation, or, given data weights (N,), n rows drawn by
    them with replacement (AdaGAN's reweighted data, Tolstikhin et al. 2017, Alg. 1). (n,)"""
    if weights is None:
        return torch.randperm(n, generator=gen, device=device)
    return torch.multinomial(weights, n, replacement=True, generator=gen)


def epoch_logs(ctx: StepContext, x: Tensor, batch: int, g_steps: int, epoch: int, epochs: int) -> list[Logs]:
    """One epoch of `g_steps` training steps, each seed drawing its real batches from its own permutation of `x`
    (`batch` rows a D step, seeds side by side); the steps' statistics, left on the device."""
    n = len(x)
    orders = [draw_order(n, g, x.device, ctx.data_weights) for g in ctx.gens]
    pos = 0

    def next_real() -> Tensor:  # (S * batch, ...): seed after seed
        nonlocal orders, pos
        if pos + batch > n:
            orders, pos = [draw_order(n, g, x.device, ctx.data_weights) for g in ctx.gens], 0
        rows = orders[0][pos : pos + batch] if len(orders) == 1 else torch.cat([o[pos : pos + batch] for o in orders])
        pos += batch
        return x[rows]

    logs = []
    ctx.g.train(), ctx.d.train()
    for i in range(g_steps):
        ctx.progress = (epoch + i / g_steps) / epochs
        logs.append(train_step(ctx, next_real))
    return logs


def epoch_means(logs: list[Logs], steps: int, seeds: int = 1) -> list[dict[str, float]]:
    """Each statistic's sum over an epoch's steps / `steps`, per seed (a remedy's group-wide value is every
    seed's): a few ops per statistic at the end of the epoch and one host read, nothing per step."""
    keys = list(dict.fromkeys(k for step in logs for k in step))
    if not keys:
        return [{} for _ in range(seeds)]
    sums = [torch.stack([step[k] for step in logs if k in step]).double().sum(dim=0).expand(seeds) for k in keys]
    rows = (torch.stack(sums) / steps).T.tolist()  # (seeds, keys)
    return [dict(zip(keys, row)) for row in rows]


def d_step(ctx: StepContext, real: Tensor, fake: Tensor, z: Tensor | None = None) -> Logs:
    """One D update on a real batch (or what a d_real hook puts in its place) and a (detached) fake batch
    (latent z: a joint D pairs it with the fake batch), with target, input and penalty hooks."""
    logs: Logs = {}
    real_terms: list[Tensor] = []
    with ctx.autocast():  # the forward region (bf16 when asked); backward runs outside it
        for hook, p in ctx.hooks("d_real"):
            real, term, extra = hook(ctx, p, real)
            real_terms.append(term)
            logs.update(extra)
        with torch.no_grad():  # D's inputs carry no graph (an encoder's code is a constant for D's update)
            real_in, fake_in = d_view(ctx, real), d_view(ctx, fake, z)
        loss = _adversarial_d(ctx, real_in, fake_in, logs)  # () or, with S seeds, (S,)
        extras = ctx.hooks("d_extra")
        if real_terms or extras:
            logs["loss/d_base"] = loss.detach()  # D's adversarial loss alone
        for term in real_terms:
            loss = loss + term
        for hook, p in extras:
            term, extra = hook(ctx, p, real_in, fake_in)
            loss = loss + term
            logs.update(extra)
    ctx.watch.see("D", loss, ctx.counts["d_steps"])
    ctx.opt_d.zero_grad(set_to_none=True)
    _backward(ctx, loss)
    logs["grad/d"] = _grad_norm(ctx.d, ctx.seeds)
    ctx.opt_d.step()
    ctx.counts["d_steps"] += 1
    for hook, p in ctx.hooks("after_d"):
        logs.update(hook(ctx, p))
    logs["loss/d"] = loss.detach()
    return logs


def _adversarial_d(ctx: StepContext, real_in: Tensor, fake_in: Tensor, logs: Logs) -> Tensor:
    """D's adversarial loss on its logits, with the target hooks; logs D(x) and D(G(z)). Loss 'none' (a remedy
    carries the whole objective: mmd_critic) gives 0 without running D, whose logits would be computed for
    nothing (MMD-GAN's D step cost a third more with them)."""
    if not ctx.loss.adversarial:
        return torch.zeros(() if ctx.seeds == 1 else (ctx.seeds,), device=real_in.device)
    real_logits, fake_logits = ctx.d(real_in), ctx.d(fake_in)  # (B,), (B,) or (B/m,) when packed
    rt, ft = torch.ones_like(real_logits), torch.zeros_like(fake_logits)
    for hook, p in ctx.hooks("targets"):
        rt, ft, extra = hook(ctx, p, rt, ft)
        logs.update(extra)
    logs["d/real"], logs["d/fake"] = (ctx.per_seed(d_probability, logits) for logits in (real_logits, fake_logits))
    return ctx.per_seed(ctx.loss.d, real_logits, fake_logits, rt, ft)


def g_step(ctx: StepContext, real: Tensor, fake: Tensor, z: Tensor | None = None) -> Logs:
    """One G update: G's loss against D (or the D a g_critic hook gives, e.g. unrolled), or a g_loss hook's, plus
    the g_extra terms; z is the fake batch's latent (a joint D pairs it with the fake batch)."""
    logs: Logs = {}
    d_fn: DFn = ctx.d
    with ctx.autocast():
        for hook, p in ctx.hooks("g_critic"):
            d_fn, extra = hook(ctx, p, real, fake)
            logs.update(extra)
        replaced = ctx.hooks("g_loss")
        if replaced:
            hook, p = replaced[0]
            loss, extra = hook(ctx, p, real, fake, d_fn)
            logs.update(extra)
        else:
            loss = ctx.per_seed(ctx.loss.g, d_fn(d_view(ctx, fake, z)))
        for hook, p in ctx.hooks("g_extra"):
            if z is None:
                raise ValueError("g_step: a g_extra term needs the fake batch's latent z")
            logs["loss/g_base"] = loss.detach()
            term, extra = hook(ctx, p, real, fake, z)
            loss = loss + term
            logs.update(extra)
    ctx.watch.see("G", loss, ctx.counts["g_steps"])
    ctx.opt_g.zero_grad(set_to_none=True)
    _backward(ctx, loss)
    logs["grad/g"] = _grad_norm(ctx.g, ctx.seeds)
    ctx.opt_g.step()
    ctx.counts["g_steps"] += 1
    logs["loss/g"] = loss.detach()
    return logs


BURST_FIRST, BURST_EVERY = 25, 500  # WGAN's code (main.py: `gen_iterations < 25 or gen_iterations % 500 == 0`)


def d_steps(ctx: StepContext) -> int:
    """D steps before the next G step: n_critic, or critic_burst before each of the first 25 G steps and every
    500th, counted in G updates done (Arjovsky et al. 2017, code; MMD-GAN's mmd_gan.py copies it)."""
    g = ctx.counts["g_steps"]
    return ctx.critic_burst if ctx.critic_burst and (g < BURST_FIRST or g % BURST_EVERY == 0) else ctx.n_critic


def burst_steps(g_updates: int) -> int:
    """How many of a trial's first `g_updates` G steps get critic_burst D steps (`d_steps`): the first 25, then
    the multiples of 500 below g_updates (none of which is among the first 25)."""
    return min(g_updates, BURST_FIRST) + max(0, (g_updates - 1) // BURST_EVERY)


def train_step(ctx: StepContext, next_real: Callable[[], Tensor]) -> Logs:
    """`d_steps` D updates (n_critic, or WGAN's burst; a fresh real and fake batch each), then one G update on the
    last fake batch (then g_updates - 1 more on the same latents, G(z) recomputed each time); with simultaneous
    updates the G update comes before the last D update, so each is taken from the parameters both had before it
    (the Unrolled GAN notebook's `sess.run([g_train_op, d_train_op])`)."""
    logs: Logs = {}
    d_logs: list[Logs] = []
    n = d_steps(ctx)
    for i in range(n):
        real = next_real()
        z = ctx.z(len(real))
        last = i == n - 1
        with ctx.autocast():
            if not last:
                with torch.no_grad():
                    fake = ctx.g(z)
            else:
                fake = ctx.g(z)  # kept with its graph for the G update
        if last and ctx.simultaneous:
            logs.update(_g_update(ctx, real, fake, z))
        d_logs.append(d_step(ctx, real, fake.detach(), z))
    logs.update(d_logs[0] if len(d_logs) == 1 else _mean_of(d_logs))
    if not ctx.simultaneous:
        logs.update(_g_update(ctx, real, fake, z))
    for _ in range(ctx.g_updates - 1):  # DCGAN-tensorflow's second `g_optim` run: G(z) again, same z
        with ctx.autocast():
            fake = ctx.g(z)
        logs.update(_g_update(ctx, real, fake, z))
    return logs


def _mean_of(steps: list[Logs]) -> Logs:
    """Each D statistic's mean over a G step's n_critic D steps (a few ops a G step, no host read)."""
    keys = dict.fromkeys(k for step in steps for k in step)
    return {k: torch.stack([step[k] for step in steps if k in step]).float().mean(dim=0) for k in keys}


def _g_update(ctx: StepContext, real: Tensor, fake: Tensor, z: Tensor) -> Logs:
    """G's step with D's parameters out of autograd (G's backward needs no D parameter grads); z is the fake
    batch's latent."""
    ctx.d.requires_grad_(False)
    try:
        return g_step(ctx, real, fake, z)
    finally:
        ctx.d.requires_grad_(True)
