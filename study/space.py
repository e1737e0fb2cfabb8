"""The search encoding (study side only): Optuna's define-by-run space, and the decoding of a Tune config.

Categorical entries (grid, choice, remedy sets) reach Optuna as indices into the spec's own value list, so
lists, mappings and remedy sets come back exactly as written. Grid points are assigned round-robin by
Optuna's trial number; `remedies.<name>.<param>` entries are suggested only when `<name>` is fixed or chosen
(TPE models them with their branch: group=True). Tune's Repeater index picks the seed. `TrialBuilder` turns
the config Tune hands a trial into its TrialConfig, so trainables/ knows none of this.
"""
from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from study.schema import Distribution, Spec
from trainables.config import TrialConfig, deep_merge, resolve, unflatten
from trainables.seeds import seed_configs

TRIAL_INDEX = "__trial_index__"  # set by ray.tune.search.Repeater: which seed of the configuration this is
REMEDIES_KEY = "remedies"
CATEGORICAL = ("grid", "choice")


def parse_remedy_set(option: Any) -> tuple[str, ...]:
    """A remedy-set option as written ("a+b", [a, b], "none", None or []) -> its remedy names, in order."""
    names = option.split("+") if isinstance(option, str) else list(option or [])
    return tuple(str(n).strip() for n in names if n and str(n).strip() != "none")


def format_remedy_set(names: Sequence[str]) -> str:
    """Remedy names -> the canonical text of the set: sorted and joined by "+", "none" when empty."""
    return "+".join(sorted(names)) or "none"


def format_value(key: str, value: Any) -> str:
    """A searched value as text for MLflow and reports: remedy sets canonical, lists and mappings as JSON."""
    if key == REMEDIES_KEY:
        return format_remedy_set(parse_remedy_set(value))
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def conditional_remedy(key: str) -> str | None:
    """The remedy of a conditional `remedies.<name>.<param>` search key, else None."""
    parts = key.split(".")
    return parts[1] if parts[0] == REMEDIES_KEY and len(parts) == 3 else None


class SearchSpace:
    """Callable on an Optuna trial (define-by-run); returns the grid point's indices as constants."""

    def __init__(self, spec: Spec):
        self.grid_keys = [k for k, d in spec.search.items() if d.kind == "grid"]
        sizes = [range(len(spec.search[k].grid or [])) for k in self.grid_keys]
        self.grid = [dict(zip(self.grid_keys, combo)) for combo in itertools.product(*sizes)]
        self.dists = {k: d for k, d in spec.search.items() if d.kind != "grid"}
        self.search = dict(spec.search)
        self.fixed_remedies = set(spec.fixed.get(REMEDIES_KEY) or {})

    def __call__(self, trial: Any) -> dict[str, Any] | None:
        point = dict(self.grid[trial.number % len(self.grid)]) if self.grid else {}
        active = set(self.fixed_remedies)
        if REMEDIES_KEY in point:
            active |= set(parse_remedy_set(self.search[REMEDIES_KEY].values[point[REMEDIES_KEY]]))
        elif REMEDIES_KEY in self.dists:
            index = trial.suggest_categorical(REMEDIES_KEY, list(range(len(self.dists[REMEDIES_KEY].values))))
            active |= set(parse_remedy_set(self.dists[REMEDIES_KEY].values[index]))
        for key, dist in self.dists.items():
            remedy = conditional_remedy(key)
            if key == REMEDIES_KEY or (remedy is not None and remedy not in active):
                continue
            _suggest(trial, key, dist)
        return point or None


def _suggest(trial: Any, key: str, dist: Distribution) -> Any:
    if dist.kind == "choice":
        return trial.suggest_categorical(key, list(range(len(dist.values))))
    low, high = dist.values
    if dist.kind == "uniform":
        return trial.suggest_float(key, low, high, step=dist.step)
    if dist.kind == "loguniform":
        return trial.suggest_float(key, low, high, log=True)
    return trial.suggest_int(key, int(low), int(high), step=int(dist.step or 1))


def decode(search: Mapping[str, Distribution], sampled: Mapping[str, Any]) -> dict[str, Any]:
    """Tune's sampled config (indices for categorical entries) -> {search key: value as the spec wrote it}."""
    out = {}
    for key, value in sampled.items():
        if key == TRIAL_INDEX or key not in search:
            continue
        dist = search[key]
        out[key] = dist.values[int(value)] if dist.kind in CATEGORICAL else value
    return out


def overrides(values: Mapping[str, Any]) -> dict[str, Any]:
    """Decoded search values -> a nested trial-config layer (a remedy set adds its remedies with defaults)."""
    flat = {k: v for k, v in values.items() if k != REMEDIES_KEY}
    layer = unflatten(flat)
    chosen: dict[str, Any] = {name: {} for name in parse_remedy_set(values.get(REMEDIES_KEY))}
    return deep_merge({REMEDIES_KEY: chosen}, layer) if chosen else layer


class TrialBuilder:
    """Turns the config Tune gives a trial into its TrialConfig (one per seed of a seed-batched trial) and the
    searched values as text (picklable)."""

    def __init__(self, spec: Spec):
        self.fixed, self.search, self.groups = dict(spec.fixed), dict(spec.search), spec.seed_groups

    def values(self, sampled: Mapping[str, Any]) -> dict[str, str]:
        """The trial's searched values as text, by search key (MLflow params `search.<key>`)."""
        return {k: format_value(k, v) for k, v in sorted(decode(self.search, sampled).items())}

    def configs(self, sampled: Mapping[str, Any]) -> list[TrialConfig]:
        """The TrialConfig of each seed the trial trains (resolved once): the Repeater's index picks the group."""
        return seed_configs(self(sampled), self._group(sampled))

    def __call__(self, sampled: Mapping[str, Any]) -> TrialConfig:
        """The TrialConfig of the trial's (first) seed."""
        seed = int(self._group(sampled)[0])
        return resolve(self.fixed, overrides(decode(self.search, sampled)), {"seed": seed})

    def _group(self, sampled: Mapping[str, Any]) -> list[int]:
        return self.groups[int(sampled.get(TRIAL_INDEX, 0)) % len(self.groups)]
