"""Optimiser-setting remedies: two-timescale learning rates and critic steps per G step."""
from __future__ import annotations

from typing import Any

from trainables.remedies import Params, Remedy


def _ttur(train: dict[str, Any], p: Params) -> dict[str, Any]:
    """Separate D and G learning rates (Heusel et al. 2017)."""
    return {**train, "lr_d": float(p["lr_d"]), "lr_g": float(p["lr_g"])}


def _n_critic(train: dict[str, Any], p: Params) -> dict[str, Any]:
    """n D updates per G update (Arjovsky et al. 2017)."""
    return {**train, "n_critic": int(p["n"])}


REMEDIES: dict[str, Remedy] = {
    "two_timescale": Remedy(doc="two-timescale update rule, lr_d 4e-4 and lr_g 1e-4 (Heusel et al. 2017)",
                            defaults={"lr_d": 4e-4, "lr_g": 1e-4}, optim=_ttur),
    "n_critic": Remedy(doc="n D steps per G step, 5 in WGAN and WGAN-GP (Arjovsky et al. 2017)",
                       defaults={"n": 5}, optim=_n_critic),
}
