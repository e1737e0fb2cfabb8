"""GAN losses as pairs of plain functions of discriminator logits (shapes: logits (B,), targets (B,))."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

Half = Callable[[Tensor, Tensor], Tensor]  # (logits, targets) -> scalar: D's loss on one source
GLoss = Callable[[Tensor], Tensor]  # (fake logits) -> scalar


@dataclass(frozen=True)
class Loss:
    """A GAN objective: D's loss as its real and fake halves, G's loss; `uses_targets` says whether label remedies
    can act on it; `adversarial: False` (loss 'none') says D's logits play no part, so the step does not compute
    them."""

    d_real: Half
    d_fake: Half
    g: GLoss
    uses_targets: bool
    doc: str
    adversarial: bool = True

    def d(self, real: Tensor, fake: Tensor, real_targets: Tensor, fake_targets: Tensor) -> Tensor:
        """D's loss: the real half on the real logits plus the fake half on the fake logits."""
        return self.d_real(real, real_targets) + self.d_fake(fake, fake_targets)


def _bce(logits: Tensor, targets: Tensor) -> Tensor:
    """Binary cross-entropy on logits with (possibly flipped or smoothed) targets (Goodfellow et al. 2014)."""
    return F.binary_cross_entropy_with_logits(logits, targets)


def _minimax_g(fake: Tensor) -> Tensor:
    """Saturating G loss E log(1 - D(G(z))) (Goodfellow et al. 2014)."""
    return -F.softplus(fake).mean()


def _nonsaturating_g(fake: Tensor) -> Tensor:
    """Non-saturating G loss -E log D(G(z)) (Goodfellow et al. 2014)."""
    return F.softplus(-fake).mean()


def _critic_real(real: Tensor, targets: Tensor) -> Tensor:
    """The critic's real half -E D(x) (Arjovsky et al. 2017)."""
    return -real.mean()


def _critic_fake(fake: Tensor, targets: Tensor) -> Tensor:
    """The critic's fake half E D(G(z)) (Arjovsky et al. 2017)."""
    return fake.mean()


def _critic_g(fake: Tensor) -> Tensor:
    """G loss -E D(G(z)) for WGAN and hinge (Arjovsky et al. 2017; Lim and Ye 2017)."""
    return -fake.mean()


def _hinge_real(real: Tensor, targets: Tensor) -> Tensor:
    """Hinge real half E relu(1 - D(x)) (Lim and Ye 2017; Miyato et al. 2018)."""
    return F.relu(1.0 - real).mean()


def _hinge_fake(fake: Tensor, targets: Tensor) -> Tensor:
    """Hinge fake half E relu(1 + D(G(z))) (Lim and Ye 2017; Miyato et al. 2018)."""
    return F.relu(1.0 + fake).mean()


def _ls(logits: Tensor, targets: Tensor) -> Tensor:
    """Least-squares half with 0/1 targets (Mao et al. 2017)."""
    return 0.5 * ((logits - targets) ** 2).mean()


def _ls_g(fake: Tensor) -> Tensor:
    """Least-squares G loss (Mao et al. 2017)."""
    return 0.5 * ((fake - 1.0) ** 2).mean()


def _zero(logits: Tensor, targets: Tensor) -> Tensor:
    """No adversarial term for D (the remedy that needs loss 'none' adds D's objective); keeps the graph."""
    return 0.0 * logits.mean()


def _zero_g(fake: Tensor) -> Tensor:
    """No adversarial term for G (the remedy's g_loss replaces it)."""
    return 0.0 * fake.mean()


LOSSES: dict[str, Loss] = {
    "minimax": Loss(_bce, _bce, _minimax_g, True, "Goodfellow et al. 2014, saturating"),
    "nonsaturating": Loss(_bce, _bce, _nonsaturating_g, True, "Goodfellow et al. 2014, -log D trick"),
    "wasserstein": Loss(_critic_real, _critic_fake, _critic_g, False, "Arjovsky et al. 2017"),
    "hinge": Loss(_hinge_real, _hinge_fake, _critic_g, False, "Lim and Ye 2017"),
    "least_squares": Loss(_ls, _ls, _ls_g, True, "Mao et al. 2017"),
    "kl": Loss(_bce, _bce, _critic_g, True, "BCE D; G minimises -E D(G(z)), D's logit as the log density ratio: the "
               "KL term of VEEGAN's objective (Srivastava et al. 2017)"),
    "none": Loss(_zero, _zero, _zero_g, False, "no adversarial term: a remedy carries the objective (mmd_critic)",
                 adversarial=False),
}


def d_probability(logits: Tensor) -> Tensor:
    """Mean D output as a probability (sigmoid of the logits), for logging D(x) and D(G(z)); a 0-dim tensor."""
    return torch.sigmoid(logits.detach()).mean()
