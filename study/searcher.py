"""The searcher of a study: Optuna TPE through Ray Tune, each configuration repeated once per seed.

Tune's Repeater averages the objective over a configuration's seeds before Optuna hears of it. Here it also
keeps its own groups across a restore, and tells Optuna PRUNED (Optuna's own state, with the seeds' mean
objective as the last intermediate value) when a seed was stopped before its last epoch by ASHA or by
stop-on-collapse, so TPE does not take a cut-short score for a finished one (docs/collapse.md).
"""
from __future__ import annotations

import os
import pickle
import time
from typing import Any

import numpy as np
import optuna
from ray.tune.search import Repeater
from ray.tune.search.optuna import OptunaSearch

from study.schema import Spec
from study.space import SearchSpace
from trainables import names


class PrunableOptunaSearch(OptunaSearch):
    """OptunaSearch that can end a trial as PRUNED after reporting its last intermediate value."""

    def tell_pruned(self, trial_id: str, value: float, step: int) -> None:
        if trial_id in self._completed_trials:
            return
        if np.isfinite(value):
            self._ot_trials[trial_id].report(float(value), int(step))
        self.on_trial_complete(trial_id, result=None)  # no value and no error: OptunaSearch tells PRUNED


def stopped_early(result: dict[str, Any] | None) -> bool:
    """A trial's last result says it ended before its last epoch without diverging (ASHA, stop-on-collapse)."""
    if not result or "epoch" not in result:
        return False
    planned = result.get(names.EPOCHS_PLANNED, result["epoch"])
    if names.STOPPED_SEEDS in result:  # a seed-batched trial: one seed stopped early, or the whole trial (ASHA)
        return bool(result[names.STOPPED_SEEDS]) or (int(result["epoch"]) < int(planned)
                                                     and float(result.get(names.DIVERGED, 0)) < 1)
    return int(result["epoch"]) < int(planned) and not result.get(names.DIVERGED)


class SeedRepeater(Repeater):
    """Tune's Repeater (each configuration once per seed) that saves its own groups, so that a restored study
    keeps reporting finished seeds to the right Optuna trial (Repeater.save keeps only Optuna), and that tells
    Optuna a configuration with an early-stopped seed as pruned."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None,  # type: ignore[override]
                          **kwargs: Any) -> None:
        group = self._trial_id_to_group.get(trial_id)
        if group is None:
            return super().on_trial_complete(trial_id, result, **kwargs)
        pruned = getattr(self, "_pruned", {})
        self._pruned = pruned
        if result is not None and stopped_early(result):
            pruned[group.primary_trial_id] = min(int(result["epoch"]), pruned.get(group.primary_trial_id, 10**9))
        if group.primary_trial_id not in pruned or kwargs.get("error"):
            return super().on_trial_complete(trial_id, result, **kwargs)
        metric = self.searcher.metric
        group.report(trial_id, result[metric] if result and metric in result else np.nan)
        if group.finished_reporting():
            assert isinstance(self.searcher, PrunableOptunaSearch)
            self.searcher.tell_pruned(group.primary_trial_id, float(np.nanmean(group.scores())),
                                      pruned[group.primary_trial_id])

    def save(self, checkpoint_path: str) -> None:
        inner = checkpoint_path + ".optuna"
        self.searcher.save(inner)
        with open(inner, "rb") as f:
            blob = f.read()
        os.remove(inner)
        with open(checkpoint_path, "wb") as f:
            pickle.dump({"repeater": self.get_state(), "optuna": blob}, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)  # Tune's own searcher checkpoint, written by save() above
        inner = checkpoint_path + ".optuna"
        with open(inner, "wb") as f:
            f.write(state["optuna"])
        self.searcher.restore(inner)
        os.remove(inner)
        self.set_state(state["repeater"])


def searcher(spec: Spec) -> SeedRepeater:
    """TPE (multivariate, grouped for conditional remedies, constant liar for parallel trials) under a SeedRepeater."""
    sampler = optuna.samplers.TPESampler(seed=spec.sampler_seed, multivariate=True, group=True, constant_liar=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = PrunableOptunaSearch(space=SearchSpace(spec), metric=spec.objective.metric, mode=spec.objective.mode,
                                  sampler=sampler, study_name=f"{spec.name}-{int(time.time())}")
    return SeedRepeater(search, repeat=len(spec.seed_groups), set_index=True)
