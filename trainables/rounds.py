"""A trial that trains a sequence of GANs (rounds): the protocol GANRun drives, built by a remedy's `rounds` hook.

A run without such a remedy has no rounds (GANRun.rounds is None) and trains one GAN. With one (AdaGAN,
trainables.remedies.adagan) the trial's epochs are split evenly into rounds; `begin` runs before each epoch and
starts the next round when the epoch is the first of one (new nets, new data weights); the evaluation scores the
rounds' generator (a mixture) where it would score G. Epochs stay numbered across rounds (round r's follow
round r-1's), so the per-epoch collapse verdict and the MLflow step axis are those of any run.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from torch import Tensor, nn

from trainables.remedies import REMEDIES

if TYPE_CHECKING:
    from trainables.config import TrialConfig
    from trainables.run import GANRun


class Rounds(Protocol):
    """What GANRun calls on a trial that runs rounds."""

    def begin(self, run: GANRun) -> None:
        """Before an epoch's training: start the round(s) due at `run.epoch` (idempotent: restores call it too)."""

    def generate(self, g: nn.Module, z: Tensor) -> Tensor:
        """The samples the trial is evaluated on for the fixed latents z (N, nz), `g` being the net in training."""

    def report(self, run: GANRun) -> dict[str, float]:
        """This epoch's round metrics (slash-namespaced, e.g. adagan/round)."""

    def grids(self, run: GANRun, n: int) -> dict[str, Tensor]:
        """Named sample sets for grids besides the trial's own (e.g. each component's), n samples each."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any], run: GANRun) -> None: ...


def build_rounds(cfg: TrialConfig, run: GANRun) -> Rounds | None:
    """The rounds of the one remedy with a `rounds` hook (EXCLUSIVE_HOOKS keeps it to one), or None."""
    for name, p in cfg.remedies.items():
        hook = REMEDIES[name].rounds
        if hook is not None:
            return hook(cfg, p, run)
    return None
