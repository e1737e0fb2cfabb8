"""Cost before running (`python -m study.run SPEC --dry-run`): trials x G steps per grid arm, and the wall
time on this machine estimated from a short measured epoch of each arm, and on a GPU from the arm's aten ops a
G step and the measured GPU steps of docs/gpu_costs.md (docs/config.md, "Cost")."""
from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

from study import gpu_table
from study.calibrate import arms, configs
from study.schema import Spec
from trainables.config import TrainConfig, TrialConfig

MEASURE_STEPS = 3  # G steps in each of the two measured epochs (the first one warms up)
MEASURE_EVAL = 2000  # samples of the measured evaluation; scaled linearly to eval.n_samples (a lower bound for
# the quadratic metrics: PRDC, duplicates)


@dataclass(frozen=True)
class ArmCost:
    """One grid arm: its trials, G steps per trial and, when measured, seconds per G step and per evaluation."""

    label: str
    trials: int
    epochs: int
    g_steps: int  # per epoch
    step_s: float | None = None  # a G step of the trial: of all its seeds together when they are batched
    eval_s: float | None = None  # the trial's evaluation: every seed's
    note: str = ""
    seeds: int = 1  # seeds a trial trains together (seeds_per_trial)
    ops: float | None = None  # aten ops a G step (of all the trial's seeds), counted on this machine
    net: str = ""  # model.name and train.precision: which GPU row prices an op
    precision: str = "fp32"

    @property
    def trial_s(self) -> float | None:
        if self.step_s is None or self.eval_s is None:
            return None
        return self.epochs * (self.g_steps * self.step_s + self.eval_s)


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """No download during a dry run: data and classifiers come from the cache or the arm is not measured."""
    old = os.environ.get("GAN_STUDY_OFFLINE")
    os.environ["GAN_STUDY_OFFLINE"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("GAN_STUDY_OFFLINE", None)
        else:
            os.environ["GAN_STUDY_OFFLINE"] = old


def _classifier_missing(config: TrialConfig) -> bool:
    """Whether the arm's dataset needs a mode classifier that is not cached (a dry run trains none)."""
    from trainables.data import load_dataset
    from trainables.metrics.classifier import cache_paths

    name = load_dataset(config.data).modes.classifier
    return name is not None and not cache_paths(name, config.data.image_size or 28, config.data.root)[0].exists()


def _burst_factor(train: TrainConfig, g_updates: int) -> float:
    """A trial's mean D steps a G step over n_critic: above 1 with WGAN's bursts (`train.critic_burst` D steps
    before the first 25 G steps and every 500th: trainables.step.d_steps), taking a step's time as its D steps'."""
    from trainables.step import burst_steps

    if not train.critic_burst or g_updates < 1:
        return 1.0
    return 1.0 + burst_steps(g_updates) * (train.critic_burst - train.n_critic) / (g_updates * train.n_critic)


def measure(label: str, trials: int, config: TrialConfig, threads: int, seeds: int = 1) -> ArmCost:
    """Time MEASURE_STEPS G steps (after as many warm-up steps) and one full evaluation of one trial; of a trial
    of `seeds` seed-batched seeds, their batched steps and each seed's evaluation."""
    import torch

    from trainables.run import GANRun
    from trainables.seeds import SeedGroup, seed_configs

    epochs = config.train.epochs
    # the steady state, n_critic D steps a G step; WGAN's bursts are added by `_burst_factor`
    train = config.train.model_copy(update={"steps_per_epoch": MEASURE_STEPS * config.train.n_critic,
                                            "critic_burst": 0})
    torch.set_num_threads(threads)
    try:
        with _offline():
            if _classifier_missing(config):
                return ArmCost(label, trials, epochs, 0, note="not measured: its mode classifier is not cached yet")
            n_eval = min(config.eval.n_samples, MEASURE_EVAL)
            small = config.model_copy(update={"train": train,
                                              "eval": config.eval.model_copy(update={"n_samples": n_eval})})
            group = SeedGroup(seed_configs(small, range(seeds))) if seeds > 1 else None
            run = group.members[0] if group is not None else GANRun(small)
        full = config.train.steps_per_epoch or max(1, len(run.x) // config.train.batch_size)
        g_steps = max(1, full // run.ctx.n_critic) * run.ctx.g_updates  # G updates an epoch
        trainer = group if group is not None else run
        trainer.train_epoch()
        t0 = time.perf_counter()
        trainer.train_epoch()
        t1 = time.perf_counter()
        run.evaluate(extended=True)
        t2 = time.perf_counter()
        run.evaluate(extended=False)
        t3 = time.perf_counter()
        ops = gpu_table.count_ops(trainer.train_epoch)  # apart from the timed epoch: counting slows each op
    except Exception as err:  # a dry run reports what it could not measure and goes on
        why = str(err).splitlines()[0].split(". Tried")[0][:120]
        return ArmCost(label, trials, epochs, 0, note=f"not measured ({why}; a run fetches the data first)")
    every = config.eval.extended_every
    eval_s = ((t2 - t1) + (every - 1) * (t3 - t2)) / every * config.eval.n_samples / n_eval * seeds
    step_s = (t1 - t0) / (MEASURE_STEPS * run.ctx.g_updates)  # a G update's share of a training step
    burst = _burst_factor(config.train, g_steps * epochs)
    return ArmCost(label, trials, epochs, g_steps, step_s * burst, eval_s, seeds=seeds,
                   ops=ops / (MEASURE_STEPS * run.ctx.g_updates) * burst, net=config.model.name,
                   precision=config.train.precision)


def estimate(spec: Spec) -> list[ArmCost]:
    """One measured ArmCost per grid arm; the searched keys that are not grids keep their fixed values."""
    from study.spec import n_configurations

    seeds = len(spec.seed_groups[0])  # a trial's seeds (seeds_per_trial, at most the spec's seeds)
    per_arm = max(1, round(n_configurations(spec) * len(spec.seed_groups) / len(arms(spec))))
    threads = max(1, int(spec.trial_resources["cpu"] or 1))
    out: list[ArmCost] = []
    unmeasured: dict[str, str] = {}  # data config -> why: an arm whose data could not be loaded is not retried
    for label, _, config in configs(spec, spec.seed_list[:1]):
        key = config.data.model_dump_json()
        if key in unmeasured:
            out.append(ArmCost(label, per_arm, config.train.epochs, 0, note=unmeasured[key], seeds=seeds))
            continue
        with contextlib.redirect_stderr(io.StringIO()):  # the loaders' fetch messages: nothing is fetched here
            cost = measure(label, per_arm, config, threads, seeds)
        if cost.note:
            unmeasured[key] = cost.note
        out.append(cost)
    return out


def _hours(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def report(spec: Spec, costs: list[ArmCost], cpus: int | None = None) -> list[str]:
    """The dry run's cost lines: one per arm, then the total and the wall time on this machine."""
    cpus = cpus or os.cpu_count() or 1
    lines = []
    for c in costs:
        each = f"{c.step_s * 1e3:.1f} ms a G step, {c.eval_s:.2f} s an evaluation -> {_hours(c.trial_s)} a trial" \
            if c.trial_s is not None and c.step_s is not None and c.eval_s is not None else c.note
        steps = f"{c.epochs} epochs x {c.g_steps} G steps" if c.g_steps else f"{c.epochs} epochs"
        trials = f"{c.trials} trials of {c.seeds} seeds" if c.seeds > 1 else f"{c.trials} trials"
        lines.append(f"  {c.label}: {trials} x {steps}; {each}")
    measured = [c for c in costs if c.trial_s is not None]
    total_steps = sum(c.trials * c.seeds * c.epochs * c.g_steps for c in costs)  # every seed's
    lines.append(f"cost: {total_steps:,} G steps in all" if total_steps else "cost: G steps unknown")
    if measured:
        cpu_s = sum(c.trials * (c.trial_s or 0.0) for c in measured)
        slots = max(1, int(cpus // max(1.0, spec.trial_resources["cpu"] or 1.0)))
        part = "" if len(measured) == len(costs) else f" (the {len(measured)} measured arms only)"
        lines.append(f"cost: about {_hours(cpu_s)} of trial time{part}; on this machine ({cpus} CPUs, "
                     f"{slots} trials at once) about {_hours(cpu_s / slots)} wall")
    return lines + gpu_lines(costs, gpu_table.read())


def gpu_lines(costs: list[ArmCost], rows: list[gpu_table.GpuStep]) -> list[str]:
    """Per card of the GPU step table: the training steps' time, each G step priced as its aten ops times the
    card's measured microseconds an op (nets this small are bound by kernel launches there: docs/gpu_costs.md)."""
    counted = [c for c in costs if c.ops]
    if not counted:
        return []
    if not rows:
        return ["GPU: no measured GPU step yet (docs/gpu_costs.md)"]
    lines = []
    for card in dict.fromkeys(r.card for r in rows):
        priced = [(c, gpu_table.per_op(rows, c.net, c.precision)[card]) for c in counted]
        gpu_s = sum(c.trials * c.epochs * c.g_steps * (c.ops or 0.0) * r.us_per_op * 1e-6 for c, r in priced)
        ops = sorted(c.ops or 0.0 for c in counted)
        us = sorted(r.us_per_op for _, r in priced)
        part = "" if len(counted) == len(costs) else f" (the {len(counted)} measured arms)"
        lines.append(f"GPU: about {_hours(gpu_s)} of training steps{part} on one {card}, one trial at a time "
                     f"({_span(ops, '.0f')} aten ops a G step x {_span(us, '.1f')} us an op, measured "
                     f"{max(r.date for _, r in priced)}: docs/gpu_costs.md); evaluation not included")
    return lines


def _span(values: list[float], fmt: str) -> str:
    low, high = format(values[0], fmt), format(values[-1], fmt)
    return low if low == high else f"{low}-{high}"
