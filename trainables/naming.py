"""Names of trials for the console and MLflow: searched values, short, and the seed (no Ray, no MLflow)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence


def compact(value: str, digits: int = 3) -> str:
    """A searched value as short text: numbers to `digits` significant digits, long text cut to 40 characters."""
    try:
        number = float(value)
    except ValueError:
        return value if len(value) <= 40 else value[:37] + "..."
    if number.is_integer() and abs(number) < 1e6:
        return str(int(number))
    return f"{number:.{digits}g}"


def short_keys(keys: list[str]) -> dict[str, str]:
    """Short names of search keys: `remedies.label_flip.rate` -> flip (the remedy's last word, with the parameter
    when the study searches two of that remedy), `train.lr` -> lr; a short name two keys share stays the full key."""
    def short(key: str) -> str:
        parts = key.split(".")
        if parts[0] == "remedies" and len(parts) == 3:
            siblings = [k for k in keys if k.startswith(f"remedies.{parts[1]}.")]
            base = parts[1].split("_")[-1]
            return base if len(siblings) == 1 else f"{base}.{parts[2]}"
        return parts[-1]

    out = {k: short(k) for k in keys}
    clash = {s for s in out.values() if list(out.values()).count(s) > 1}
    return {k: (k if s in clash else s) for k, s in out.items()}


def seeds_text(seeds: int | Sequence[int]) -> str:
    """A trial's seed, or the seeds of a seed-batched trial: 3 -> "3", [1, 2, 3, 4] -> "1-4", [1, 5] -> "1,5"."""
    if isinstance(seeds, int):
        return str(seeds)
    run = list(seeds) == list(range(seeds[0], seeds[0] + len(seeds)))
    return f"{seeds[0]}-{seeds[-1]}" if run and len(seeds) > 2 else ",".join(str(s) for s in seeds)


def trial_label(values: Mapping[str, str], seed: int | Sequence[int]) -> str:
    """The console name of a trial: its searched values, short, and its seed or seeds (`flip=0.05 s1`, `s1-4`)."""
    keys = short_keys(list(values))
    seed_part = f"s{seeds_text(seed)}" if values else f"seed {seeds_text(seed)}"
    return " ".join([f"{keys[k]}={compact(v)}" for k, v in values.items()] + [seed_part])


def run_name(values: Mapping[str, str], seed: int, limit: int = 120) -> str:
    """The MLflow name of a trial's run: `remedies.label_flip.rate=0.05 train.lr=0.001252 seed=1`; short keys
    where the full ones would make it longer than `limit` characters."""
    full = " ".join([f"{k}={compact(v, 4)}" for k, v in values.items()] + [f"seed={seed}"])
    if len(full) <= limit:
        return full
    keys = short_keys(list(values))
    return " ".join([f"{keys[k]}={compact(v, 4)}" for k, v in values.items()] + [f"seed={seed}"])
