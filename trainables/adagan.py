"""AdaGAN's rounds (Tolstikhin et al. 2017, Alg. 1; tolstikhin/adagan, adagan.py and gan.py): T GANs trained in
turn, each on the data reweighted by a classifier of the data vs the mixture of the GANs before it.

The run's epochs split evenly into `rounds`. Round 1 is a plain GAN. At the first epoch of round t >= 2 the
finished G joins the mixture (mixture weights: old x (1 - beta_{t-1}), then beta_{t-1}); a fresh classifier (D's
architecture, no remedies) is trained on data vs mixture samples, its P(real) d_i gives the ratios h(d_i) =
(1 - d_i) / d_i and the data weights W_t (trainables.mixture); round t's fresh G and D then train on batches
drawn by W_t (StepContext.data_weights). Evaluation scores the mixture of the finished components and the G in
training, with weight beta_t for the latter: the mixture the trial would be if its round ended now.
"""
from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainables.evaluate import eval_mode, generate
from trainables.mixture import DATA_WEIGHTS, density_ratios, mix, next_beta, sample_mixture
from trainables.models import MODELS, Discriminator
from trainables.step import OPTIMIZERS, build_context

if TYPE_CHECKING:
    from trainables.config import TrialConfig
    from trainables.remedies.adagan import AdaGANParams
    from trainables.run import GANRun


def round_seed(seed: int, t: int) -> int:
    """The global-RNG seed round t's fresh nets are initialised from (a fresh GAN per round, as the authors')."""
    return seed + 1_000_003 * t


def build_classifier(cfg: TrialConfig, shape: tuple[int, ...]) -> Discriminator:
    """The mixture classifier: D's architecture without remedies (authors' 'CLASSIFIER' scope, gan.py)."""
    built = MODELS[cfg.model.name](shape, **cfg.model.kwargs)
    head = nn.Linear(built.feat_dim, 1)
    built.init(head)
    return Discriminator(built.features, head, built.init)


def train_classifier(c: nn.Module, cfg: TrialConfig, real: Tensor, fake: Tensor, steps: int,
                     gen: torch.Generator) -> Tensor:
    """Train c to tell real (1) from fake (0) with BCE for `steps` batches of train.batch_size each (authors'
    _train_mixture_discriminator_internal, optimiser at the trial's lr); its P(real) on every real row. (N,)"""
    train, b = cfg.train, cfg.train.batch_size
    opt = OPTIMIZERS[train.optimizer](c.parameters(), train.lr, train.betas)
    c.train()
    for _ in range(steps):
        r = real[torch.randint(len(real), (b,), generator=gen, device=real.device)]
        f = fake[torch.randint(len(fake), (b,), generator=gen, device=fake.device)]
        lr_, lf = c(r), c(f)  # (b,), (b,) logits
        loss = (F.binary_cross_entropy_with_logits(lr_, torch.ones_like(lr_))
                + F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad(), eval_mode(c):
        return torch.cat([torch.sigmoid(c(real[i : i + 2000])) for i in range(0, len(real), 2000)])


def frozen(g: nn.Module) -> nn.Module:
    """A finished component: a copy of G with no gradients (kept in its mode: sampling as G is evaluated)."""
    return copy.deepcopy(g).requires_grad_(False)


class AdaGAN:
    """The rounds record of one trial: finished components, their mixture weights, the data weights."""

    def __init__(self, cfg: TrialConfig, p: AdaGANParams, run: GANRun):
        self.cfg, self.p = cfg, p
        self.per_round = cfg.train.epochs // p.rounds
        self.components: list[nn.Module] = []
        self.weights = torch.zeros(0, dtype=torch.float64)  # (k,) mixture weights of the finished components
        self.data_weights: Tensor | None = None  # (N,) W_t of the round in training; None in round 1 (uniform)
        self.stats: dict[str, float] = {}  # the current round's data-weight and classifier statistics
        u_gen = torch.Generator().manual_seed(30_000 + cfg.seed)  # fixed component draws of the eval latents
        self.u_eval = torch.rand(len(run.z_eval), generator=u_gen, dtype=torch.float64).to(run.device)

    @property
    def round(self) -> int:
        """The round in training (1-based)."""
        return len(self.components) + 1

    def beta(self, t: int) -> float:
        return next_beta(self.p.beta, t, self.p.beta_constant)

    def mixture_weights(self) -> Tensor:
        """Weights of the finished components and the G in training (beta_t), summing to 1. (round,)"""
        return mix(self.weights, self.beta(self.round))

    def begin(self, run: GANRun) -> None:
        due = min(run.epoch // self.per_round, self.p.rounds - 1)  # finished components at this epoch
        while len(self.components) < due:
            self._next_round(run)

    def _next_round(self, run: GANRun) -> None:
        """Close the round in training and start the next: component, weights, classifier, W_t, fresh nets."""
        self.components.append(frozen(run.ctx.g))
        self.weights = mix(self.weights, self.beta(len(self.components)))
        beta, cfg = self.beta(self.round), self.cfg
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(round_seed(cfg.seed, self.round))
            classifier = build_classifier(cfg, run.data.shape).to(run.device)
            fresh = build_context(cfg, run.data.shape, run.gen, run.device)
        fake = self._mixture_pool(run)
        steps = self.p.classifier_epochs * run.g_steps() * run.ctx.n_critic
        prob = train_classifier(classifier, cfg, run.x, fake, steps, run.gen)
        w = DATA_WEIGHTS[self.p.weights](density_ratios(prob.double()), beta, self.p.topk)
        self.data_weights = w.float()
        n = len(w)
        self.stats = {"adagan/classifier_real": float(prob.mean()), "adagan/data_weight_max": float(w.max() * n),
                      "adagan/data_ess": float(1.0 / (n * w.square().sum())),
                      "adagan/data_zero": float((w == 0).double().mean())}
        if cfg.train.channels_last and run.x.dim() == 4:
            fresh.g.to(memory_format=torch.channels_last)
            fresh.d.to(memory_format=torch.channels_last)
        ctx = run.ctx
        ctx.g, ctx.d, ctx.opt_g, ctx.opt_d = fresh.g, fresh.d, fresh.opt_g, fresh.opt_d
        ctx.data_weights = self.data_weights

    def _mixture_pool(self, run: GANRun) -> Tensor:
        """Samples of the finished mixture for the classifier: len(data) by default, as the authors'. (M, ...)"""
        n = self.p.mixture_samples or len(run.x)
        z = run.ctx.latent((n, run.ctx.nz), generator=run.gen, device=run.device)
        u = torch.rand(n, generator=run.gen, device=run.device, dtype=torch.float64)
        return sample_mixture([functools.partial(generate, c) for c in self.components], self.weights, z, u)

    def generate(self, g: nn.Module, z: Tensor) -> Tensor:
        if not self.components:  # round 1: the mixture is G
            return generate(g, z)
        nets = [functools.partial(generate, c) for c in [*self.components, g]]
        return sample_mixture(nets, self.mixture_weights(), z, self.u_eval[: len(z)])

    def report(self, run: GANRun) -> dict[str, float]:
        """The round, its beta, the largest mixture weight, W_t's statistics, and the G in training alone."""
        alone = run.scorer.score(*run.scorer.modes(generate(run.ctx.g, run.z_eval)))
        out = {"adagan/round": float(self.round), "adagan/beta": self.beta(self.round),
               "adagan/weight_max": float(self.mixture_weights().max()), **self.stats}
        out.update({f"adagan/component/{k.split('/', 1)[-1]}": v for k, v in alone.items()})
        return out

    def grids(self, run: GANRun, n: int) -> dict[str, Tensor]:
        """Each component's samples on the first n fixed latents, the one in training last."""
        z = run.z_eval[:n]
        return {f"component_{k + 1:02d}": generate(c, z) for k, c in enumerate([*self.components, run.ctx.g])}

    def state_dict(self) -> dict[str, Any]:
        return {"components": [c.state_dict() for c in self.components], "weights": self.weights.clone(),
                "data_weights": None if self.data_weights is None else self.data_weights.cpu(),
                "stats": dict(self.stats)}

    def load_state_dict(self, state: Mapping[str, Any], run: GANRun) -> None:
        self.components = []
        for s in state["components"]:
            c = frozen(run.ctx.g)
            c.load_state_dict(s)
            self.components.append(c)
        self.weights = state["weights"].clone()
        dw = state["data_weights"]
        self.data_weights = None if dw is None else dw.to(run.device)
        run.ctx.data_weights = self.data_weights
        self.stats = dict(state["stats"])
