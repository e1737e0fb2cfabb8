"""The trial config: one typed, validated, frozen record from the YAML to the step (docs/config.md).

Every key has its one default and its one validator here; the study spec (study/schema.py) embeds
TrialConfig as `fixed`. `resolve(*layers)` builds it once per trial: defaults <- variant preset <- spec
`fixed` <- sampled values, then applies the remedies' `train` hooks so that the config holds the effective
optimiser settings.
"""
from __future__ import annotations

import copy
import inspect
import math
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

from trainables.data import DATASETS
from trainables.losses import LOSSES
from trainables.metrics.collapse import check_sample_size
from trainables.metrics.registry import METRICS, MODE_KEYS, metric_keys
from trainables.models import MODELS
from trainables.remedies import REMEDIES, check_combination, check_loss, check_model, make_params


def _known(kind: str, name: str, registry: Mapping[str, Any]) -> str:
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(sorted(registry))}")
    return name


# An integer key takes integers only: not true/false, not 7.5, not a float that happens to be whole.
Int = Annotated[int, Strict()]


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DataConfig(Frozen):
    name: str = "ring8"
    root: str | None = None  # data root; default $GAN_STUDY_DATA, else a user cache directory
    image_size: Int | None = Field(None, ge=4, le=1024)
    subset: Int | None = Field(None, ge=1)
    n_points: Int = Field(100_000, ge=1, le=10_000_000)  # 2D mixtures: points drawn once per data seed
    seed: Int = 0
    stacked_n: Int | None = Field(None, ge=1, le=10_000_000)  # stacked MNIST: images built (default 60,000)
    stacked_from: Literal["train", "train+test"] = "train"  # stacked MNIST: the MNIST digits its channels draw
    # mixture shape (data ring and grid; ring8 and grid25 are fixed presets): K modes on the ring, n per grid side
    modes: Int | None = Field(None, ge=2, le=1024)
    radius: float | None = Field(None, gt=0)
    spacing: float | None = Field(None, gt=0)
    std: float | None = Field(None, gt=0)

    _name = field_validator("name")(lambda cls, v: _known("dataset", v, DATASETS))

    @model_validator(mode="after")
    def _shape(self) -> DataConfig:
        allowed = DATASETS[self.name].shape_keys
        for key in ("modes", "radius", "spacing", "std"):
            if getattr(self, key) is not None and key not in allowed:
                takes = [n for n, e in DATASETS.items() if key in e.shape_keys]
                raise ValueError(f"{key}: dataset {self.name!r} has a fixed shape; data.{key} applies to "
                                 f"{' and '.join(takes)}")
        if self.stacked_from != "train" and self.name != "stacked_mnist":
            raise ValueError(f"stacked_from: applies to stacked_mnist, not {self.name!r}")
        return self


def _check_type(key: str, value: Any, kind: Any) -> None:
    """A model builder argument must have its annotated plain type: int (not bool), float (finite), bool, str, or
    one of a Literal's values."""
    if typing.get_origin(kind) is Literal:
        if value not in typing.get_args(kind):
            raise ValueError(f"{key}: expected one of {list(typing.get_args(kind))}, got {value!r}")
        return
    ok = {int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
          bool: lambda v: isinstance(v, bool), str: lambda v: isinstance(v, str)}.get(kind)
    if ok is not None and not ok(value):
        raise ValueError(f"{key}: expected {'a finite float' if kind is float else kind.__name__}, got {value!r}")


class ModelConfig(Frozen):
    """`name` picks the builder; every other key must be one of its keyword arguments."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)
    name: str = "mlp"

    @model_validator(mode="after")
    def _kwargs(self) -> ModelConfig:
        _known("model", self.name, MODELS)
        allowed = set(inspect.signature(MODELS[self.name]).parameters) - {"data_shape", "pack", "code", "unused"}
        hints = typing.get_type_hints(MODELS[self.name])
        for key, value in (self.model_extra or {}).items():
            if key not in allowed:
                raise ValueError(f"unknown argument {key!r} for model {self.name!r}; "
                                 f"known: {', '.join(sorted(allowed))}")
            _check_type(key, value, hints.get(key))
        return self

    @property
    def kwargs(self) -> dict[str, Any]:
        """The builder's keyword arguments (everything but `name`)."""
        return dict(self.model_extra or {})


class TrainConfig(Frozen):
    epochs: Int = Field(10, ge=1, le=100_000)
    batch_size: Int = Field(64, ge=2, le=1_000_000)
    steps_per_epoch: Int | None = Field(None, ge=1)  # default: one pass over the data (len(data) // batch_size)
    optimizer: Literal["adam", "rmsprop", "sgd"] = "adam"
    lr: float = Field(2e-4, gt=0)
    lr_d: float | None = Field(None, gt=0)  # per-network overrides of lr (or the two_timescale remedy)
    lr_g: float | None = Field(None, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: Int = Field(1, ge=1, le=100)  # D steps per G step (or the n_critic remedy)
    # D steps before each of the first 25 G steps and every 500th (WGAN's and MMD-GAN's code: 100); 0: always
    # n_critic (or the n_critic remedy's `burst`)
    critic_burst: Int = Field(0, ge=0, le=1000)
    # alternating: G's step is taken against D after D's step; simultaneous: G's gradient against the D that
    # D's (last) step starts from, D's step on the fakes of the G before G's step (docs/config.md)
    updates: Literal["alternating", "simultaneous"] = "alternating"
    # G updates a training step, each on a fresh G(z) of the step's latents (DCGAN-tensorflow runs g_optim twice)
    g_updates: Int = Field(1, ge=1, le=10)
    threads: Int | None = Field(None, ge=1)  # torch threads; None = the trial's CPUs
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: G's and D's forward passes and losses under autocast
    channels_last: bool = False  # image nets and data in channels-last memory format (conv models)
    compile: bool = False  # torch.compile G and D (nn.Module.compile: state dicts unchanged)
    deterministic: bool = False  # PyTorch's deterministic algorithms and cuDNN flags (docs/config.md)

    @model_validator(mode="after")
    def _g_updates(self) -> TrainConfig:
        if self.g_updates > 1 and self.updates == "simultaneous":
            raise ValueError("g_updates > 1 needs updates: alternating (a simultaneous step has one G update)")
        return self


class EvalConfig(Frozen):
    """Per-epoch evaluation (trainables.evaluate): mode metrics always, the listed `metrics` (registry names)."""

    n_samples: Int = Field(2500, ge=10, le=1_000_000)
    grid_every: Int = Field(5, ge=1)
    grid_size: Int = Field(64, ge=1, le=100_000)  # samples in the logged grid (images) or scatter (2D)
    metrics: tuple[str, ...] = ("prdc", "ndb", "duplicates", "probes")
    k: Int = Field(5, ge=1)  # nearest neighbours of the PRDC balls
    ndb_bins: Int = Field(100, ge=2)  # K of the NDB k-means bins
    probe_points: Int = Field(256, ge=1)
    probe_radius: float | None = Field(None, gt=0)  # half-length of probed lines; None: 3 mixture std (2D), 0.5
    extended_every: Int = Field(1, ge=1)  # the listed metrics every n epochs (always when collapse.metric needs one)
    # G's BatchNorm when sampling for evaluation: the batch's statistics, or the running averages (eval mode, as
    # DCGAN-tensorflow's `sampler`)
    g_batchnorm: Literal["batch", "running"] = "batch"

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for name in v:
            _known("metric", name, METRICS)
        if len(set(v)) != len(v):
            raise ValueError(f"lists a metric twice: {list(v)}")
        return v

    @model_validator(mode="after")
    def _k(self) -> EvalConfig:
        if "prdc" in self.metrics and self.k >= self.n_samples:
            raise ValueError(f"k = {self.k} needs more than k samples; n_samples = {self.n_samples}")
        return self


class CollapseConfig(Frozen):
    """The collapse verdict (docs/collapse.md): per-epoch states from spread and quality, then patience."""

    metric: str = "eval/spread"  # share of modes held robustly by the high-quality samples
    threshold: float = 0.5  # spread below it (direction "below") is the collapsed state
    quality_floor: float = Field(0.5, ge=0.0, le=1.0)  # high-quality share needed to judge a mode metric's spread
    patience: Int = Field(2, ge=1)
    warmup: Int = Field(0, ge=0)
    direction: Literal["below", "above"] = "below"
    # count a collapse that begins before any diverse evaluation (a generator that learned few modes from the
    # start, as the GAN baselines of VEEGAN and the Unrolled GAN paper); false: such a trial is never_diverse
    from_start: bool = False

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        """A key a metric of the registry reports, or any key in another reported namespace."""
        namespace = v.split("/", 1)[0] if "/" in v else None
        if v in metric_keys() or (namespace in STEP_NAMESPACES and v != f"{namespace}/"):
            return v
        raise ValueError(f"unknown collapse metric {v!r}; known: {', '.join(metric_keys())}, "
                         f"or a reported {'/, '.join(STEP_NAMESPACES)}/ key")


# Namespaces of the other per-epoch keys a GANRun reports (losses, D outputs, gradients, compute, remedies).
STEP_NAMESPACES = ("loss", "d", "grad", "compute", "time", "remedy")


class TrialConfig(Frozen):
    """The whole trial: what GANRun, build_context, the remedies and the models are built from."""

    seed: Int = 0
    variant: str | None = None
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    loss: str = "nonsaturating"
    remedies: dict[str, Any] = {}  # name -> the remedy's parameter record (trainables.hooks.params)
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    collapse: CollapseConfig = CollapseConfig()

    _loss = field_validator("loss")(lambda cls, v: _known("loss", v, LOSSES))

    @field_validator("variant")
    @classmethod
    def _variant(cls, v: str | None) -> str | None:
        from trainables.variants import VARIANTS

        return v if v is None else _known("variant", v, VARIANTS)

    @field_validator("remedies", mode="before")
    @classmethod
    def _remedies(cls, value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise ValueError("expected a mapping of remedy names to their parameters")
        out = {}
        for name, given in value.items():
            record = REMEDIES[name].params if name in REMEDIES else None
            out[name] = given if record is not None and isinstance(given, record) else make_params(name, given)
        return out

    @model_validator(mode="after")
    def _combination(self) -> TrialConfig:
        check_combination(list(self.remedies), LOSSES[self.loss].uses_targets)
        check_loss(list(self.remedies), self.loss)
        check_model(list(self.remedies), self.model.name)
        if self.collapse.metric in MODE_KEYS:
            check_sample_size(self.eval.n_samples, DATASETS[self.data.name].modes_of(self.data), self.quality_floor)
        return self

    @property
    def quality_floor(self) -> float:
        """The collapse verdict's quality floor: collapse.quality_floor for a mode metric, 0 for model-free ones."""
        return self.collapse.quality_floor if self.collapse.metric in MODE_KEYS else 0.0

    def dump(self) -> dict[str, Any]:
        """The config as plain nested dicts and lists (remedy records as their fields)."""
        return self.model_dump(mode="json")

    @property
    def pack(self) -> int:
        """How many samples D judges at once (the packing remedy's m; 1 without it)."""
        packing = self.remedies.get("packing")
        return int(packing.m) if packing is not None else 1

    @property
    def samples_per_step(self) -> int:
        """Real (and fake) samples a D step draws: train.batch_size, times m when it counts packs (PacGAN)."""
        packing = self.remedies.get("packing")
        counts_packs = packing is not None and packing.batch == "packs"
        return self.train.batch_size * (self.pack if counts_packs else 1)


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Return `base` updated recursively by `over` (neither is modified)."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{'train.lr': 1} -> {'train': {'lr': 1}}."""
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = out
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'train': {'lr': 1}} -> {'train.lr': 1}; empty dicts are kept as {}."""
    out: dict[str, Any] = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def merged(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """The raw (unvalidated) trial config: the variant preset of the merged layers under the layers."""
    from trainables.variants import VARIANTS

    raw: dict[str, Any] = {}
    for layer in layers:
        raw = deep_merge(raw, layer)
    variant = raw.get("variant")
    preset = VARIANTS[variant].config if isinstance(variant, str) and variant in VARIANTS else {}
    return deep_merge(preset, raw)


def _apply_train_hooks(cfg: TrialConfig, raw: Mapping[str, Any]) -> TrialConfig:
    """The remedies' `train` hooks on the validated config; a train.* key both a remedy and the spec set is refused."""
    train = cfg.train
    given = raw.get("train") or {}
    for name, p in cfg.remedies.items():
        remedy = REMEDIES[name]
        clash = [k for k in remedy.sets if k in given]
        if clash:
            raise ValueError(f"train.{clash[0]} and remedy {name!r} both set it; keep one (remove train.{clash[0]} "
                             f"or remedies.{name})")
        train = remedy.train(cfg, p, train) if remedy.train else train
    return cfg if train is cfg.train else cfg.model_copy(update={"train": train})


def resolve(*layers: Mapping[str, Any]) -> TrialConfig:
    """Defaults <- variant preset <- each layer (spec `fixed`, sampled values, ...): the frozen trial config."""
    raw = merged(*layers)
    return _apply_train_hooks(TrialConfig.model_validate(raw), raw)
