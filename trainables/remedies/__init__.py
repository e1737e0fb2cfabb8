"""Remedy registry: each remedy is a frozen record of optional hooks at fixed points of the shared step."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

Params = Mapping[str, Any]


@dataclass(frozen=True)
class Remedy:
    """Hooks (all optional) called by `trainables.step` in this order; `defaults` are the canonical params.

    build(model_kwargs, p) -> model_kwargs      build time, before the nets exist (packing)
    wrap_d(d, p) -> d                           build time, on the Discriminator (spectral norm, minibatch layers)
    optim(train_cfg, p) -> train_cfg            optimiser settings (two-timescale, n_critic)
    inputs(x, p, ctx) -> x                      every D input, real or fake, D and G steps (instance noise, packing)
    targets(rt, ft, p, ctx) -> (rt, ft, logs)   D's BCE/LS targets (label flipping, smoothing)
    d_extra(ctx, real, fake, p) -> (term, logs) added to D's loss (gradient penalty, R1)
    after_d(ctx, p) -> logs                     after each D update (weight clipping)
    g_critic(ctx, real, fake, p) -> (d_fn, logs)  the D that G's loss is taken against (unrolled)
    g_loss(ctx, real, fake, d_fn, p) -> (loss, logs)  replaces G's loss (feature matching)
    """

    doc: str
    defaults: Params = field(default_factory=dict)
    build: Callable | None = None
    wrap_d: Callable | None = None
    optim: Callable | None = None
    inputs: Callable | None = None
    targets: Callable | None = None
    d_extra: Callable | None = None
    after_d: Callable | None = None
    g_critic: Callable | None = None
    g_loss: Callable | None = None
    needs_targets: bool = False  # only meaningful with a loss that uses targets (BCE, least squares)
    conflicts: tuple[str, ...] = ()  # remedies it cannot be combined with


def _registry() -> dict[str, Remedy]:
    from trainables.remedies import labels

    found: dict[str, Remedy] = dict(labels.REMEDIES)
    try:  # the remedy catalogue (issue 3) registers itself here
        from trainables.remedies import catalogue
    except ModuleNotFoundError as err:  # only a missing catalogue; an error inside it must surface
        if err.name != "trainables.remedies.catalogue":
            raise
        return found
    found.update(catalogue.REMEDIES)
    return found


REMEDIES: dict[str, Remedy] = _registry()


def resolve_params(name: str, given: Params | None) -> dict[str, Any]:
    """Canonical defaults of remedy `name` updated by `given`; unknown parameter names raise KeyError."""
    remedy = REMEDIES[name]
    given = dict(given or {})
    unknown = sorted(set(given) - set(remedy.defaults))
    if unknown:
        raise KeyError(f"remedy {name!r}: unknown parameter(s) {unknown}; known: {sorted(remedy.defaults)}")
    return {**remedy.defaults, **given}


def check_combination(names: list[str], uses_targets: bool) -> None:
    """Raise ValueError for an unknown remedy, a conflicting pair, or a label remedy on a loss without targets."""
    unknown = [n for n in names if n not in REMEDIES]
    if unknown:
        raise ValueError(f"unknown remedy {unknown[0]!r}; known: {', '.join(sorted(REMEDIES))}")
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if b in REMEDIES[a].conflicts or a in REMEDIES[b].conflicts:
                raise ValueError(f"remedies {a!r} and {b!r} cannot be combined: {REMEDIES[a].doc}")
        if REMEDIES[a].needs_targets and not uses_targets:
            raise ValueError(f"remedy {a!r} acts on D's targets; the loss has none (use minimax, nonsaturating "
                             f"or least_squares)")
