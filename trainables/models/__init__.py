"""Model registry: short name -> builder of (G, D features) with flat keyword arguments."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from trainables.models.dcgan import dcgan
from trainables.models.dcgan_tf import dcgan_tf
from trainables.models.mlp import mlp


@dataclass(frozen=True)
class Built:
    """What a builder returns: G (z -> sample), D's feature extractor (x -> (B, feat_dim)) and sizes."""

    g: nn.Module
    features: nn.Module
    feat_dim: int
    nz: int
    init: Callable[[nn.Module], None]  # the model's init scheme, for D's head and layers remedies add
    latent: str = "normal"  # G's prior, a key of LATENTS


DECODER = "decoder"  # an autoencoder's decoder held in D's module (MMD-GAN): trained with D, outside its constraints


class Discriminator(nn.Module):
    """D = head(features(x)): features are what feature matching compares, head maps (B, F) -> (B,) logits."""

    def __init__(self, features: nn.Module, head: nn.Module, init: Callable[[nn.Module], None] | None = None):
        super().__init__()
        self.features = features
        self.head = head
        self.init = init  # the model's init scheme (Built.init): layers a remedy adds are initialised with it

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).view(-1)

    def constrained(self) -> list[nn.Module]:
        """D's modules that Lipschitz constraints (clipping, spectral norm) act on: all but a decoder's, as MMD-GAN's
        code clamps its encoder only (OctoberChang/MMD-GAN, mmd_gan.py: "do not clamp paramters of NetD decoder")."""
        skip = set(self.get_submodule(DECODER).modules()) if hasattr(self, DECODER) else set()
        return [m for m in self.modules() if m not in skip]


MODELS: dict[str, Callable[..., Built]] = {"mlp": mlp, "dcgan": dcgan, "dcgan_tf": dcgan_tf}


def _uniform(shape: tuple[int, ...], **kw: object) -> Tensor:
    """U(-1, 1) (DCGAN-tensorflow's `np.random.uniform(-1, 1, ...)`)."""
    return torch.rand(shape, **kw).mul_(2.0).sub_(1.0)  # type: ignore[call-overload]


# G's prior: name -> sampler with torch.randn's signature (shape, generator=, device=, dtype=)
LATENTS: dict[str, Callable[..., Tensor]] = {"normal": torch.randn, "uniform": _uniform}


def _zero_bias(m: nn.Module) -> None:
    """Zero a layer's bias where it has one (MMD-GAN's encoding, for one, is bias-free)."""
    bias = getattr(m, "bias", None)
    if isinstance(bias, torch.Tensor):
        nn.init.zeros_(bias)


def init_normal(module: nn.Module, std: float = 0.02) -> None:
    """DCGAN init (Radford et al. 2016): weights N(0, std), BatchNorm weights N(1, std), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            _zero_bias(m)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def init_orthogonal(module: nn.Module, gain: float = 1.4) -> None:
    """Orthogonal init with gain (the Unrolled GAN notebook, Metz et al. 2017)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight, gain)
            _zero_bias(m)


def init_orthogonal_tf1(module: nn.Module, gain: float = 1.4) -> None:
    """TensorFlow 1.0-1.2's `orthogonal_initializer` (init_ops.py `Orthogonal`), which the Unrolled GAN notebook ran
    (Metz et al. 2017; updated for TF 1.0 in 2017-04): the singular vectors of a U[0, 1) matrix, not a Haar draw,
    so one column (or row) of each kernel lies close to the constant direction. TF 1.3 moved to QR of N(0, 1)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            out_f, in_f = m.weight.shape
            a = torch.rand(in_f, out_f, dtype=torch.float64)  # TF's kernel is (in, out)
            u, _, vh = torch.linalg.svd(a, full_matrices=False)  # u (in, k), vh (k, out), k = min(in, out)
            q = u if in_f > out_f else vh  # (in, out): TF takes u when rows > cols, else v transposed
            with torch.no_grad():
                m.weight.copy_(gain * q.T)
            _zero_bias(m)


def init_xavier(module: nn.Module) -> None:
    """Glorot-uniform weights, zero biases (Glorot and Bengio 2010; TF-slim's fully_connected default, the VEEGAN
    notebook's nets)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            _zero_bias(m)


def init_orthogonal08(module: nn.Module) -> None:
    """Orthogonal init with scaling 0.8 (the Unrolled GAN paper's 2D nets, Metz et al. 2017, Appendix A)."""
    init_orthogonal(module, 0.8)


INITS: dict[str, Callable[[nn.Module], None]] = {"normal": init_normal, "orthogonal": init_orthogonal,
                                                 "orthogonal08": init_orthogonal08, "xavier": init_xavier,
                                                 "orthogonal_tf1": init_orthogonal_tf1}
