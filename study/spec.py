"""Load, override and validate a study spec; every error names the offending key (SpecError, exit code 2)."""
from __future__ import annotations

import itertools
import math
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from study.schema import Distribution, Spec
from study.space import CATEGORICAL, REMEDIES_KEY, conditional_remedy, format_value, overrides, parse_remedy_set
from trainables.config import ModelConfig, TrialConfig, deep_merge, resolve, unflatten
from trainables.remedies import REMEDIES, param_type
from trainables.seeds import check_seed_batch

TOP_LEVEL = set(Spec.model_fields)
_TYPES = {
    "float_parsing": "expected a number", "float_type": "expected a number",
    "int_parsing": "expected an integer", "int_type": "expected an integer", "int_from_float": "expected an integer",
    "bool_parsing": "expected true or false", "bool_type": "expected true or false",
    "string_type": "expected a string", "dict_type": "expected a mapping", "list_type": "expected a list",
    "tuple_type": "expected a list", "missing": "required key is missing",
}


class SpecError(ValueError):
    """A spec that cannot run; the message names the key and what was expected."""


def _known_keys(loc: Sequence[Any], root: type[BaseModel] = Spec) -> list[str]:
    """Field names of the pydantic model that sits at `loc` inside `root` (for 'unknown key' errors)."""
    model: type[BaseModel] | None = root
    for part in loc[:-1]:
        field = model.model_fields.get(str(part)) if model else None
        ann = getattr(field, "annotation", None)
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if str(part) == "search" or model is None:
            return sorted(Distribution.model_fields) if str(part) == "search" else []
    return sorted(model.model_fields) if model else []


def _describe(err: Mapping[str, Any], prefix: str = "", root: type[BaseModel] = Spec) -> str:
    loc = [str(p) for p in err["loc"] if not str(p).startswith(("function-", "list[", "int", "tuple["))]
    key = prefix + ".".join(loc) if loc else prefix.rstrip(" ->.") or "spec"
    kind = err["type"]
    if kind == "extra_forbidden":
        known = _known_keys(err["loc"], root)
        return f"{key}: unknown key" + (f"; known: {', '.join(known)}" if known else "")
    if kind in _TYPES:
        got = "" if kind == "missing" else f", got {err.get('input')!r}"
        return f"{key}: {_TYPES[kind]}{got}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{key}: {msg}"


def _raise(err: ValidationError, prefix: str = "", root: type[BaseModel] = Spec) -> None:
    lines, seen = [], set()
    for e in err.errors():
        text = _describe(e, prefix, root)
        if text.split(":")[0] not in seen:
            seen.add(text.split(":")[0])
            lines.append(text)
    raise SpecError("; ".join(lines[:3])) from None


def parse_override(item: str) -> tuple[str, Any]:
    """'train.epochs=20' -> ('fixed.train.epochs', 20); top-level spec keys ('trials=8') stay top-level."""
    if "=" not in item:
        raise SpecError(f"--set {item!r}: expected dotted.key=value")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise SpecError(f"--set {key}: cannot parse value {raw!r}: {err}") from None
    return (key if key.split(".")[0] in TOP_LEVEL else f"fixed.{key}"), value


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses a mapping with the same key twice (YAML itself keeps the last one)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_raw(path: str | Path) -> dict[str, Any]:
    """Read the YAML mapping of a spec file (UTF-8, safe loader, no duplicate keys)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except UnicodeDecodeError as err:
        raise SpecError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a spec must be a YAML mapping, got {type(raw).__name__}")
    return raw


def load_spec(path: str | Path, quick: bool = False, overrides: Sequence[str] = ()) -> Spec:
    """The validated spec: file <- quick block (with --quick) <- --set overrides."""
    raw = load_raw(path)
    if quick:
        if not isinstance(raw.get("quick"), dict) or not raw["quick"]:
            raise SpecError(f"{path}: --quick given but the spec has no `quick` block")
        raw = deep_merge(raw, raw["quick"])
    for item in overrides:
        key, value = parse_override(item)
        if key.startswith("search."):
            raw = {**raw, "search": set_search(raw.get("search") or {}, key[len("search."):], value)}
        else:
            raw = deep_merge(raw, unflatten({key: value}))
    return validate(raw)


KINDS = ("grid", "choice", "uniform", "loguniform", "int")


def set_search(search: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    """`--set search.<key>[.<kind>]=value` on the search mapping, whose keys hold dots themselves:
    `search.train.lr.loguniform=[1e-4, 1e-3]` makes `train.lr` that entry (an entry has one kind);
    `search.train.lr={grid: [...]}` replaces it; `search.train.lr=null` drops it."""
    out = dict(search)
    key, _, kind = path.rpartition(".")
    if kind in KINDS and key:
        out[key] = {kind: value}
    elif value is None:
        if path not in out:
            raise SpecError(f"--set search.{path}: not a searched key; searched: {', '.join(out) or 'none'}")
        del out[path]
    elif isinstance(value, dict):
        out[path] = value
    else:
        raise SpecError(f"--set search.{path}: give a search entry ({{grid: [...]}}) or end the key with one of "
                        f"{', '.join(KINDS)} (search.{path}.grid=[...])")
    return out


def validate(raw: Mapping[str, Any]) -> Spec:
    """Validate the spec, its `fixed` trial config, and every search entry against the configs it produces."""
    try:
        spec = Spec.model_validate(dict(raw))
    except ValidationError as err:
        _raise(err)
    if "search" in raw and not spec.search:
        raise SpecError("search: empty search space; list at least one key, or remove `search` to run the fixed "
                        "config across seeds")
    spec._base = _resolve_or_raise("fixed.", spec.fixed)
    for key, dist in spec.search.items():
        _check_entry(spec, key, dist)
    _check_combinations(spec)
    _check_seed_batch(spec)
    grid = grid_points(spec)
    if spec.trials is not None and spec.trials < grid:
        raise SpecError(f"trials: {spec.trials} is fewer than the {grid} grid points; every grid point needs a trial")
    return spec


def _resolve_or_raise(where: str, *layers: Mapping[str, Any]) -> TrialConfig:
    """resolve(*layers), or a SpecError naming the key under `where` ("fixed." or "search.<key> -> ")."""
    try:
        return resolve(*layers)
    except ValidationError as err:
        _raise(err, prefix=where, root=TrialConfig)
    except ValueError as err:
        raise SpecError(f"{where.rstrip(' ->.') or 'fixed'}: {err}") from None
    raise AssertionError("unreachable")


def _check_entry(spec: Spec, key: str, dist: Distribution) -> None:
    where = f"search.{key}"
    if key == "seed":
        raise SpecError(f"{where}: seeds are not searched; use the top-level `seeds`")
    if key == REMEDIES_KEY:
        if dist.kind not in CATEGORICAL:
            raise SpecError(f"{where}: expected grid or choice over remedy sets ('a+b', [a, b] or 'none')")
        for option in dist.values:
            for name in parse_remedy_set(option):
                if name not in REMEDIES:
                    raise SpecError(f"{where}: unknown remedy {name!r}; known: {', '.join(sorted(REMEDIES))}")
    remedy = conditional_remedy(key)
    if remedy is not None:
        _check_conditional(spec, remedy, where)
    kind = field_kind(key)
    if kind is None and key != REMEDIES_KEY:
        raise SpecError(f"{where}: not a trial-config key (e.g. train.lr, remedies.label_flip.rate, variant)")
    if dist.kind in ("uniform", "loguniform") and kind is int:
        raise SpecError(f"{where}: {key} is an integer; search it with int: [low, high] or a grid/choice")
    active: dict[str, Any] = {REMEDIES_KEY: {remedy: {}}} if remedy else {}
    for value in dist.values:
        _resolve_or_raise(f"{where} = {format_value(key, value)} -> ", spec.fixed, active, overrides({key: value}))


def _check_combinations(spec: Spec, limit: int = 512) -> None:
    """Every combination of the categorical entries' values must resolve (e.g. a searched variant with a
    searched remedy set); past `limit` combinations, each entry alone was checked by _check_entry."""
    cats = {k: d.values for k, d in spec.search.items() if d.kind in CATEGORICAL and not conditional_remedy(k)}
    if len(cats) < 2 or math.prod(len(v) for v in cats.values()) > limit:
        return
    for combo in itertools.product(*cats.values()):
        values = dict(zip(cats, combo))
        shown = ", ".join(f"{k}={format_value(k, v)}" for k, v in values.items())
        _resolve_or_raise(f"search ({shown})", spec.fixed, overrides(values))


def _check_seed_batch(spec: Spec) -> None:
    """seeds_per_trial > 1: the fixed config and every categorical search value must train seed-batched, and a
    trial's GPU share (resources.gpu x seeds) must be a fraction or a whole number of GPUs (Ray's rule)."""
    if spec.seeds_per_trial < 2:
        return
    if len(spec.seed_list) > spec.seeds_per_trial and len(spec.seed_list) % spec.seeds_per_trial:
        raise SpecError(f"seeds_per_trial: {spec.seeds_per_trial} does not divide the {len(spec.seed_list)} seeds; "
                        f"uneven trials would weigh seeds unevenly in the objective Optuna gets")
    layers: list[tuple[str, Mapping[str, Any]]] = [("fixed", {})]
    layers += [(f"search.{k}={format_value(k, v)}", overrides({k: v})) for k, d in spec.search.items()
               if d.kind in CATEGORICAL and not conditional_remedy(k) for v in d.values]
    for where, layer in layers:
        try:
            check_seed_batch(resolve(spec.fixed, layer), spec.seeds_per_trial)
        except ValueError as err:
            raise SpecError(f"seeds_per_trial: {spec.seeds_per_trial} seeds a trial, but {where}: {err}") from None
    gpu = spec.trial_resources["gpu"]
    if gpu > 1 and abs(gpu - round(gpu)) > 1e-4:  # Ray counts resources in units of 1e-4
        raise SpecError(f"seeds_per_trial: a trial asks for resources.gpu x seeds = {gpu:g} GPUs; Ray takes a "
                        f"fraction of one GPU or whole GPUs")


def field_kind(key: str) -> type | None:
    """The Python type of the trial-config field at dotted `key` (None when there is no such key); model
    builder arguments and remedy parameters included."""
    parts = key.split(".")
    if parts[0] == REMEDIES_KEY:
        if len(parts) == 1:
            return dict
        if len(parts) != 3 or parts[1] not in REMEDIES:
            return None
        annotation = param_type(parts[1], parts[2])
        return None if annotation is None else _plain(annotation)
    model: Any = TrialConfig
    for i, part in enumerate(parts):
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return object if model is ModelConfig and i == len(parts) - 1 else None
        model = fields[part].annotation
    return _plain(model)


def _plain(annotation: Any) -> type | None:
    """int for `int` or `int | None` (Annotated or not), float likewise, else object."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    args = [typing.get_args(a)[0] if typing.get_origin(a) is typing.Annotated else a
            for a in typing.get_args(annotation) if a is not type(None)]
    if annotation in (int, float, str, bool):
        return annotation
    if annotation in ("int", "float"):
        return {"int": int, "float": float}[annotation]
    if len(args) == 1 and args[0] in (int, float, str, bool):
        return args[0]
    if isinstance(annotation, str) and annotation.startswith(("int", "float")):
        return int if annotation.startswith("int") else float
    return object


def _check_conditional(spec: Spec, remedy: str, where: str) -> None:
    if remedy not in REMEDIES:
        raise SpecError(f"{where}: unknown remedy {remedy!r}; known: {', '.join(sorted(REMEDIES))}")
    searched = spec.search.get(REMEDIES_KEY)
    chosen = {n for option in searched.values for n in parse_remedy_set(option)} if searched else set()
    if remedy not in (spec.fixed.get(REMEDIES_KEY) or {}) and remedy not in chosen:
        raise SpecError(f"{where}: remedy {remedy!r} is neither in fixed.remedies nor among search.remedies options")


def grid_points(spec: Spec) -> int:
    """Number of grid combinations (1 when there is no grid entry)."""
    return math.prod(len(d.values) for d in spec.search.values() if d.kind == "grid")


def n_configurations(spec: Spec) -> int:
    """Configurations the study samples: `trials`, else the grid (times 4 when other keys are searched)."""
    if spec.trials is not None:
        return spec.trials
    has_dist = any(d.kind != "grid" for d in spec.search.values())
    return grid_points(spec) * (4 if has_dist else 1)
