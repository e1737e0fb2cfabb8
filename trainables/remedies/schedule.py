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


def _ttur(cfg: Any, p: TTUR, train: Any) -> Any:
    """Separate D and G learning rates (Heusel et al. 2017)."""
    return train.model_copy(update={"lr_d": p.lr_d, "lr_g": p.lr_g})


def _n_critic(cfg: Any, p: NCritic, train: Any) -> Any:
    """n D updates per G update (Arjovsky et al. 2017)."""
    return train.model_copy(update={"n_critic": p.n})


REMEDIES: dict[str, Remedy] = {
    "two_timescale": Remedy(doc="two-timescale update rule, lr_d 4e-4 and lr_g 1e-4 (Heusel et al. 2017)",
                            params=TTUR, train=_ttur, sets=("lr_d", "lr_g"), seed_separable=True),
    "n_critic": Remedy(doc="n D steps per G step, 5 in WGAN and WGAN-GP (Arjovsky et al. 2017)",
                       params=NCritic, train=_n_critic, sets=("n_critic",), seed_separable=True),
}
