"""GAN losses as pairs of plain functions of discriminator logits (shapes: logits (B,), targets (B,))."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

DLoss = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]  # (real, fake, real_targets, fake_targets)
GLoss = Callable[[Tensor], Tensor]  # (fake logits) -> scalar


@dataclass(frozen=True)
class Loss:
    """A GAN objective: D and G losses; `uses_targets` says whether label remedies can act on it."""

    d: DLoss
    g: GLoss
    uses_targets: bool
    doc: str


def _bce_d(real: Tensor, fake: Tensor, rt: Tensor, ft: Tensor) -> Tensor:
    """Binary cross-entropy on logits with (possibly flipped or smoothed) targets (Goodfellow et al. 2014)."""
    return F.binary_cross_entropy_with_logits(real, rt) + F.binary_cross_entropy_with_logits(fake, ft)


def _minimax_g(fake: Tensor) -> Tensor:
    """Saturating G loss E log(1 - D(G(z))) (Goodfellow et al. 2014)."""
    return -F.softplus(fake).mean()


def _nonsaturating_g(fake: Tensor) -> Tensor:
    """Non-saturating G loss -E log D(G(z)) (Goodfellow et al. 2014)."""
    return F.softplus(-fake).mean()


def _wasserstein_d(real: Tensor, fake: Tensor, rt: Tensor, ft: Tensor) -> Tensor:
    """Critic loss E D(G(z)) - E D(x) (Arjovsky et al. 2017)."""
    return fake.mean() - real.mean()


def _critic_g(fake: Tensor) -> Tensor:
    """G loss -E D(G(z)) for WGAN and hinge (Arjovsky et al. 2017; Lim and Ye 2017)."""
    return -fake.mean()


def _hinge_d(real: Tensor, fake: Tensor, rt: Tensor, ft: Tensor) -> Tensor:
    """Hinge D loss E relu(1 - D(x)) + E relu(1 + D(G(z))) (Lim and Ye 2017; Miyato et al. 2018)."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def _ls_d(real: Tensor, fake: Tensor, rt: Tensor, ft: Tensor) -> Tensor:
    """Least-squares D loss with 0/1 targets (Mao et al. 2017)."""
    return 0.5 * ((real - rt) ** 2).mean() + 0.5 * ((fake - ft) ** 2).mean()


def _ls_g(fake: Tensor) -> Tensor:
    """Least-squares G loss (Mao et al. 2017)."""
    return 0.5 * ((fake - 1.0) ** 2).mean()


def _zero_d(real: Tensor, fake: Tensor, rt: Tensor, ft: Tensor) -> Tensor:
    """No adversarial term for D (the remedy that needs loss 'none' adds D's objective); keeps the graph."""
    return 0.0 * (real.mean() + fake.mean())


def _zero_g(fake: Tensor) -> Tensor:
    """No adversarial term for G (the remedy's g_loss replaces it)."""
    return 0.0 * fake.mean()


LOSSES: dict[str, Loss] = {
    "minimax": Loss(_bce_d, _minimax_g, True, "Goodfellow et al. 2014, saturating"),
    "nonsaturating": Loss(_bce_d, _nonsaturating_g, True, "Goodfellow et al. 2014, -log D trick"),
    "wasserstein": Loss(_wasserstein_d, _critic_g, False, "Arjovsky et al. 2017"),
    "hinge": Loss(_hinge_d, _critic_g, False, "Lim and Ye 2017"),
    "least_squares": Loss(_ls_d, _ls_g, True, "Mao et al. 2017"),
    "kl": Loss(_bce_d, _critic_g, True, "BCE D; G minimises -E D(G(z)), D's logit as the log density ratio: the KL "
               "term of VEEGAN's objective (Srivastava et al. 2017)"),
    "none": Loss(_zero_d, _zero_g, False, "no adversarial term: a remedy carries the objective (mmd_critic)"),
}


def d_probability(logits: Tensor) -> Tensor:
    """Mean D output as a probability (sigmoid of the logits), for logging D(x) and D(G(z)); a 0-dim tensor."""
    return torch.sigmoid(logits.detach()).mean()
