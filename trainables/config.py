"""The trial config: defaults, dotted-key helpers and deep merge (plain dicts, no Ray)."""
from __future__ import annotations

import copy
from typing import Any, Mapping

# A trial config is a nested dict; every key here may be set from a spec's `fixed` or `search`.
DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "variant": None,
    "data": {"name": "ring8", "root": None, "image_size": None, "subset": None, "n_points": 100_000, "seed": 0},
    "model": {"name": "mlp"},
    "loss": "nonsaturating",
    "remedies": {},
    "train": {
        "epochs": 10,
        "batch_size": 64,
        "steps_per_epoch": None,  # default: one pass over the data (len(data) // batch_size)
        "optimizer": "adam",
        "lr": 2e-4,
        "lr_d": None,  # two-timescale: override per network
        "lr_g": None,
        "betas": [0.5, 0.999],
        "n_critic": 1,
        "threads": None,  # torch threads; None = the trial's CPUs
    },
    "eval": {
        "n_samples": 2500, "every": 1, "grid_every": 5, "grid_size": 64,
        # extended evaluation (trainables.evaluate): diversity in a feature space and D diagnostics
        "prdc": True,  # eval/precision, recall, density, coverage
        "k": 5,  # nearest neighbours of the PRDC balls
        "ndb": True,  # eval/ndb = NDB / K
        "ndb_bins": 100,  # K of the k-means bins
        "duplicates": True,  # eval/duplicate_rate
        "probes": True,  # eval/d_local_max_fraction, d_basin_width, forgetting
        "probe_points": 256,
        "probe_radius": None,  # half-length of the probed lines; None: 3 mixture std (2D), 0.5 (images)
        "extended_every": 1,  # extended evaluation every n epochs (always when collapse.metric needs it)
    },
    "collapse": {"metric": "eval/diversity", "threshold": 0.5, "patience": 2, "warmup": 0, "direction": "below"},
}


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


def resolve(config: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults <- variant preset <- config: the full trial config a GANRun is built from."""
    from trainables.variants import VARIANTS

    variant = config.get("variant")
    preset = VARIANTS[variant].config if variant else {}
    return deep_merge(deep_merge(DEFAULTS, preset), config)


def expand_remedy_choice(sampled: Mapping[str, Any]) -> dict[str, Any]:
    """A sampled `remedies` option ('a+b', [a, b] or 'none') -> {'remedies.a': {}, ...} beside its params."""
    out = {k: v for k, v in sampled.items() if k != "remedies"}
    option = sampled.get("remedies")
    names = option.split("+") if isinstance(option, str) else list(option or [])
    for name in (n for n in names if n and n != "none"):
        if not any(k.startswith(f"remedies.{name}.") for k in out):
            out[f"remedies.{name}"] = {}
    return out
