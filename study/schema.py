"""Pydantic models of a study spec and of the trial config it fixes (validated before Ray starts)."""
from __future__ import annotations

import inspect
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trainables.data import DATASETS
from trainables.losses import LOSSES
from trainables.models import MODELS
from trainables.remedies import REMEDIES
from trainables.variants import VARIANTS


def _known(kind: str, name: str, registry) -> str:
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(sorted(registry))}")
    return name


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class DataCfg(Strict):
    name: str = "ring8"
    root: str | None = None
    image_size: int | None = Field(None, ge=4)
    subset: int | None = Field(None, ge=1)
    n_points: int = Field(100_000, ge=1)
    seed: int = 0
    stacked_n: int | None = Field(None, ge=1)

    _name = field_validator("name")(lambda cls, v: _known("dataset", v, DATASETS))


class ModelCfg(BaseModel):
    """`name` picks the builder; every other key must be one of its keyword arguments."""

    model_config = ConfigDict(extra="allow")
    name: str = "mlp"

    @model_validator(mode="after")
    def _kwargs(self) -> "ModelCfg":
        _known("model", self.name, MODELS)
        allowed = set(inspect.signature(MODELS[self.name]).parameters) - {"data_shape", "pack", "unused"}
        for key in (self.model_extra or {}):
            if key not in allowed:
                raise ValueError(f"unknown argument {key!r} for model {self.name!r}; known: {', '.join(sorted(allowed))}")
        return self


class TrainCfg(Strict):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=2)
    steps_per_epoch: int | None = Field(None, ge=1)
    optimizer: Literal["adam", "rmsprop", "sgd"] = "adam"
    lr: float = Field(2e-4, gt=0)
    lr_d: float | None = Field(None, gt=0)
    lr_g: float | None = Field(None, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: int = Field(1, ge=1)
    threads: int | None = Field(None, ge=1)


class EvalCfg(Strict):
    """Per-epoch evaluation (trainables.evaluate); the extended metrics are on by default (DESIGN.md)."""

    n_samples: int = Field(2500, ge=10)
    every: int = Field(1, ge=1)
    grid_every: int = Field(5, ge=1)
    grid_size: int = Field(64, ge=1)
    prdc: bool = True
    k: int = Field(5, ge=1)
    ndb: bool = True
    ndb_bins: int = Field(100, ge=2)
    duplicates: bool = True
    probes: bool = True
    probe_points: int = Field(256, ge=1)
    probe_radius: float | None = Field(None, gt=0)
    extended_every: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _k(self) -> "EvalCfg":
        if self.prdc and self.k >= self.n_samples:
            raise ValueError(f"eval.k = {self.k} needs more than k samples; eval.n_samples = {self.n_samples}")
        return self


# Namespaces of the other per-epoch keys a GANRun reports (losses, D outputs, gradients, compute, remedies).
METRIC_NAMESPACES = ("loss", "d", "grad", "compute", "time", "remedy")


class CollapseCfg(Strict):
    metric: str = "eval/diversity"
    threshold: float = 0.5
    patience: int = Field(2, ge=1)
    warmup: int = Field(0, ge=0)
    direction: Literal["below", "above"] = "below"

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        """A known eval/ key (trainables.evaluate.EVAL_KEYS) or any key in another reported namespace."""
        from trainables.evaluate import EVAL_KEYS

        namespace = v.split("/", 1)[0] if "/" in v else None
        if v in EVAL_KEYS or (namespace in METRIC_NAMESPACES and v != f"{namespace}/"):
            return v
        raise ValueError(f"unknown collapse metric {v!r}; known: {', '.join(EVAL_KEYS)}, "
                         f"or a reported {'/, '.join(METRIC_NAMESPACES)}/ key")


class TrialCfg(Strict):
    """The trial config a GANRun is built from (trainables.config.DEFAULTS has the same shape)."""

    seed: int = 0
    variant: str | None = None
    data: DataCfg = DataCfg()
    model: ModelCfg = ModelCfg()
    loss: str = "nonsaturating"
    remedies: dict[str, dict[str, Any] | None] = {}
    train: TrainCfg = TrainCfg()
    eval: EvalCfg = EvalCfg()
    collapse: CollapseCfg = CollapseCfg()

    _loss = field_validator("loss")(lambda cls, v: _known("loss", v, LOSSES))
    _variant = field_validator("variant")(lambda cls, v: v if v is None else _known("variant", v, VARIANTS))

    @field_validator("remedies")
    @classmethod
    def _remedies(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, params in value.items():
            _known("remedy", name, REMEDIES)
            unknown = sorted(set(params or {}) - set(REMEDIES[name].defaults))
            if unknown:
                raise ValueError(f"remedy {name!r}: unknown parameter(s) {unknown}; "
                                 f"known: {sorted(REMEDIES[name].defaults)}")
        return value


class Distribution(Strict):
    """One search entry: exactly one of grid, choice, uniform, loguniform, int."""

    grid: list[Any] | None = None
    choice: list[Any] | None = None
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    int: tuple[int, int] | None = None
    step: float | None = None

    @model_validator(mode="after")
    def _one(self) -> "Distribution":
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
    fixed: TrialCfg = TrialCfg()
    search: dict[str, Distribution] = {}
    seeds: int | list[int] = 1
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

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)
