"""The Optuna define-by-run search space of a spec: grids round-robin, distributions, conditional remedies."""
from __future__ import annotations

import itertools
from typing import Any

from study.schema import Distribution, Spec
from study.spec import remedy_sets


class SearchSpace:
    """Callable on an Optuna trial; returns the flat dotted-key config of one configuration.

    Grid entries are assigned round-robin by Optuna's trial number, so `trials` configurations cover every
    grid point evenly; other entries are suggested by Optuna; `remedies.<name>.<param>` entries are suggested
    only when `<name>` is fixed or chosen (so TPE models them with their branch: group=True).
    """

    def __init__(self, spec: Spec):
        grid = {k: d.grid for k, d in spec.search.items() if d.kind == "grid"}
        self.grid_keys = list(grid)
        self.grid = [dict(zip(self.grid_keys, combo)) for combo in itertools.product(*grid.values())]
        self.dists = {k: d for k, d in spec.search.items() if d.kind != "grid"}
        self.fixed_remedies = set(spec.fixed.remedies)

    def __call__(self, trial: Any) -> dict[str, Any]:
        point = dict(self.grid[trial.number % len(self.grid)]) if self.grid else {}
        active = set(self.fixed_remedies)
        if "remedies" in point:
            active |= set(_names(point["remedies"]))
        elif "remedies" in self.dists:
            options = ["+".join(n) or "none" for n in remedy_sets(self.dists["remedies"])]
            active |= set(_names(trial.suggest_categorical("remedies", options)))
        for key, dist in self.dists.items():
            parts = key.split(".")
            if key == "remedies" or (parts[0] == "remedies" and len(parts) == 3 and parts[1] not in active):
                continue
            _suggest(trial, key, dist)
        return point or None


def _names(option: Any) -> list[str]:
    names = option.split("+") if isinstance(option, str) else list(option or [])
    return [n for n in names if n and n != "none"]


def _suggest(trial: Any, key: str, dist: Distribution) -> Any:
    if dist.kind == "choice":
        options = [v if isinstance(v, (str, int, float, bool)) or v is None else repr(v) for v in dist.choice]
        return trial.suggest_categorical(key, options)
    if dist.kind == "uniform":
        return trial.suggest_float(key, *dist.uniform, step=dist.step)
    if dist.kind == "loguniform":
        return trial.suggest_float(key, *dist.loguniform, log=True)
    return trial.suggest_int(key, *dist.int, step=int(dist.step or 1))

