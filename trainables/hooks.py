"""The remedy protocol and the step context it acts on: one module, every hook typed, the context first.

A remedy is a frozen record of optional hooks at fixed points of the shared step (trainables.step) and a
parameter record type (`params`): a frozen, validated dataclass whose fields are the remedy's keyword
arguments with their canonical defaults. Build-time hooks take the trial config as their context; step-time
hooks take the StepContext. `d_view` is the one definition of what D sees.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import torch
from pydantic import ConfigDict
from pydantic.dataclasses import dataclass as pydantic_dataclass
from torch import Tensor, nn

if TYPE_CHECKING:
    from trainables.config import TrainConfig, TrialConfig
    from trainables.losses import Loss
    from trainables.models import Built, Discriminator
    from trainables.rounds import Rounds
    from trainables.run import GANRun

Logs = dict[str, Tensor]  # 0-dim tensors on the trial's device: read once an epoch, never per step
DFn = Callable[[Tensor], Tensor]  # (B, *shape) -> (B,) D logits

# The parameter record of a remedy: `@params class P: rate: float = 0.05` -> P(rate=0.1), validated, frozen.
params = pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid", allow_inf_nan=False, strict=False))


@params
class NoParams:
    """A remedy without parameters."""


@dataclass
class StepContext:
    """Everything one training step touches: nets, optimisers, loss, remedies and the trial's RNG."""

    g: nn.Module
    d: Discriminator
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    loss: Loss
    remedies: list[tuple[str, Remedy, Any]]  # (name, remedy, its parameter record), in spec order
    nz: int
    n_critic: int
    gen: torch.Generator
    device: torch.device
    progress: float = 0.0  # fraction of training done, for annealed remedies
    training: bool = True  # False while evaluating: stochastic input hooks (instance noise) are off
    counts: dict[str, int] = field(default_factory=lambda: {"d_steps": 0, "g_steps": 0})
    watch: Any = None  # trainables.step.FiniteWatch: non-finite losses, recorded on the device
    bf16: bool = False  # forward passes and losses under bf16 autocast
    simultaneous: bool = False  # train.updates: G's and D's last step both from the same parameters
    g_updates: int = 1  # train.g_updates: G updates a training step, each on a fresh G(z) of the same z
    critic_burst: int = 0  # train.critic_burst: D steps before the first 25 G steps and every 500th (0: n_critic)
    latent: Callable[..., Tensor] = torch.randn  # G's prior (trainables.models.LATENTS), torch.randn's signature
    # seeds as a batch dimension (trainables.seeds): S seeds' rows, seed after seed, through seed-batched nets
    # (trainables.models.seeded); seed s draws its rows from gens[s]. One seed: gens is (gen,)
    seeds: int = 1
    gens: tuple[torch.Generator, ...] = ()
    # a distribution over the data rows (N,) that real batches are drawn by, with replacement (AdaGAN's W_t,
    # trainables.remedies.adagan); None: each pass over the data is a permutation
    data_weights: Tensor | None = None

    def autocast(self) -> Any:
        """The forward region of a step: bf16 autocast when the trial asks for it, else a no-op context."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def draw(self, sample: Callable[..., Tensor], shape: tuple[int, ...], dtype: torch.dtype | None = None) -> Tensor:
        """A random tensor from the trial's RNG (`sample` is torch.rand or torch.randn); with S seeds its rows
        are split evenly and each seed's rows come from that seed's own stream, as in a run of its own."""
        if self.seeds == 1:
            return sample(shape, generator=self.gen, device=self.device, dtype=dtype)
        rows = (shape[0] // self.seeds, *shape[1:])
        return torch.cat([sample(rows, generator=g, device=self.device, dtype=dtype) for g in self.gens])

    def per_seed(self, fn: Callable[..., Tensor], *rows: Tensor) -> Tensor:
        """fn on each seed's rows: fn(*rows) for one seed; (S,) values of fn vmapped over the seeds otherwise."""
        if self.seeds == 1:
            return fn(*rows)
        return torch.func.vmap(fn)(*(x.reshape(self.seeds, -1, *x.shape[1:]) for x in rows))

    def z(self, n: int) -> Tensor:
        """Latent batch from G's prior (N(0, I) unless the model says otherwise). (n, nz)"""
        return self.draw(self.latent, (n, self.nz))

    def hooks(self, point: str) -> list[tuple[Callable[..., Any], Any]]:
        """(hook, params) of every remedy that has a hook at `point`, in spec order."""
        return [(getattr(r, point), p) for _, r, p in self.remedies if getattr(r, point) is not None]


class InputsHook(Protocol):
    def __call__(self, ctx: StepContext, p: Any, x: Tensor) -> Tensor: ...


class TargetsHook(Protocol):
    def __call__(self, ctx: StepContext, p: Any, rt: Tensor, ft: Tensor) -> tuple[Tensor, Tensor, Logs]: ...


class DRealHook(Protocol):
    def __call__(self, ctx: StepContext, p: Any, x: Tensor) -> tuple[Tensor, Tensor, Logs]: ...


class DExtraHook(Protocol):
    def __call__(self, ctx: StepContext, p: Any, real: Tensor, fake: Tensor) -> tuple[Tensor, Logs]: ...


class AfterDHook(Protocol):
    def __call__(self, ctx: StepContext, p: Any) -> Logs: ...


class GCriticHook(Protocol):
    def __call__(self, ctx: StepContext, p: Any, real: Tensor, fake: Tensor) -> tuple[DFn, Logs]: ...


class GLossHook(Protocol):
    def __call__(self, ctx: StepContext, p: Any, real: Tensor, fake: Tensor, d_fn: DFn) -> tuple[Tensor, Logs]: ...


class CodeHook(Protocol):
    def __call__(self, ctx: StepContext, p: Any, x: Tensor, z: Tensor | None) -> Tensor: ...


class GExtraHook(Protocol):
    def __call__(self, ctx: StepContext, p: Any, real: Tensor, fake: Tensor, z: Tensor) -> tuple[Tensor, Logs]: ...


class ModelHook(Protocol):
    def __call__(self, cfg: TrialConfig, p: Any, kwargs: dict[str, Any]) -> dict[str, Any]: ...


class WrapDHook(Protocol):
    def __call__(self, cfg: TrialConfig, p: Any, d: Discriminator, data_shape: tuple[int, ...]) -> Discriminator: ...


class WrapGHook(Protocol):
    def __call__(self, cfg: TrialConfig, p: Any, built: Built, data_shape: tuple[int, ...]) -> nn.Module: ...


class TrainHook(Protocol):
    def __call__(self, cfg: TrialConfig, p: Any, train: TrainConfig) -> TrainConfig: ...


class RoundsHook(Protocol):
    def __call__(self, cfg: TrialConfig, p: Any, run: GANRun) -> Rounds: ...


# Hook points at which only one remedy may act: a second one would silently shadow the first.
EXCLUSIVE_HOOKS = ("d_real", "g_critic", "g_loss", "code", "wrap_g", "rounds")


@dataclass(frozen=True)
class Remedy:
    """Hooks (all optional), called by the step in this order; `params` is the parameter record type.

    model(cfg, p, model_kwargs) -> model_kwargs    build time, before the nets exist (packing)
    wrap_d(cfg, p, d, data_shape) -> d             build time, on the Discriminator (spectral norm, minibatch heads,
                                                   MMD-GAN's decoder); data_shape is one sample's
    wrap_g(cfg, p, built, data_shape) -> g         build time: G's side with nets trained by G's optimiser (an
                                                   encoder: models.encoder.WithEncoder); exclusive
    train(cfg, p, train) -> train                  at resolution: the effective optimiser settings (TTUR, n_critic)
    inputs(ctx, p, x) -> x                         every D input, real or fake, D and G steps, probes (d_view)
    code(ctx, p, x, z) -> c                        a joint D's latent column block (d_view): the encoder's code
                                                   of data x (z None), the latent z of G's samples; exclusive
    d_real(ctx, p, x) -> (real, term, logs)        D's real batch in place of the data batch x, and a term added
                                                   to D's loss (MDGAN's diffusion step: D judges G(E(x)) against
                                                   G(z); its manifold D learns through the term); exclusive
    targets(ctx, p, rt, ft) -> (rt, ft, logs)      D's BCE/LS targets (label flipping, smoothing)
    d_extra(ctx, p, real, fake) -> (term, logs)    added to D's loss (gradient penalty, R1); inputs as D saw them
    after_d(ctx, p) -> logs                        after each D update (weight clipping)
    g_critic(ctx, p, real, fake) -> (d_fn, logs)   the D that G's loss is taken against (unrolled); exclusive
    g_loss(ctx, p, real, fake, d_fn) -> (loss, logs)  replaces G's loss (feature matching); exclusive
    g_extra(ctx, p, real, fake, z) -> (term, logs) added to G's loss (a reconstruction term, an encoder's term);
                                                   z is the fake batch's latent
    rounds(cfg, p, run) -> Rounds                  build time: a trial that trains a sequence of GANs (AdaGAN);
                                                   trainables.rounds; exclusive
    """

    doc: str
    params: type = NoParams
    model: ModelHook | None = None
    wrap_d: WrapDHook | None = None
    train: TrainHook | None = None
    inputs: InputsHook | None = None
    d_real: DRealHook | None = None
    targets: TargetsHook | None = None
    d_extra: DExtraHook | None = None
    after_d: AfterDHook | None = None
    g_critic: GCriticHook | None = None
    g_loss: GLossHook | None = None
    wrap_g: WrapGHook | None = None
    code: CodeHook | None = None
    g_extra: GExtraHook | None = None
    rounds: RoundsHook | None = None
    needs_targets: bool = False  # only meaningful with a loss that uses targets (BCE, least squares)
    conflicts: tuple[str, ...] = ()  # remedies it cannot be combined with
    sets: tuple[str, ...] = ()  # train.* keys its `train` hook sets: a spec may not set them too
    # its hooks act on each row (or pack) alone and draw through ctx.draw, so seeds can share a batch (seeds.py)
    seed_separable: bool = False
    loss: str | None = None  # the loss it needs ('none' for a remedy whose hooks carry the whole objective)
    losses: tuple[str, ...] = ()  # the losses it works with (empty: any)
    models: tuple[str, ...] = ()  # the model families it works with (empty: any)


def d_view(ctx: StepContext, x: Tensor, z: Tensor | None = None) -> Tensor:
    """x as D sees it: every remedy's `inputs` hook in spec order (packing, instance noise while training); a
    joint D (a `code` hook) sees (x, code) side by side: (B, numel + k), the code of data x from the encoder,
    of G's samples their latent z."""
    coded = ctx.hooks("code")
    code = coded[0][0](ctx, coded[0][1], x, z) if coded else None  # the encoder sees x before the inputs hooks
    for hook, p in ctx.hooks("inputs"):
        x = hook(ctx, p, x)
    return x if code is None else torch.cat([x.flatten(1), code.to(x.dtype)], dim=1)
