"""AdaGAN: boosting, T GANs each trained on data reweighted by the mixture before it (Tolstikhin et al. 2017).

A remedy with a `rounds` hook: the trial runs rounds (trainables.rounds, trainables.adagan); every other remedy
acts on each round's GAN as on a single GAN. Defaults follow the authors' adagan_gmm.py."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from trainables.hooks import Remedy, params


@params
class AdaGANParams:
    rounds: int = Field(10, ge=1, le=1000)  # T, adagan_steps_total
    beta: Literal["uniform", "constant"] = "uniform"  # beta_heur: beta_t = 1/t, or beta_constant
    beta_constant: float = Field(0.5, gt=0.0, lt=1.0)
    weights: Literal["theory_star", "topk"] = "theory_star"  # weights_heur: the paper's W_t, or top-k uniform
    topk: float = Field(0.5, gt=0.0, le=1.0)  # topk_constant: the share of points kept by 'topk'
    classifier_epochs: int = Field(5, ge=1, le=1000)  # mixture_c_epoch_num: passes of the mixture classifier
    mixture_samples: int | None = Field(None, ge=1)  # mixture samples the classifier sees; None: len(data)


def check_rounds(cfg: Any, p: AdaGANParams, train: Any) -> Any:
    """At resolution: the epochs split evenly into rounds; torch.compile is refused (nets are rebuilt per round)."""
    if train.epochs % p.rounds:
        raise ValueError(f"remedy 'adagan': train.epochs = {train.epochs} does not split into {p.rounds} rounds; "
                         f"set train.epochs to a multiple of remedies.adagan.rounds (epochs per round x rounds)")
    if train.compile:
        raise ValueError("remedy 'adagan' builds fresh nets each round, which train.compile does not follow; "
                         "set train.compile: false")
    return train


def _rounds(cfg: Any, p: AdaGANParams, run: Any) -> Any:
    """AdaGAN's rounds record (imported here: trainables.adagan needs the step, which needs this registry)."""
    from trainables.adagan import AdaGAN

    check_rounds(cfg, p, cfg.train)
    return AdaGAN(cfg, p, run)


REMEDIES: dict[str, Remedy] = {
    "adagan": Remedy(doc="AdaGAN: T rounds, each GAN on data reweighted by a classifier of data vs the mixture "
                         "(Tolstikhin et al. 2017)", params=AdaGANParams, train=check_rounds, rounds=_rounds),
}
