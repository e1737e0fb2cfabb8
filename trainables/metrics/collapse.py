"""The collapse verdict (docs/collapse.md): a state per evaluation, the collapse epoch, censoring, the objective.

Each evaluation puts the generator in one state from quality and spread: `not_learned` (too few high-quality
samples to judge spread, and never had them), `diverse`, `collapsed` (its good samples sit on few modes),
`degraded` (quality lost after it had been judged). Collapse at epoch t: after `warmup` epochs, `patience`
consecutive `collapsed` evaluations from t, having been `diverse` earlier. A collapse stays recorded whatever
follows (divergence included); a trial without one is censored at the last epoch at which a collapse could
still have been confirmed, E - patience + 1.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

NOT_LEARNED, DIVERSE, COLLAPSED, DEGRADED = "not_learned", "diverse", "collapsed", "degraded"
STATES = (NOT_LEARNED, DIVERSE, COLLAPSED, DEGRADED)
STATE_CODE = {s: i for i, s in enumerate(STATES)}  # the per-epoch metric `state`
MIN_HQ_PER_MODE = 10  # high-quality samples per mode that a spread verdict needs (docs/collapse.md)


@dataclass(frozen=True)
class CollapseRule:
    """threshold: spread below it (direction "below") is collapsed; quality_floor: the high-quality share an
    evaluation needs before its spread is judged (0 turns the floor off, as for model-free metrics)."""

    threshold: float = 0.5
    patience: int = 2
    warmup: int = 0
    direction: str = "below"  # "below": lower is collapsed (spread); "above": higher is (duplicate_rate)
    quality_floor: float = 0.5
    from_start: bool = False  # a collapse may begin before any diverse evaluation (see collapse_status)

    def bad(self, value: float) -> bool:
        return value < self.threshold if self.direction == "below" else value > self.threshold


def epoch_state(value: float, quality: float, judged_before: bool, rule: CollapseRule) -> str:
    """The state of one evaluation: `value` is the collapse metric, `quality` the high-quality share."""
    if quality < rule.quality_floor or value != value:  # NaN: nothing to judge
        return DEGRADED if judged_before else NOT_LEARNED
    return COLLAPSED if rule.bad(value) else DIVERSE


def states_of(values: Sequence[float], qualities: Sequence[float], rule: CollapseRule) -> list[str]:
    """The state of each evaluation in order (degraded needs an earlier judged evaluation)."""
    out: list[str] = []
    for value, quality in zip(values, qualities):
        out.append(epoch_state(value, quality, any(s in (DIVERSE, COLLAPSED) for s in out), rule))
    return out


def collapse_status(states: Sequence[str], rule: CollapseRule, epochs: int | None = None) -> dict[str, int | None]:
    """Status after evaluations 1..len(states) of a run of `epochs` (default: len(states)) epochs.

    collapsed, collapse_epoch (1-based), epochs_survived (epochs without a confirmed collapse), never_diverse,
    diverse_epochs, and censor_epoch: for a run without a collapse, the last epoch at which one could still be
    confirmed by the end of the run (epochs - patience + 1; "N+" in tables). A collapsed evaluation before any
    diverse one starts no streak unless `rule.from_start`: then a generator whose first judged evaluations
    already hold too few modes is collapsed at the first of them."""
    seen_diverse, streak_start = False, None
    for epoch, state in enumerate(states, start=1):
        if state != COLLAPSED or epoch <= rule.warmup or not (seen_diverse or rule.from_start):
            seen_diverse = seen_diverse or state == DIVERSE
            streak_start = None
            continue
        streak_start = streak_start or epoch
        if epoch - streak_start + 1 >= rule.patience:
            return {"collapsed": 1, "collapse_epoch": streak_start, "epochs_survived": streak_start - 1,
                    "never_diverse": 0, "diverse_epochs": states[:streak_start].count(DIVERSE),
                    "censor_epoch": None}
    total = len(states) if epochs is None else epochs
    return {"collapsed": 0, "collapse_epoch": None, "epochs_survived": len(states),
            "never_diverse": int(not seen_diverse), "diverse_epochs": list(states).count(DIVERSE),
            "censor_epoch": max(0, min(len(states), total - rule.patience + 1))}


def objective(status: dict[str, int | None], qualities: Sequence[float], states: Sequence[str], epochs: int,
              diverged: bool) -> float:
    """The search objective (docs/collapse.md): a trial that was diverse scores in (1, 2], more for more diverse
    epochs and, among equals, for higher quality on them; a never-diverse trial scores in [0.25, 0.5] by its
    mean quality; a diverged trial scores in [0, 0.25] by the share of the run it completed. So neither a
    never-diverse nor a diverged trial can outrank one that was diverse."""
    if diverged:
        return 0.25 * min(1.0, len(states) / max(1, epochs))
    diverse = [q for q, s in zip(qualities, states) if s == DIVERSE]
    if status["never_diverse"] or not diverse:
        return 0.25 + 0.25 * (sum(qualities) / len(qualities) if qualities else 0.0)
    n = int(status["diverse_epochs"] or len(diverse))
    return 1.0 + (n + sum(diverse[:n]) / n) / (epochs + 1)


def check_sample_size(n_samples: int, n_modes: int, quality_floor: float) -> None:
    """ValueError when an evaluation sample cannot support a spread verdict over `n_modes` modes: at the quality
    floor (all samples when the floor is 0) it must leave at least MIN_HQ_PER_MODE high-quality samples per mode."""
    share = quality_floor if quality_floor > 0 else 1.0
    need = MIN_HQ_PER_MODE * n_modes / share
    if n_samples * share < MIN_HQ_PER_MODE * n_modes:
        raise ValueError(f"eval.n_samples = {n_samples} cannot support a collapse verdict over {n_modes} modes: at "
                         f"collapse.quality_floor = {quality_floor:g} it leaves {n_samples * quality_floor:g} "
                         f"high-quality samples, fewer than {MIN_HQ_PER_MODE} per mode; use eval.n_samples >= "
                         f"{int(need + 0.999)}")
