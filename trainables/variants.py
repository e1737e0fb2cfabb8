"""Variants are named presets: model + loss + remedies + optimiser defaults (docs/protocols.md)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Variant:
    """A preset merged under the trial config; `doc` cites the paper."""

    doc: str
    config: Mapping[str, Any]


def _pacgan(m: int) -> Variant:
    return Variant(f"PacGAN{m}: D sees packs of {m} samples (Lin et al. 2018)", {"remedies": {"packing": {"m": m}}})


def _unrolled(k: int) -> Variant:
    return Variant(f"Unrolled GAN, {k} look-ahead D steps; minimax loss, Adam D 1e-4, G 1e-3, beta1 0.5 "
                   "(Metz et al. 2017)",
                   {"loss": "minimax", "remedies": {"unrolled": {"k": k}},
                    "train": {"optimizer": "adam", "lr_d": 1e-4, "lr_g": 1e-3, "betas": [0.5, 0.999]}})


# VEEGAN's 2D nets (the authors' notebook): G [z (254), eps (1)] -> 2 x 128 ReLU -> 2; F 2 -> 2 x 128 ReLU -> 254;
# D [x, z] -> 128 ReLU -> 1; TF-slim's Glorot-uniform init; Adam 1e-3, beta1 0.5; batch 500; G's and D's updates in
# one sess.run (veegan: train.updates simultaneous)
_VEEGAN_2D = {"name": "mlp", "nz": 255, "g_hidden": 128, "g_layers": 2, "bn": False, "act": "relu",
              "d_hidden": 128, "d_layers": 1, "maxout": 1, "d_act": "relu", "init": "xavier"}
_VEEGAN_TRAIN = {"optimizer": "adam", "lr": 1e-3, "betas": [0.5, 0.999], "batch_size": 500}

_SIGMAS_2D = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)  # RBF bandwidths for the 2D mixtures, in input units

VARIANTS: dict[str, Variant] = {
    "gan": Variant("Goodfellow et al. 2014, minimax loss", {"loss": "minimax"}),
    "ns_gan": Variant("Goodfellow et al. 2014, non-saturating loss", {"loss": "nonsaturating"}),
    "wgan": Variant("WGAN: critic loss, weights clipped to 0.01, 5 critic steps (100 before the first 25 G steps and "
                    "every 500th, as the authors' code), RMSprop 5e-5 (Arjovsky et al. 2017)",
                    {"loss": "wasserstein",
                     "remedies": {"weight_clipping": {"c": 0.01}, "n_critic": {"n": 5, "burst": 100}},
                     "train": {"optimizer": "rmsprop", "lr": 5e-5}}),
    "wgan_gp": Variant("WGAN-GP: penalty 10, 5 critic steps, Adam 1e-4 betas (0.5, 0.9) (Gulrajani et al. 2017)",
                       {"loss": "wasserstein", "remedies": {"gradient_penalty": {"weight": 10.0}, "n_critic": {"n": 5}},
                        "train": {"optimizer": "adam", "lr": 1e-4, "betas": [0.5, 0.9]}}),
    "lsgan": Variant("LSGAN: least-squares loss (Mao et al. 2017)", {"loss": "least_squares"}),
    "hinge_sngan": Variant("SNGAN: hinge loss, spectrally normalised D (Miyato et al. 2018)",
                           {"loss": "hinge", "remedies": {"spectral_norm": {"n_power_iterations": 1}}}),
    "gmmn": Variant("GMMN: G minimises the RBF-mixture MMD to the data, bandwidths remedies.mmd.sigmas (Li et al. "
                    "2015; Dziugaite et al. 2015)", {"remedies": {"mmd": {}}}),
    "gmmn_2d": Variant("GMMN on the 2D mixtures: bandwidths in half-decades from the sharp ring's std (0.01) past the "
                       "grid's half-width (3), not the image defaults (Li et al. 2015; Dziugaite et al. 2015)",
                       {"remedies": {"mmd": {"sigmas": list(_SIGMAS_2D)}}}),
    "mmd_gan": Variant("MMD-GAN: kernel MMD on D's features, D an autoencoder, its encoder clipped to 0.01, 5 D steps "
                       "(100 before the first 25 G steps and every 500th), RMSprop 5e-5, batch 64 (Li et al. 2017; "
                       "OctoberChang/MMD-GAN, mmd_gan.py)",
                       {"loss": "none", "remedies": {"mmd_critic": {}, "weight_clipping": {"c": 0.01},
                                                     "n_critic": {"n": 5, "burst": 100}},
                        # lr_d and lr_g too: a spec's train.lr (systems_2d.yaml's) does not replace the code's rates
                        "train": {"optimizer": "rmsprop", "lr": 5e-5, "lr_d": 5e-5, "lr_g": 5e-5, "batch_size": 64}}),
    "veegan": Variant("VEEGAN: reconstructor F and joint D on (x, z), G's loss -E D(G(z), z) + 0.5 E||z - F(G(z))||^2, "
                      "the authors' 2D nets and Adam (Srivastava et al. 2017; akashgit/VEEGAN, VEEGAN_2D_RING.ipynb)",
                      {"loss": "kl", "remedies": {"veegan": {"eps_dim": 1}}, "model": _VEEGAN_2D,
                       "train": {**_VEEGAN_TRAIN, "updates": "simultaneous"}}),
    "bigan": Variant("ALI/BiGAN: encoder E and joint D on (x, E(x)) vs (G(z), z), G and E on the label-swapped "
                     "non-saturating loss (Dumoulin et al. 2017; Donahue et al. 2017); VEEGAN's 2D nets and Adam, as "
                     "its comparison (Srivastava et al. 2017)",
                     {"loss": "nonsaturating", "remedies": {"bigan": {}}, "model": {**_VEEGAN_2D, "nz": 254},
                      "train": _VEEGAN_TRAIN}),
    "ali": Variant("ALI: the bigan preset with ALI's stochastic encoder z = mu(x) + sigma(x) eps (Dumoulin et al. "
                   "2017; IshmaelBelghazi/ALI, ali/bricks.py)",
                   {"loss": "nonsaturating", "remedies": {"bigan": {"stochastic": True}},
                    "model": {**_VEEGAN_2D, "nz": 254}, "train": _VEEGAN_TRAIN}),
    "mdgan": Variant("Mode-regularised GAN: encoder E, lambda_1 0.2 * ||x - G(E(x))||^2 and lambda_2 0.4 * "
                     "-log D(G(E(x))) in G's loss (Che et al. 2017, the regularised GAN; two-step: mdgan_md)",
                     {"loss": "nonsaturating", "remedies": {"mdgan": {}}}),
    "mdgan_md": Variant("Manifold-diffusion MDGAN: encoder E; a manifold D_M on x vs G(E(x)) with G's term "
                        "0.2 * ||x - G(E(x))||^2 + its loss on D_M(G(E(x))); D on G(E(x)) vs G(z) "
                        "(Che et al. 2017, Sec. 3.3)",
                        {"loss": "nonsaturating", "remedies": {"manifold_diffusion": {}}}),
    "adagan": Variant("AdaGAN: 10 rounds x 15 epochs, data reweighted by a classifier of data vs the mixture "
                      "(theory_star W_t, beta_t = 1/t); the authors' 2D setup: tanh nets 2 x 16, z dim 5, SGD lr "
                      "0.008 (classifier), D 0.004, G 0.01, batch 64, unrolled 5, minimax loss (objective 'JS') "
                      "(Tolstikhin et al. 2017; tolstikhin/adagan adagan_gmm.py)",
                      {"loss": "minimax", "remedies": {"adagan": {"rounds": 10}, "unrolled": {"k": 5}},
                       "model": {"name": "mlp", "nz": 5, "g_hidden": 16, "g_layers": 2, "d_hidden": 16,
                                 "d_layers": 2, "maxout": 1, "act": "tanh", "d_act": "tanh", "bn": False,
                                 "init": "orthogonal"},
                       "train": {"epochs": 150, "batch_size": 64, "optimizer": "sgd", "lr": 0.008, "lr_d": 0.004,
                                 "lr_g": 0.01}}),
    "adagan_ns": Variant("AdaGAN's boosting over the spec's own non-saturating GAN (its nets, optimiser and rates), "
                         "2 rounds, theory_star W_t, beta_t = 1/t: the AdaGAN arm of a comparison at a budget too "
                         "small for the authors' 10 SGD rounds (Tolstikhin et al. 2017, Alg. 1)",
                         {"loss": "nonsaturating", "remedies": {"adagan": {"rounds": 2}}}),
    **{f"pacgan{m}": _pacgan(m) for m in (2, 3, 4)},
    **{f"unrolled{k}": _unrolled(k) for k in (5, 10)},
}
