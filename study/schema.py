"""Pydantic models of a study spec (validated before Ray starts); its `fixed` block is a trial config
(trainables.config.TrialConfig), checked by resolving it, so the spec has no trial keys or defaults of its own."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from trainables.config import TrialConfig


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, allow_inf_nan=False)


Int = int  # the `int` field below shadows the builtin inside the class body


class Distribution(Strict):
    """One search entry: exactly one of grid, choice, uniform, loguniform, int."""

    grid: list[Any] | None = None
    choice: list[Any] | None = None
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    int: tuple[Int, Int] | None = None
    step: float | None = None

    @model_validator(mode="after")
    def _one(self) -> Distribution:
        kinds = [k for k in ("grid", "choice", "uniform", "loguniform", "int") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"expected exactly one of grid, choice, uniform, loguniform, int; got {kinds or 'none'}")
        values = getattr(self, kinds[0])
        if kinds[0] in ("grid", "choice") and not values:
            raise ValueError(f"{kinds[0]} must list at least one value")
        if kinds[0] in ("uniform", "loguniform", "int") and not values[0] < values[1]:
            raise ValueError(f"{kinds[0]} bounds must be [low, high] with low < high, got {list(values)}")
        if kinds[0] == "loguniform" and values[0] <= 0:
            raise ValueError("loguniform bounds must be positive")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("grid", "choice", "uniform", "loguniform", "int") if getattr(self, k) is not None)

    @property
    def values(self) -> list[Any]:
        """A categorical entry's values as written (grid or choice); for the others, the bounds."""
        return list(getattr(self, self.kind))


class Objective(Strict):
    metric: str = "objective"
    mode: Literal["max", "min"] = "max"


class Scheduler(Strict):
    name: Literal["none", "asha", "stop_on_collapse"] = "none"
    grace_period: int = Field(1, ge=1)
    reduction_factor: float = Field(3, gt=1)

    @field_validator("name", mode="before")
    @classmethod
    def _dash(cls, v: Any) -> Any:
        return v.replace("-", "_") if isinstance(v, str) else v


class Resources(Strict):
    cpu: float = Field(1, gt=0)
    gpu: float = Field(0, ge=0)


class Tracking(Strict):
    experiment: str | None = None
    uri: str | None = None


class Checkpoint(Strict):
    every: int = Field(5, ge=1)
    keep: int = Field(2, ge=1)


class Spec(Strict):
    """A study: one YAML file in search_spaces/."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    fixed: dict[str, Any] = {}  # a partial trial config: the variant preset and the defaults fill the rest
    search: dict[str, Distribution] = {}
    seeds: int | list[int] = 1
    # seeds trained together as one seed-batched model per trial (trainables/seeds.py; mlp family, row-wise
    # remedies): a configuration's seeds run as seeds / seeds_per_trial trials; resources are per seed
    seeds_per_trial: int = Field(1, ge=1, le=1024)
    trials: int | None = Field(None, ge=1)
    objective: Objective = Objective()
    scheduler: Scheduler = Scheduler()
    resources: Resources = Resources()
    tracking: Tracking = Tracking()
    storage_path: str | None = None
    checkpoint: Checkpoint = Checkpoint()
    max_failures: int = Field(0, ge=-1)
    sampler_seed: int = 0
    max_concurrent: int | None = Field(None, ge=1)
    quick: dict[str, Any] = {}

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: int | list[int]) -> int | list[int]:
        if (isinstance(v, int) and v < 1) or (isinstance(v, list) and (not v or len(set(v)) != len(v))):
            raise ValueError("seeds must be a positive count or a non-empty list of distinct integers")
        return v

    _base: TrialConfig | None = PrivateAttr(None)

    @property
    def base(self) -> TrialConfig:
        """The resolved `fixed` trial config (set by study.spec.validate)."""
        if self._base is None:
            from trainables.config import resolve

            self._base = resolve(self.fixed)
        return self._base

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    @property
    def seed_groups(self) -> list[list[int]]:
        """The seeds of each trial of a configuration: one each, or `seeds_per_trial` trained together."""
        seeds, size = self.seed_list, self.seeds_per_trial
        return [seeds[i : i + size] for i in range(0, len(seeds), size)]

    @property
    def trial_resources(self) -> dict[str, float]:
        """What one trial asks Ray for: `resources` per seed, times the seeds it trains together."""
        size = min(self.seeds_per_trial, len(self.seed_list))  # 4 decimals: 0.14 x 50 is 7 GPUs, as for Ray
        return {"cpu": round(self.resources.cpu * size, 4), "gpu": round(self.resources.gpu * size, 4)}
