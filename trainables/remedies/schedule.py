"""Optimiser-setting remedies: two-timescale learning rates and critic steps per G step.

Their `train` hooks run when the trial config is resolved, so the config shows the effective settings; a
spec that also sets the same `train.*` key is refused (trainables.config)."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from trainables.hooks import Remedy, params


@params
class TTUR:
    lr_d: float = Field(4e-4, gt=0.0)
    lr_g: float = Field(1e-4, gt=0.0)


@params
class NCritic:
    n: int = Field(5, ge=1, le=100)
    # D steps before each of the first 25 G steps and every 500th (WGAN's code: 100); 0: always n
    burst: int = Field(0, ge=0, le=1000)


def _ttur(cfg: Any, p: TTUR, train: Any) -> Any:
    """Separate D and G learning rates (Heusel et al. 2017)."""
    return train.model_copy(update={"lr_d": p.lr_d, "lr_g": p.lr_g})


def _n_critic(cfg: Any, p: NCritic, train: Any) -> Any:
    """n D updates per G update, `burst` of them before the first 25 G updates and every 500th (Arjovsky et al.
    2017, and their code)."""
    return train.model_copy(update={"n_critic": p.n, "critic_burst": p.burst})


REMEDIES: dict[str, Remedy] = {
    "two_timescale": Remedy(doc="two-timescale update rule, lr_d 4e-4 and lr_g 1e-4 (Heusel et al. 2017)",
                            params=TTUR, train=_ttur, sets=("lr_d", "lr_g"), seed_separable=True),
    "n_critic": Remedy(doc="n D steps per G step, 5 in WGAN and WGAN-GP; `burst` D steps before the first 25 G steps "
                           "and every 500th, 100 in WGAN's code (Arjovsky et al. 2017)",
                       params=NCritic, train=_n_critic, sets=("n_critic", "critic_burst"), seed_separable=True),
}
