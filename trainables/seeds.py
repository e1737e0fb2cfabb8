"""SeedGroup: S seeds of one configuration trained as one seed-batched model (seeds as a batch dimension).

Each seed is a GANRun of its own (its nets initialised from its seed exactly as a run of its own, its RNG
stream, evaluation, collapse verdict and outcome); training runs once for all of them on nets stacked along a
seed dimension (trainables.models.seeded), so S small nets cost about one launch-bound step on a GPU instead of S.
Each seed's rows draw from that seed's generator in the order its own run would, its optimiser state is its own
slice of the stacked state, and its loss is its own, so the per-epoch metrics equal those of S separate runs up
to floating-point summation order (tests/trainables/test_seeds.py states the tolerance). Only the MLP layers
(Linear, BatchNorm1d) and remedies that act row by row (`Remedy.seed_separable`) can be batched this way.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from trainables.config import TrialConfig, resolve
from trainables.models.seeded import stack_seeds, unstack_seed
from trainables.remedies import REMEDIES
from trainables.run import GANRun
from trainables.step import OPTIMIZERS, FiniteWatch, epoch_logs, epoch_means


def check_seed_batch(cfg: TrialConfig, seeds: int) -> None:
    """ValueError naming what stops `seeds` seeds of `cfg` from sharing one seed-batched model."""
    if seeds < 2:
        return
    rounds = [n for n in cfg.remedies if REMEDIES[n].rounds is not None]
    if rounds:
        raise ValueError(f"remedy {rounds[0]!r} trains a sequence of GANs (rounds), each seed with its own mixture "
                         f"and data weights, so seeds cannot share one seed-batched model; use seeds_per_trial: 1")
    blocked = [n for n in cfg.remedies if not REMEDIES[n].seed_separable]
    if blocked:
        known = sorted(n for n, r in REMEDIES.items() if r.seed_separable)
        raise ValueError(f"remedy {blocked[0]!r} mixes a batch's rows (or draws outside ctx.draw), so seeds cannot "
                         f"share a batch; seed-batched trials take {', '.join(known)}")
    if cfg.model.name != "mlp":
        raise ValueError(f"model {cfg.model.name!r}: only the mlp family has seed-batched layers (Linear, "
                         f"BatchNorm1d)")
    if cfg.samples_per_step % cfg.pack:
        raise ValueError(f"packing: {cfg.samples_per_step} samples a step do not split into packs of {cfg.pack}, "
                         f"so a pack would hold two seeds' samples")


class SeedGroup:
    """S GANRuns of one configuration, differing only in their seed, trained together; `step()` -> S results."""

    def __init__(self, configs: Sequence[TrialConfig | Mapping[str, Any]], device: str | torch.device = "cpu"):
        self.members = [GANRun(c, device) for c in configs]  # each inits its nets from its seed
        first = self.members[0]
        cfg, self.seeds, self.device = first.config, len(self.members), first.device
        if any(m.config.model_copy(update={"seed": cfg.seed}) != cfg for m in self.members):
            raise ValueError("a seed group's configs may differ only in their seed")
        check_seed_batch(cfg, self.seeds)
        self.x = first.x  # the same data for every seed (data.seed, not the trial seed, draws it)
        g, d = stack_seeds([m.ctx.g for m in self.members]), stack_seeds([m.ctx.d for m in self.members])
        train = cfg.train
        self.ctx = dataclasses.replace(
            first.ctx, g=g, d=d, seeds=self.seeds, gens=tuple(m.gen for m in self.members),
            opt_d=OPTIMIZERS[train.optimizer](d.parameters(), train.lr_d or train.lr, train.betas),
            opt_g=OPTIMIZERS[train.optimizer](g.parameters(), train.lr_g or train.lr, train.betas),
            watch=FiniteWatch(self.seeds), counts={"d_steps": 0, "g_steps": 0})
        self.stopped = [False] * self.seeds  # seeds ended early by the caller (stop on collapse)

    @property
    def done(self) -> bool:
        return all(m.done or s for m, s in zip(self.members, self.stopped))

    def active(self, i: int) -> bool:
        return not (self.members[i].done or self.stopped[i])

    def train_epoch(self) -> list[dict[str, float]]:
        """One epoch for every seed: each seed's own permutation of the data, its rows next to the others'."""
        first = self.members[0]
        g_steps = first.g_steps()
        logs = epoch_logs(self.ctx, self.x, first.config.samples_per_step, g_steps, first.epoch, first.epochs)
        return epoch_means(logs, g_steps, self.seeds)  # one host read

    def _sync(self) -> None:
        """Copy each seed's slice of the stacked nets into its own GANRun (whose evaluation reads them)."""
        for i, m in enumerate(self.members):
            m.ctx.g.load_state_dict(unstack_seed(self.ctx.g, i))
            m.ctx.d.load_state_dict(unstack_seed(self.ctx.d, i))
            m.ctx.counts.update(self.ctx.counts)

    def step(self) -> list[dict[str, Any] | None]:
        """Train one epoch for all seeds, then evaluate each seed still running; None for a seed already ended."""
        t0 = time.perf_counter()
        metrics = self.train_epoch()
        errors = self.ctx.watch.found()
        train_s = time.perf_counter() - t0
        self._sync()
        out: list[dict[str, Any] | None] = []
        for i, (m, error) in enumerate(zip(self.members, errors)):
            if not self.active(i):
                out.append(None)
            elif error:  # this seed's losses went non-finite; its stacked slice trains on, unread
                out.append(m.diverge(error))
            else:
                out.append(m.finish_epoch(metrics[i], train_s))
        return out

    def state_dict(self) -> dict[str, Any]:
        """Every seed's GANRun state (RNG streams, histories) and the stacked nets and optimisers."""
        return {"members": [m.state_dict() for m in self.members], "stopped": list(self.stopped),
                "g": self.ctx.g.state_dict(), "d": self.ctx.d.state_dict(),
                "opt_g": self.ctx.opt_g.state_dict(), "opt_d": self.ctx.opt_d.state_dict(),
                "counts": dict(self.ctx.counts)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for m, s in zip(self.members, state["members"], strict=True):
            m.load_state_dict(s)
        self.stopped = list(state["stopped"])
        self.ctx.g.load_state_dict(state["g"])
        self.ctx.d.load_state_dict(state["d"])
        self.ctx.opt_g.load_state_dict(state["opt_g"])
        self.ctx.opt_d.load_state_dict(state["opt_d"])
        self.ctx.counts.update(state["counts"])


def seed_configs(base: TrialConfig | Mapping[str, Any], seeds: Sequence[int]) -> list[TrialConfig]:
    """The trial configs of a seed group: `base` with each seed."""
    cfg = base if isinstance(base, TrialConfig) else resolve(base)
    return [cfg.model_copy(update={"seed": int(s)}) for s in seeds]
