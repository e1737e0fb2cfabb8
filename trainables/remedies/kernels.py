"""Kernel MMD objectives: the fixed-kernel MMD loss of GMMN (Li et al. 2015; Dziugaite et al. 2015) and MMD-GAN's
kernel learned through D's features (Li et al. 2017), with the mixture of RBF bandwidths, the biased estimate,
the square root, the one-sided rank term and D's autoencoder terms of the authors' code (OctoberChang/MMD-GAN,
mmd_gan.py and mmd.py)."""
from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveFloat
from torch import Tensor, nn

from trainables.hooks import DFn, Logs, Remedy, StepContext, d_view, params
from trainables.models import DECODER, MODELS
from trainables.remedies.architecture import head_width
from trainables.remedies.inputs import d_input_shape

Sigmas = tuple[float, ...]
MMD_GAN_SIGMAS: Sigmas = (1.0, 2.0, 4.0, 8.0, 16.0)  # mmd_gan.py: sigma_list, base 1.0


@params
class MMD:
    sigmas: tuple[PositiveFloat, ...] = Field(MMD_GAN_SIGMAS, min_length=1)  # RBF bandwidths, in input units


@params
class MMDCritic(MMD):
    rank_weight: float = Field(16.0, ge=0.0)  # lambda_rg of mmd_gan.py: weight of the one-sided rank term
    # lambda_AE_X = lambda_AE_Y of mmd_gan.py: weight of D's reconstruction errors of the real and the fake batch
    # through its decoder; 0: D has no decoder
    autoencoder: float = Field(8.0, ge=0.0)
    # width k of D's encoding, a linear map from D's features that the kernel reads (the code's encoder ends in a
    # conv to k units, k = hidden_dim = nz); null: G's latent size, as the code; 0: D's features as they are
    encoding: int | None = Field(None, ge=0, le=100_000)


def mix_rbf_mmd2(x: Tensor, y: Tensor, sigmas: Sigmas) -> Tensor:
    """Biased MMD^2 between samples x (N, d) and y (M, d) under sum_s exp(-|a-b|^2 / (2 s^2)) (Gretton et al. 2012);
    0 when x and y are the same set."""
    z = torch.cat([x, y]).float()
    d2 = torch.cdist(z, z).pow(2)  # (N+M, N+M)
    k = sum(torch.exp(-d2 / (2.0 * s * s)) for s in sigmas)
    assert isinstance(k, Tensor)
    n = len(x)
    return k[:n, :n].mean() + k[n:, n:].mean() - 2.0 * k[:n, n:].mean()


def _root(mmd2: Tensor) -> Tensor:
    """sqrt(relu(MMD^2)) as mmd_gan.py takes it (the biased estimate is >= 0 up to rounding)."""
    return torch.sqrt(F.relu(mmd2) + 1e-12)  # 1e-12: a finite gradient where x and y coincide


def one_sided(f_real: Tensor, f_fake: Tensor) -> Tensor:
    """MMD-GAN's rank hinge -mean(relu(-(E f(x) - E f(G(z))))): 0 once every real feature mean exceeds the fake's."""
    return -F.relu(-(f_real.mean(dim=0) - f_fake.mean(dim=0))).mean()


def _mmd(ctx: StepContext, p: MMD, real: Tensor, fake: Tensor, d_fn: DFn) -> tuple[Tensor, Logs]:
    """GMMN: G minimises sqrt MMD^2(x, G(z)) with a fixed RBF mixture in data space (Li et al. 2015); D is unused."""
    mmd2 = mix_rbf_mmd2(real.flatten(1), fake.flatten(1), p.sigmas)
    return _root(mmd2), {"remedy/mmd/mmd2": mmd2.detach()}


def _features(ctx: StepContext, x: Tensor) -> Tensor:
    return ctx.d.features(x).flatten(1)


def _encoding_width(cfg: Any, p: MMDCritic) -> int:
    """k: `encoding`, else G's latent size (mmd_gan.py: `hidden_dim = args.nz`, 10 on MNIST)."""
    if p.encoding is not None:
        return p.encoding
    nz = cfg.model.kwargs.get("nz")
    return int(nz if nz is not None else inspect.signature(MODELS[cfg.model.name]).parameters["nz"].default)


def _with_autoencoder(cfg: Any, p: MMDCritic, d: Any, data_shape: tuple[int, ...]) -> Any:
    """MMD-GAN's D is an autoencoder (mmd_gan.py: NetD(encoder, decoder)): D's features end in a linear encoding of
    k units (base_module.Encoder's last conv), and a decoder maps it back to D's input: G's architecture with k as
    its latent size (the code builds both with base_module.Decoder), held in D's module so D's optimiser trains it.
    D's head then reads the encoding; the MMD-GAN objective does not use it, D's probes do."""
    k = _encoding_width(cfg, p)
    if k > 0:
        # the code's last conv has no bias, nor has this
        encoding, head = nn.Linear(head_width(d, "mmd_critic"), k, bias=False), nn.Linear(k, 1)
        if d.init is not None:
            d.init(encoding)
            d.init(head)
        d.features, d.head = nn.Sequential(d.features, nn.Flatten(), encoding), head  # (B, ...) -> (B, k)
    if p.autoencoder > 0:
        built = MODELS[cfg.model.name](d_input_shape(cfg, data_shape),
                                       **{**cfg.model.kwargs, "nz": head_width(d, "mmd_critic")})
        d.add_module(DECODER, built.g)
    return d


def _reconstruction(decoder: nn.Module, f: Tensor, x: Tensor) -> Tensor:
    """mean (x - decoder(f))^2 over every element (util.match(x, f_dec, 'L2') of the MMD-GAN code); x (B, ...)."""
    return (decoder(f).flatten(1) - x.flatten(1)).pow(2).mean()


def _critic_d(ctx: StepContext, p: MMDCritic, real: Tensor, fake: Tensor) -> tuple[Tensor, Logs]:
    """MMD-GAN's D maximises sqrt MMD^2(f(x), f(G(z))) + lambda_rg * rank - lambda_AE * (both reconstruction errors)
    (Li et al. 2017; mmd_gan.py's errD): added negated. real and fake are as D saw them (d_view); fake is detached."""
    f_real, f_fake = _features(ctx, real), _features(ctx, fake)
    mmd2 = mix_rbf_mmd2(f_real, f_fake, p.sigmas)
    rank = one_sided(f_real, f_fake)
    term = -(_root(mmd2) + p.rank_weight * rank)
    logs = {"remedy/mmd_critic/mmd2_d": mmd2.detach(), "remedy/mmd_critic/rank_d": rank.detach()}
    if p.autoencoder > 0:
        decoder = ctx.d.get_submodule(DECODER)
        ae_real, ae_fake = _reconstruction(decoder, f_real, real), _reconstruction(decoder, f_fake, fake)
        term = term + p.autoencoder * (ae_real + ae_fake)
        logs |= {"remedy/mmd_critic/ae_real": ae_real.detach(), "remedy/mmd_critic/ae_fake": ae_fake.detach()}
    return term, logs


def _critic_g(ctx: StepContext, p: MMDCritic, real: Tensor, fake: Tensor, d_fn: DFn) -> tuple[Tensor, Logs]:
    """MMD-GAN's G minimises sqrt MMD^2(f(x), f(G(z))) + lambda_rg * rank term through D's features (Li et al. 2017)."""
    with torch.no_grad():
        f_real = _features(ctx, d_view(ctx, real))
    f_fake = _features(ctx, d_view(ctx, fake))
    mmd2 = mix_rbf_mmd2(f_real, f_fake, p.sigmas)
    return _root(mmd2) + p.rank_weight * one_sided(f_real, f_fake), {"remedy/mmd_critic/mmd2_g": mmd2.detach()}


REMEDIES: dict[str, Remedy] = {
    "mmd": Remedy(
        doc="G minimises the kernel MMD to the data with fixed RBF bandwidths in data space (GMMN: Li et al. 2015; "
            "Dziugaite et al. 2015); D keeps training but G ignores it; not with unrolled or feature_matching, nor "
            "veegan or bigan (joint D)",
        params=MMD, g_loss=_mmd, conflicts=("unrolled", "veegan", "bigan")),
    "mmd_critic": Remedy(
        doc="MMD-GAN's objective on D's features, D maximising and G minimising the kernel MMD plus the one-sided "
            "rank term, D an autoencoder whose reconstruction errors it also minimises (Li et al. 2017); it is the "
            "whole objective, so it takes loss 'none'; not with unrolled, veegan or bigan",
        params=MMDCritic, wrap_d=_with_autoencoder, d_extra=_critic_d, g_loss=_critic_g,
        conflicts=("unrolled", "veegan", "bigan"), loss="none"),
}
