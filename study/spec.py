"""Load, override and validate a study spec; every error names the offending key (SpecError, exit code 2)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml
from pydantic import BaseModel, ValidationError

from study.schema import Distribution, Spec, TrialCfg
from trainables.config import deep_merge, unflatten
from trainables.remedies import REMEDIES

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


def _known_keys(loc: Sequence[Any]) -> list[str]:
    """Field names of the pydantic model that sits at `loc` inside a Spec (for 'unknown key' errors)."""
    model: type[BaseModel] | None = Spec
    for part in loc[:-1]:
        field = model.model_fields.get(str(part)) if model else None
        ann = getattr(field, "annotation", None)
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if str(part) == "search" or model is None:
            return sorted(Distribution.model_fields) if str(part) == "search" else []
    return sorted(model.model_fields) if model else []


def _describe(err: Mapping[str, Any], prefix: str = "") -> str:
    loc = [str(p) for p in err["loc"] if not str(p).startswith(("function-", "list[", "int", "tuple["))]
    key = prefix + ".".join(loc) if loc else prefix.rstrip(".") or "spec"
    kind = err["type"]
    if kind == "extra_forbidden":
        known = _known_keys(err["loc"])
        return f"{key}: unknown key" + (f"; known: {', '.join(known)}" if known else "")
    if kind in _TYPES:
        got = "" if kind == "missing" else f", got {err.get('input')!r}"
        return f"{key}: {_TYPES[kind]}{got}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{key}: {msg}"


def _raise(err: ValidationError, prefix: str = "") -> None:
    lines, seen = [], set()
    for e in err.errors():
        text = _describe(e, prefix)
        if text.split(":")[0] not in seen:
            seen.add(text.split(":")[0])
            lines.append(text)
    raise SpecError("\n".join(lines[:5])) from None


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


def load_raw(path: str | Path) -> dict[str, Any]:
    """Read the YAML mapping of a spec file."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such spec file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML: {err}") from None
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
        raw = deep_merge(raw, unflatten({key: value}))
    return validate(raw)


def validate(raw: Mapping[str, Any]) -> Spec:
    """Validate the whole spec, then each search entry against the trial config it would produce."""
    try:
        spec = Spec.model_validate(dict(raw))
    except ValidationError as err:
        _raise(err)
    if "search" in raw and not spec.search:
        raise SpecError("search: empty search space; list at least one key, or remove `search` to run the fixed "
                        "config across seeds")
    for key, dist in spec.search.items():
        _check_entry(spec, key, dist)
    _check_remedies(spec.fixed.model_dump(exclude_unset=True), "fixed.remedies")
    grid = grid_points(spec)
    if spec.trials is not None and spec.trials < grid:
        raise SpecError(f"trials: {spec.trials} is fewer than the {grid} grid points; every grid point needs a trial")
    return spec


def candidate_values(dist: Distribution) -> list[Any]:
    """Values that stand for a distribution when checking types: every grid/choice value, or the bounds."""
    return list(getattr(dist, dist.kind))


def remedy_sets(dist: Distribution) -> list[list[str]]:
    """A `remedies` search entry's options as lists of names ('a+b' and [a, b] both work; 'none' is [])."""
    out = []
    for option in candidate_values(dist):
        names = option.split("+") if isinstance(option, str) else list(option or [])
        out.append([n for n in names if n and n != "none"])
    return out


def _check_entry(spec: Spec, key: str, dist: Distribution) -> None:
    where = f"search.{key}"
    if key == "seed":
        raise SpecError(f"{where}: seeds are not searched; use the top-level `seeds`")
    if key == "remedies":
        if dist.kind not in ("grid", "choice"):
            raise SpecError(f"{where}: expected grid or choice over lists of remedy names")
        for names in remedy_sets(dist):
            chosen = {n: {} for n in _known_remedies(names, where)}
            _check_remedies({**_loss_of(spec), "remedies": {**spec.fixed.remedies, **chosen}}, where)
        return
    parts = key.split(".")
    if parts[0] == "remedies" and len(parts) == 3:
        _check_conditional(spec, parts[1], where)
    if key in ("variant", "loss"):
        for value in candidate_values(dist):
            try:
                TrialCfg.model_validate({key: value})
            except ValidationError as err:
                _raise(err, prefix=f"{where} -> ")
            _check_remedies({**spec.fixed.model_dump(exclude_unset=True), key: value}, where)
    base = spec.fixed.model_dump()
    if parts[0] == "remedies" and len(parts) == 3:
        base["remedies"].setdefault(parts[1], {})
    for value in candidate_values(dist):
        try:
            TrialCfg.model_validate(deep_merge(base, unflatten({key: value})))
        except ValidationError as err:
            _raise(err, prefix=f"{where} -> ")


def _known_remedies(names: list[str], where: str) -> list[str]:
    for n in names:
        if n not in REMEDIES:
            raise SpecError(f"{where}: unknown remedy {n!r}; known: {', '.join(sorted(REMEDIES))}")
    return names


def _loss_of(spec: Spec) -> dict[str, Any]:
    return {k: v for k, v in spec.fixed.model_dump(exclude_unset=True).items() if k in ("loss", "variant")}


def _check_conditional(spec: Spec, remedy: str, where: str) -> None:
    if remedy not in REMEDIES:
        raise SpecError(f"{where}: unknown remedy {remedy!r}; known: {', '.join(sorted(REMEDIES))}")
    searched = spec.search.get("remedies")
    chosen = {n for names in remedy_sets(searched) for n in names} if searched else set()
    if remedy not in spec.fixed.remedies and remedy not in chosen:
        raise SpecError(f"{where}: remedy {remedy!r} is neither in fixed.remedies nor among search.remedies options")


def _check_remedies(cfg: Mapping[str, Any], where: str) -> None:
    """Reject remedy sets that cannot compose, and label remedies on a loss without targets."""
    from trainables.config import resolve
    from trainables.losses import LOSSES

    full = resolve({k: v for k, v in cfg.items() if k in ("loss", "variant", "remedies")})
    names = list(full["remedies"])
    for name in names:
        for other in REMEDIES[name].conflicts:
            if other in names:
                raise SpecError(f"{where}: remedies {name!r} and {other!r} cannot be combined "
                                f"({REMEDIES[name].doc})")
        if REMEDIES[name].needs_targets and not LOSSES[full["loss"]].uses_targets:
            raise SpecError(f"{where}: remedy {name!r} acts on D's targets, which loss {full['loss']!r} does not use")


def grid_points(spec: Spec) -> int:
    """Number of grid combinations (1 when there is no grid entry)."""
    return math.prod(len(d.grid) for d in spec.search.values() if d.kind == "grid")


def n_configurations(spec: Spec) -> int:
    """Configurations the study samples: `trials`, else the grid (times 4 when other keys are searched)."""
    if spec.trials is not None:
        return spec.trials
    has_dist = any(d.kind != "grid" for d in spec.search.values())
    return grid_points(spec) * (4 if has_dist else 1)
