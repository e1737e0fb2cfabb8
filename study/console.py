"""The study's console while Tune runs: trial names that carry the configuration and seed, a short progress
table (epoch, quality, spread, collapse state), one line per finished trial and a final table of outcomes.

`StudyConsole` takes the place of Tune's own progress reporter (`RunConfig(verbose=0, callbacks=[console])`):
a plain `tune.Callback`, driven by the controller's steps and trial events, whichever output engine Tune uses.
Tune's own reporter stays silent at verbose=0 except for its experiment header (search algorithm, scheduler,
number of trials) and errored trials (error and error file). It must stay Tune's reporter: the output engine
(ray.tune.experimental.output) sets up only the first reporter of its class in the callbacks, and a second
one, not set up, raises on the first errored trial (Ray 2.60).
"""
from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ray import tune

from trainables import names
from trainables.metrics.collapse import STATES
from trainables.naming import trial_label

HEADER = ("trial", "epoch", "quality", "spread", "state")  # quality: eval/hq_fraction, spread: eval/spread
FINAL_HEADER = ("trial", "epoch", "quality", "spread", "outcome")
DONE_STATUSES = ("TERMINATED", "ERROR")
INTERRUPTED = "interrupted"  # stopped by Ctrl-C: `--resume` continues it (not an outcome of names.OUTCOMES)


class TrialNamer:
    """`TuneConfig(trial_name_creator=...)`: a trial's name from its sampled config (`flip=0.05 lr=0.00125 s1`)."""

    def __init__(self, build: Any):
        self.build = build

    def __call__(self, trial: Any) -> str:
        seeds = [int(c.seed) for c in self.build.configs(trial.config)]
        return trial_label(self.build.values(trial.config), seeds[0] if len(seeds) == 1 else seeds)


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def _fmt(value: Any) -> str:
    number = _number(value)
    return "-" if math.isnan(number) else f"{number:.3f}"


def state_name(result: Mapping[str, Any]) -> str:
    """The collapse state of a result (metric `state`: an index into STATES) as its name."""
    code = _number(result.get(names.STATE))
    return STATES[int(code)] if not math.isnan(code) and 0 <= code < len(STATES) else "-"


def _id(trial: Any) -> str:
    return str(getattr(trial, "trial_id", trial))


def outcome_of(trial: Any, interrupted: Collection[str] = ()) -> str:
    """A finished trial's outcome as the trainable records it (a trial ended early while running: stopped);
    `interrupted`: ids of the trials the study's interruption ended."""
    result = trial.last_result or {}
    if _id(trial) in interrupted:
        return INTERRUPTED
    if trial.status == "ERROR":
        return names.FAILED
    outcome = str(result.get(names.OUTCOME_RESULT) or names.RUNNING)
    if outcome == names.RUNNING:
        return names.COLLAPSED_OUTCOME if result.get(names.COLLAPSED) else names.STOPPED
    return outcome


def outcome_counts(outcome: str) -> dict[str, int]:
    """A trial's outcome as counts of seeds: `collapsed` -> {collapsed: 1}; a seed-batched trial's
    `1 censored, 3 never_diverse` (trainables/tune.py) -> {censored: 1, never_diverse: 3}."""
    parts = [p.split(" ", 1) for p in outcome.split(", ")]
    if all(len(p) == 2 and p[0].isdigit() for p in parts):
        return {o: int(n) for n, o in parts}
    return {outcome: 1}


def trial_row(trial: Any, epochs: int | None = None, interrupted: Collection[str] = ()) -> list[str]:
    """[name, epoch, quality, spread, state]: a running trial's state, a finished trial's outcome."""
    result = trial.last_result or {}
    epoch = _number(result.get(names.EPOCH))
    planned = epochs or result.get(names.EPOCHS_PLANNED)
    shown = "-" if math.isnan(epoch) else f"{int(epoch)}" + (f"/{planned}" if trial.status == "RUNNING" and planned
                                                            else "")
    state = outcome_of(trial, interrupted) if trial.status in DONE_STATUSES else state_name(result)
    return [str(trial), shown, _fmt(result.get(names.HQ_FRACTION)), _fmt(result.get(names.SPREAD)), state]


def table(rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> str:
    """Plain fixed-width columns, no boxes: a header line, then one line per row (names and states left-aligned)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) if i in (0, len(header) - 1) else str(c).rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in [header, *rows]]
    return "\n".join(lines)


def finished_line(trial: Any) -> str:
    """One line for a trial that ended: `flip=0.05 s1: collapsed at epoch 7 (quality 0.912, spread 0.310)`."""
    result = trial.last_result or {}
    outcome, epoch = outcome_of(trial), result.get(names.EPOCH, 0)
    if outcome_counts(outcome) != {outcome: 1}:  # a seed-batched trial: its seeds' outcomes, its mean scores
        return (f"{trial}: {outcome} after {epoch} epochs (mean quality {_fmt(result.get(names.HQ_FRACTION))}, "
                f"mean spread {_fmt(result.get(names.SPREAD))})")
    text = {names.COLLAPSED_OUTCOME: f"collapsed at epoch {result.get(names.COLLAPSE_EPOCH, epoch)}",
            names.DIVERGED_OUTCOME: f"diverged at epoch {result.get(names.DIVERGE_EPOCH, epoch)}",
            names.NEVER_DIVERSE_OUTCOME: f"never diverse in {epoch} epochs",
            names.CENSORED: f"censored (no collapse in {epoch} epochs)",
            names.STOPPED: f"stopped at epoch {epoch}"}.get(outcome, f"{outcome} at epoch {epoch}")
    return (f"{trial}: {text} (quality {_fmt(result.get(names.HQ_FRACTION))}, "
            f"spread {_fmt(result.get(names.SPREAD))})")


def counts_line(trials: Sequence[Any], elapsed: float, total: int | None = None,
                interrupted: Collection[str] = ()) -> str:
    """`[1min 05s] 5 of 12 trials done (2 collapsed, 3 censored), 2 running, 1 pending`: `total` the planned
    trials (Tune creates them as it goes)."""
    done = [t for t in trials if t.status in DONE_STATUSES and _id(t) not in interrupted]
    outcomes: dict[str, int] = {}
    for t in done:
        for outcome, n in outcome_counts(outcome_of(t)).items():  # seeds, for a seed-batched trial
            outcomes[outcome] = outcomes.get(outcome, 0) + n
    detail = ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))
    total = max(total or 0, len(trials))
    parts = [f"{len(done)} of {total} trials done" + (f" ({detail})" if detail else "")]
    for status in ("RUNNING", "PAUSED", "PENDING", INTERRUPTED):
        n = sum(t.status == status or (status == INTERRUPTED and _id(t) in interrupted) for t in trials)
        if n:
            parts.append(f"{n} {status.lower()}")
    minutes, seconds = divmod(int(elapsed), 60)
    clock = f"{minutes}min {seconds:02d}s" if minutes else f"{seconds}s"
    return f"[{clock}] {', '.join(parts)}"


def _order(trial: Any) -> tuple:
    """Finished table order: by configuration (numbers as numbers), then seed (the trial name's order)."""
    def key(word: str) -> tuple:
        value = word.split("=")[-1]
        value = value[1:] if "=" not in word and value[:1] == "s" else value  # the seed: s1
        return (0, _number(value), "") if not math.isnan(_number(value)) else (1, 0.0, word)

    return tuple(key(w) for w in str(trial).split())


class StudyConsole(tune.Callback):
    """Progress of a study: a progress table of the running trials every `interval_s` seconds (only when a new
    result came in), a line per finished trial, and at the end a table of every trial with its outcome."""

    def __init__(self, epochs: int | None = None, interval_s: float = 60.0):
        self.epochs, self.interval_s = epochs, interval_s
        self._start_time = self._last_table = time.time()
        self._fresh = False  # a result came in since the last progress table
        self._final_printed = False
        self._total: int | None = None  # the planned trials, from Tune's setup
        self._before: set[str] | None = None  # trial ids that had ended before this session (a resumed study)
        self._ended: set[str] = set()  # ... and in it: the others Tune stopped were interrupted (Ctrl-C)

    def setup(self, stop: Any = None, num_samples: int | None = None, total_num_samples: int | None = None,
              **info: Any) -> None:
        self._start_time = self._last_table = time.time()  # the first table after interval_s, not at once
        self._total = total_num_samples or self._total

    def progress(self, trials: Sequence[Any], force: bool = False) -> None:
        """The counts and the running trials' table, when interval_s has passed and a result came in."""
        if not force and (not self._fresh or time.time() - self._last_table < self.interval_s):
            return
        self._last_table, self._fresh = time.time(), False
        running = [t for t in trials if t.status == "RUNNING"]
        lines = [counts_line(trials, time.time() - self._start_time, self._total)]
        if running:
            lines.append(table([trial_row(t, self.epochs) for t in running]))
        print("\n".join(lines), flush=True)

    def final(self, trials: Sequence[Any]) -> None:
        """Every trial with its outcome, by configuration and seed (once)."""
        if self._final_printed or not trials:
            return
        self._final_printed = True
        cut = {_id(t) for t in trials if t.status == "TERMINATED"} - (self._before or set()) - self._ended
        rows = [trial_row(t, self.epochs, cut) for t in sorted(trials, key=_order)]
        counts = counts_line(trials, time.time() - self._start_time, self._total, cut)
        print(f"{counts}\n{table(rows, FINAL_HEADER)}", flush=True)

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if self._before is None:
            self._before = {_id(t) for t in trials if t.status in DONE_STATUSES}

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self.progress(trials)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self._fresh = True

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._fresh = True

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        print(finished_line(trial), flush=True)
        self._ended.add(_id(trial))
        self._fresh = True

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """Nothing printed: Tune's own reporter prints the error and its file (even at verbose=0)."""
        self._ended.add(_id(trial))
        self._fresh = True

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.final(trials)
