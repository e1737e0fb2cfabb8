"""Remedy registry: short name -> Remedy (trainables.hooks), and the one check of a remedy combination."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from trainables.hooks import EXCLUSIVE_HOOKS, Remedy


def _registry() -> dict[str, Remedy]:
    from trainables.remedies import (
        adagan,
        architecture,
        inputs,
        joint,
        kernels,
        labels,
        objectives,
        penalties,
        schedule,
        unrolled,
    )

    found: dict[str, Remedy] = {}
    for module in (labels, objectives, kernels, joint, architecture, inputs, penalties, unrolled, schedule, adagan):
        found.update(module.REMEDIES)
    return found


REMEDIES: dict[str, Remedy] = _registry()


def known(name: str) -> Remedy:
    """The remedy called `name`; ValueError listing the known ones otherwise."""
    if name not in REMEDIES:
        raise ValueError(f"unknown remedy {name!r}; known: {', '.join(sorted(REMEDIES))}")
    return REMEDIES[name]


def make_params(name: str, given: Mapping[str, Any] | None) -> Any:
    """The validated parameter record of remedy `name` from its keyword arguments (canonical defaults for the rest)."""
    record = known(name).params
    try:
        return TypeAdapter(record).validate_python(dict(given or {}))
    except ValidationError as err:
        e = err.errors()[0]
        where = ".".join(str(p) for p in e["loc"]) or "params"
        fields = ", ".join(param_names(name)) or "none"
        if e["type"] == "unexpected_keyword_argument" or e["type"] == "extra_forbidden":
            raise ValueError(f"remedy {name!r}: unknown parameter {where!r}; known: {fields}") from None
        raise ValueError(f"remedy {name!r}: {where}: {e['msg']}, got {e.get('input')!r}") from None


def param_names(name: str) -> list[str]:
    """The parameter names of remedy `name`, in declaration order."""
    return [f.name for f in dataclasses.fields(known(name).params)]


def param_type(name: str, param: str) -> Any:
    """The annotation of parameter `param` of remedy `name` (None when it has no such parameter)."""
    return next((f.type for f in dataclasses.fields(known(name).params) if f.name == param), None)


def check_combination(names: list[str], uses_targets: bool) -> None:
    """ValueError for an unknown remedy, a declared conflict, two remedies on one exclusive hook, or a label
    remedy on a loss without targets."""
    for i, a in enumerate(names):
        ra = known(a)
        for b in names[i + 1:]:
            rb = known(b)
            if b in ra.conflicts or a in rb.conflicts:
                raise ValueError(f"remedies {a!r} and {b!r} cannot be combined: "
                                 f"{(ra if b in ra.conflicts else rb).doc}")
            shared = [h for h in EXCLUSIVE_HOOKS if getattr(ra, h) is not None and getattr(rb, h) is not None]
            if shared:
                raise ValueError(f"remedies {a!r} and {b!r} both replace {shared[0]!r}; keep one")
        if ra.needs_targets and not uses_targets:
            raise ValueError(f"remedy {a!r} acts on D's targets; the loss has none (use minimax, nonsaturating "
                             f"or least_squares)")


def check_loss(names: list[str], loss: str) -> None:
    """ValueError when a remedy needs another loss than `loss`, or when loss 'none' (no adversarial term) has no
    remedy that carries the objective."""
    needs = {n: known(n).loss for n in names if known(n).loss}
    for name, need in needs.items():
        if loss != need:
            raise ValueError(f"remedy {name!r} needs loss {need!r} (it carries the whole objective), got {loss!r}")
    _works_with(names, "loss", loss)
    if loss == "none" and not needs:
        carriers = sorted(n for n, r in REMEDIES.items() if r.loss == "none")
        raise ValueError(f"loss 'none' has no adversarial term: it is for a remedy that carries the objective "
                         f"({', '.join(carriers)})")


def check_model(names: list[str], model: str) -> None:
    """ValueError when a remedy does not work with the model family `model` (a joint D needs the mlp's input)."""
    _works_with(names, "model", model)


def _works_with(names: list[str], what: str, value: str) -> None:
    """ValueError naming the config key when a remedy lists the losses or models it works with (Remedy.losses,
    Remedy.models) and `value` is not among them."""
    key, field = {"loss": ("loss", "losses"), "model": ("model.name", "models")}[what]
    for name in names:
        takes: tuple[str, ...] = getattr(known(name), field)
        if takes and value not in takes:
            raise ValueError(f"{key}: remedy {name!r} works with {what} {', '.join(takes)}, got {value!r}")
