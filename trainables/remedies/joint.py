"""Encoders on G's side: VEEGAN's reconstructor F: x -> z with its reconstruction term and a joint (x, z) D
(Srivastava et al. 2017, Algorithm 1 and the authors' 2D notebook), ALI/BiGAN's encoder E trained with G against
a joint D (Dumoulin et al. 2017; Donahue et al. 2017), and the mode-regularised GAN's E with its geometric and mode
regularisers and its two-step manifold-diffusion form (Che et al. 2017). The encoder lives in G's module
(models.encoder.WithEncoder): G's optimiser, gradient norm and checkpoint cover it; D's input gains the code
columns (the mlp's `code` argument); d_view pairs data with the encoder's code and G's samples with their z."""
from __future__ import annotations

import copy
import inspect
import math
from typing import Any

import torch
from pydantic import Field
from torch import Tensor, nn

from trainables.hooks import Logs, Remedy, StepContext, d_view, params
from trainables.losses import d_probability
from trainables.models.encoder import WithEncoder, encoder_mlp, encoder_of

# remedies that read D on G's samples without their latent, or pack samples without a code per sample
_NOT_JOINT = ("packing", "unrolled", "feature_matching", "mmd", "mmd_critic")


@params
class Veegan:
    weight: float = Field(0.5, ge=0.0)  # of E||z - F(G(z))||^2; 0.5: the notebook's -log N(z; F(x), I); Alg. 1: 1
    code_noise: float = Field(1.0, ge=0.0)  # std of p_theta(z | x) = N(F(x), s^2 I) on D's data pairs (notebook: 1)
    eps_dim: int = Field(0, ge=0)  # last z columns: G's extra noise, not reconstructed, not shown to D (notebook: 1)
    hidden: int = Field(128, ge=1)  # F: `layers` x `hidden` ReLU, linear out (notebook: 2 x 128)
    layers: int = Field(2, ge=0, le=16)


@params
class Encoder:
    hidden: int = Field(128, ge=1)  # E: `layers` x `hidden` ReLU, linear out
    layers: int = Field(2, ge=0, le=16)
    stochastic: bool = False  # ALI's E: (mu, log sigma), z = mu + sigma eps while training; False: BiGAN's E(x)


@params
class ManifoldDiffusion:
    geometric: float = Field(0.2, ge=0.0)  # lambda of E||x - G(E(x))||^2 in the manifold step (the regularised GAN's)
    manifold: float = Field(1.0, ge=0.0)  # weight of G's loss on D_M(G(E(x))) (Alg. 1 writes it unweighted)
    hidden: int = Field(128, ge=1)  # E: `layers` x `hidden` ReLU, linear out
    layers: int = Field(2, ge=0, le=16)


@params
class ModeReg:
    geometric: float = Field(0.2, ge=0.0)  # lambda_1 of E||x - G(E(x))||^2
    mode: float = Field(0.4, ge=0.0)  # lambda_2 of G's loss on D(G(E(x)))
    hidden: int = Field(128, ge=1)  # E: `layers` x `hidden` ReLU, linear out
    layers: int = Field(2, ge=0, le=16)


def _nz(cfg: Any, kwargs: dict[str, Any]) -> int:
    """The model's latent width: its `nz` argument, else the builder's default."""
    from trainables.models import MODELS

    return int(kwargs.get("nz", inspect.signature(MODELS[cfg.model.name]).parameters["nz"].default))


def _code_width(cfg: Any, p: Any, nz: int) -> int:
    width = nz - getattr(p, "eps_dim", 0)
    if width < 1:
        raise ValueError(f"remedies.veegan.eps_dim: {p.eps_dim} leaves no latent column to reconstruct (nz {nz})")
    return width


def _joint_model(cfg: Any, p: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """D takes the code beside the sample: mlp argument code = its width."""
    return {**kwargs, "code": _code_width(cfg, p, _nz(cfg, kwargs))}


def _with_encoder(cfg: Any, p: Any, built: Any, data_shape: tuple[int, ...]) -> nn.Module:
    """G's module with an encoder x -> code (VEEGAN's F, ALI/BiGAN's E), initialised as the model's nets."""
    width = _code_width(cfg, p, built.nz) * (2 if getattr(p, "stochastic", False) else 1)  # ALI: (mu, log sigma)
    return WithEncoder(built.g, encoder_mlp(math.prod(data_shape), width, p.hidden, p.layers, "relu", built.init))


def _veegan_code(ctx: StepContext, p: Veegan, x: Tensor, z: Tensor | None) -> Tensor:
    """The code D sees: G's samples with their z (less the eps columns), data x with z_g ~ N(F(x), s^2 I) while
    training, F(x) while evaluating (Srivastava et al. 2017). (B, nz - eps_dim)"""
    if z is not None:
        return z[:, : z.shape[1] - p.eps_dim]
    code = encoder_of(ctx.g)(x)
    if ctx.training and p.code_noise > 0:
        code = code + p.code_noise * ctx.draw(torch.randn, tuple(code.shape), code.dtype)
    return code


def _veegan_recon(ctx: StepContext, p: Veegan, real: Tensor, fake: Tensor, z: Tensor) -> tuple[Tensor, Logs]:
    """weight * E||z - F(G(z))||^2 in G's loss, training G and F (Srivastava et al. 2017, Algorithm 1 lines 9, 11)."""
    target = z[:, : z.shape[1] - p.eps_dim]  # (B, code)
    d = (target - encoder_of(ctx.g)(fake)).pow(2).sum(dim=1).mean()
    return p.weight * d, {"remedy/veegan/recon": d.detach()}


def _bigan_code(ctx: StepContext, p: Encoder, x: Tensor, z: Tensor | None) -> Tensor:
    """The code D sees: G's samples with their z; data x with E(x) (BiGAN: Donahue et al. 2017), or with
    mu(x) + sigma(x) eps while training, mu(x) while evaluating (ALI: Dumoulin et al. 2017). (B, nz)"""
    if z is not None:
        return z
    out = encoder_of(ctx.g)(x)
    if not p.stochastic:
        return out
    mu, log_sigma = out.chunk(2, dim=1)
    if not ctx.training:
        return mu
    return mu + log_sigma.exp() * ctx.draw(torch.randn, tuple(mu.shape), mu.dtype)


def _bigan_encoder(ctx: StepContext, p: Encoder, real: Tensor, fake: Tensor, z: Tensor) -> tuple[Tensor, Logs]:
    """E's side of the label-swapped objective: G's loss on the negated logit of (x, E(x)), i.e. -log(1 - D(x, E(x)))
    with the non-saturating loss (Donahue et al. 2017; Dumoulin et al. 2017). D is frozen; E gets the gradient."""
    logits = ctx.d(d_view(ctx, real))  # (B,), through E(x)
    term = ctx.loss.g(-logits)
    return term, {"remedy/bigan/encoder": term.detach(), "remedy/bigan/d_data_pair": d_probability(logits)}


def _regularisers(ctx: StepContext, real: Tensor, d: nn.Module) -> tuple[Tensor, Tensor]:
    """E||x - G(E(x))||^2 and G's loss on d(G(E(x))) on a data batch x; G and E get the gradients (Che et al.
    2017). Two 0-dim tensors."""
    recon = ctx.g(encoder_of(ctx.g)(real))  # (B, *shape)
    return (real - recon).flatten(1).pow(2).sum(dim=1).mean(), ctx.loss.g(d(d_view(ctx, recon)))


def _mode_regularizers(ctx: StepContext, p: ModeReg, real: Tensor, fake: Tensor, z: Tensor) -> tuple[Tensor, Logs]:
    """lambda_1 E||x - G(E(x))||^2 + lambda_2 * G's loss on D(G(E(x))) on a data batch: G and E learn from both
    (Che et al. 2017, T_G and T_E); the second term is -log D(G(E(x))) with the non-saturating loss."""
    geometric, mode = _regularisers(ctx, real, ctx.d)
    return p.geometric * geometric + p.mode * mode, {"remedy/mdgan/geometric": geometric.detach(),
                                                     "remedy/mdgan/mode": mode.detach()}


def _with_manifold_d(cfg: Any, p: ManifoldDiffusion, d: Any, data_shape: tuple[int, ...]) -> Any:
    """D_M, the manifold step's discriminator: a copy of D as built so far (same architecture, the wraps of the
    remedies listed before this one, same initial weights), held in D's module as `manifold`, so D's optimiser,
    gradient norm and checkpoint cover it; D's forward is D_D's."""
    d.add_module("manifold", copy.deepcopy(d))
    return d


def manifold_d(d: nn.Module) -> nn.Module:
    """D_M, the manifold D a `manifold_diffusion` D carries (_with_manifold_d)."""
    return d.get_submodule("manifold")


def _diffusion_real(ctx: StepContext, p: ManifoldDiffusion, x: Tensor) -> tuple[Tensor, Tensor, Logs]:
    """The diffusion step: D (D_D) takes G(E(x)) as its real batch, against G(z); the manifold step: D_M learns x
    against G(E(x)) through the returned term of D's loss (Che et al. 2017, Sec. 3.3, Alg. 1 steps 2 and 5)."""
    with torch.no_grad():  # D's step: no gradient to G or E
        recon = ctx.g(encoder_of(ctx.g)(x))  # (B, *shape)
    dm = manifold_d(ctx.d)
    lr, lf = dm(d_view(ctx, x)), dm(d_view(ctx, recon))  # (B,), (B,) D_M's logits
    term = ctx.loss.d(lr, lf, torch.ones_like(lr), torch.zeros_like(lf))
    return recon, term, {"remedy/manifold_diffusion/d_manifold": term.detach(),
                         "remedy/manifold_diffusion/dm_real": d_probability(lr),
                         "remedy/manifold_diffusion/dm_recon": d_probability(lf)}


def _manifold_g(ctx: StepContext, p: ManifoldDiffusion, real: Tensor, fake: Tensor, z: Tensor) -> tuple[Tensor, Logs]:
    """The manifold step's G and E loss, geometric * E||x - G(E(x))||^2 + manifold * G's loss on D_M(G(E(x))),
    added to the diffusion step's G loss on D_D(G(z)) (Che et al. 2017, Alg. 1 steps 3 and 6)."""
    geometric, adversarial = _regularisers(ctx, real, manifold_d(ctx.d))
    return p.geometric * geometric + p.manifold * adversarial, {
        "remedy/manifold_diffusion/geometric": geometric.detach(),
        "remedy/manifold_diffusion/manifold": adversarial.detach()}


_ADVERSARIAL = ("minimax", "nonsaturating", "kl", "wasserstein", "hinge", "least_squares")
_CONFLICT_NOTE = ("not with packing (a pack has no code per sample) or unrolled, feature_matching, mmd, mmd_critic "
                  "(they read D on G's samples without their latent); mlp only (D takes the code as input columns)")

REMEDIES: dict[str, Remedy] = {
    "veegan": Remedy(
        doc="VEEGAN: reconstructor F: x -> z trained with G on weight * ||z - F(G(z))||^2 (also in G's loss), D on "
            "(x, z) pairs: (G(z), z) vs (x, F(x) + N(0, code_noise^2)) (Srivastava et al. 2017); " + _CONFLICT_NOTE,
        params=Veegan, model=_joint_model, wrap_g=_with_encoder, code=_veegan_code, g_extra=_veegan_recon,
        conflicts=_NOT_JOINT, models=("mlp",)),
    "bigan": Remedy(
        doc="ALI/BiGAN: encoder E: x -> z trained with G, D on (x, z) pairs: (x, E(x)) vs (G(z), z), G and E on the "
            "label-swapped loss; E deterministic (BiGAN) or stochastic (ALI: stochastic true) (Donahue et al. 2017; "
            "Dumoulin et al. 2017); " + _CONFLICT_NOTE + "; losses whose negated logit swaps the labels",
        params=Encoder, model=_joint_model, wrap_g=_with_encoder, code=_bigan_code, g_extra=_bigan_encoder,
        conflicts=_NOT_JOINT, models=("mlp",), losses=("minimax", "nonsaturating", "kl", "wasserstein", "hinge")),
    "mdgan": Remedy(
        doc="mode-regularised GAN: encoder E: x -> z trained with G on geometric * ||x - G(E(x))||^2 + mode * G's "
            "loss on D(G(E(x))), both added to G's loss: the regularised GAN (Che et al. 2017), not the two-step "
            "manifold/diffusion MDGAN (manifold_diffusion); any loss with an adversarial term",
        params=ModeReg, wrap_g=_with_encoder, g_extra=_mode_regularizers, losses=_ADVERSARIAL),
    "manifold_diffusion": Remedy(
        doc="manifold-diffusion MDGAN: encoder E trained with G; the manifold step trains a second D (D_M, a copy of "
            "D) on x vs G(E(x)) and G, E on geometric * ||x - G(E(x))||^2 + manifold * G's loss on D_M(G(E(x))); the "
            "diffusion step trains D on G(E(x)) vs G(z) and G on D(G(z)); both steps' updates in one (Sec. 3.3 of "
            "Che et al. 2017); any loss with an adversarial term",
        params=ManifoldDiffusion, wrap_g=_with_encoder, wrap_d=_with_manifold_d, d_real=_diffusion_real,
        g_extra=_manifold_g, losses=_ADVERSARIAL),
}
