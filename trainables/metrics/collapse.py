"""The collapse detector of DESIGN.md: warm-up, threshold, patience, never_diverse and right-censoring."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class CollapseRule:
    """Collapse at epoch t: `patience` consecutive evaluations past threshold from t (t > warmup), after a good one."""

    threshold: float = 0.5
    patience: int = 2
    warmup: int = 0
    direction: str = "below"  # "below": lower is collapsed (diversity); "above": higher is (duplicate_rate)

    def bad(self, value: float) -> bool:
        return value < self.threshold if self.direction == "below" else value > self.threshold


def collapse_status(values: Sequence[float], rule: CollapseRule) -> dict[str, int | None]:
    """Status after epochs 1..len(values): collapsed, collapse_epoch (1-based), epochs_survived, never_diverse.

    A run not (yet) collapsed is right-censored at its last epoch: epochs_survived = len(values).
    """
    seen_good = False
    streak_start, streak = None, 0
    for epoch, value in enumerate(values, start=1):
        if not rule.bad(value):
            seen_good, streak_start, streak = True, None, 0
            continue
        if epoch <= rule.warmup or not seen_good:
            continue
        streak_start, streak = (streak_start or epoch), streak + 1
        if streak >= rule.patience:
            return {"collapsed": 1, "collapse_epoch": streak_start, "epochs_survived": streak_start - 1,
                    "never_diverse": 0}
    return {"collapsed": 0, "collapse_epoch": None, "epochs_survived": len(values),
            "never_diverse": int(not seen_good)}
