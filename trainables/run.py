"""GANRun: one trial as plain PyTorch, built from a trial config; train_epoch(), evaluate(), state_dict()."""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from trainables import names
from trainables.config import TrialConfig, resolve
from trainables.data import load_dataset
from trainables.evaluate import Evaluator, ModeScorer, eval_mode, generate, reported_keys
from trainables.hooks import d_view
from trainables.metrics.collapse import STATE_CODE, CollapseRule, collapse_status, objective, states_of
from trainables.metrics.registry import metric_of
from trainables.rounds import build_rounds
from trainables.step import Diverged, build_context, epoch_logs, epoch_means


def set_deterministic(on: bool) -> None:
    """PyTorch's deterministic algorithms and cuDNN flags on or off for this process (a reused actor may have
    run a trial with the other setting); CUBLAS_WORKSPACE_CONFIG is set for deterministic cuBLAS on GPUs. An op
    with no deterministic CUDA kernel warns, naming itself, instead of failing a trial that has trained for hours;
    whether a run repeats is measured (benchmarks/throughput.py --determinism), not assumed."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(on, warn_only=True)
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = False


class GANRun:
    """A GAN trial: `step()` trains one epoch, evaluates, and updates the collapse status."""

    def __init__(self, config: TrialConfig | Mapping[str, Any], device: str | torch.device = "cpu"):
        self.config = config if isinstance(config, TrialConfig) else resolve(config)
        cfg, self.device = self.config, torch.device(device)
        set_deterministic(cfg.train.deterministic)
        torch.manual_seed(cfg.seed)
        self.gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.data = load_dataset(cfg.data)
        self.x = self.data.x.to(self.device)
        self.ctx = build_context(cfg, self.data.shape, self.gen, self.device)
        if cfg.train.channels_last and self.x.dim() == 4:  # conv models only; the 2D MLPs have no layout
            self.x = self.x.contiguous(memory_format=torch.channels_last)
            self.ctx.g.to(memory_format=torch.channels_last)
            self.ctx.d.to(memory_format=torch.channels_last)
        if cfg.train.compile:
            self.ctx.g.compile()
            self.ctx.d.compile()
        eval_gen = torch.Generator(device=self.device).manual_seed(10_000 + cfg.seed)
        self.z_eval = self.ctx.latent((cfg.eval.n_samples, self.ctx.nz), generator=eval_gen, device=self.device)
        self.scorer = ModeScorer(self.data, cfg.data.root, self.device)
        self.pack = cfg.pack
        metric = cfg.collapse.metric
        if metric_of(metric) is not None and metric not in reported_keys(cfg):
            raise ValueError(f"collapse.metric {metric!r} is not reported: add {metric_of(metric)!r} to eval.metrics"
                             + (" (or D is packed)" if self.pack > 1 else ""))
        self.evaluator = Evaluator(cfg, self.data, self.x, self.scorer)
        self.probes = self.evaluator.probes
        if self.probes is not None:
            with self._d_seen() as d:
                self.probes.remember(d)  # forgetting at epoch 1 = change from the initial D
        c = cfg.collapse
        self.rule = CollapseRule(c.threshold, c.patience, c.warmup, c.direction, cfg.quality_floor, c.from_start)
        self.epoch, self.compute_s = 0, 0.0
        self.history: list[float] = []  # the collapse metric per evaluation
        self.qualities: list[float] = []  # the high-quality share per evaluation
        self.g_steps_at: list[int] = []  # G steps done by each evaluation (compare arms per G step: n_critic)
        self.diverged_epoch: int | None = None
        self.states: list[str] = []
        self.status: dict[str, Any] = collapse_status([], self.rule, self.epochs)
        self.outcome = names.RUNNING
        self.rounds = build_rounds(cfg, self)  # a trial that trains a sequence of GANs (AdaGAN), else None

    @contextlib.contextmanager
    def _d_seen(self) -> Iterator[Callable[[Tensor], Tensor]]:
        """D in eval mode as it sees its inputs (packing; no instance noise), for the evaluation's D metrics."""
        self.ctx.training = False
        try:
            with eval_mode(self.ctx.d):
                yield lambda x: self.ctx.d(d_view(self.ctx, x))
        finally:
            self.ctx.training = True

    @property
    def epochs(self) -> int:
        return self.config.train.epochs

    @property
    def done(self) -> bool:
        return self.diverged_epoch is not None or self.epoch >= self.epochs

    def g_steps(self) -> int:
        """G steps an epoch: len(data) // batch_size steps whatever the packing (PacGAN's streams count packs),
        or train.steps_per_epoch, over n_critic."""
        train = self.config.train
        return max(1, (train.steps_per_epoch or max(1, len(self.x) // train.batch_size)) // self.ctx.n_critic)

    def train_epoch(self) -> dict[str, float]:
        """One epoch: a fresh permutation of the data, consumed by n_critic D batches per G step."""
        g_steps = self.g_steps()
        if self.rounds is not None:
            self.rounds.begin(self)  # the first epoch of a round: its new nets and data weights
        logs = epoch_logs(self.ctx, self.x, self.config.samples_per_step, g_steps, self.epoch, self.epochs)
        self.ctx.watch.check()  # raises Diverged with the first non-finite loss and its step
        return epoch_means(logs, g_steps)[0]  # one host read an epoch

    def extended_due(self) -> bool:
        """Whether this epoch's evaluation includes the listed metrics: every `eval.extended_every` epochs,
        or always when the collapse metric is one of theirs."""
        return ((self.epoch + 1) % self.config.eval.extended_every == 0
                or metric_of(self.config.collapse.metric) is not None)

    def evaluate(self, extended: bool | None = None) -> dict[str, float]:
        """Mode metrics of G on the fixed latent batch; when extended (default: `extended_due()`), also the
        metrics listed in `eval.metrics` (docs/metrics.md)."""
        extended = self.extended_due() if extended is None else extended
        samples = self.generate(self.z_eval)
        with self._d_seen() as d:
            out = self.evaluator.score(samples, d, extended)
        return out if self.rounds is None else {**out, **self.rounds.report(self)}

    def generate(self, z: Tensor) -> Tensor:
        """The trial's samples for latents z: G's, or the rounds' (AdaGAN's mixture). (N, nz) -> (N, *shape)"""
        if self.rounds is not None:
            return self.rounds.generate(self.ctx.g, z)
        return generate(self.ctx.g, z, running=self.config.eval.g_batchnorm == "running")

    def step(self) -> dict[str, Any]:
        """Train one epoch and evaluate; returns this epoch's metrics and the collapse status."""
        t0 = time.perf_counter()
        try:
            metrics = self.train_epoch()
        except Diverged as err:
            return self.diverge(str(err))
        return self.finish_epoch(metrics, time.perf_counter() - t0)

    def diverge(self, error: str) -> dict[str, Any]:
        """End the run at this epoch as diverged; a collapse already confirmed stays the outcome (competing events)."""
        self.epoch += 1
        self.diverged_epoch = self.epoch
        self.outcome = names.COLLAPSED_OUTCOME if self.status["collapsed"] else names.DIVERGED_OUTCOME
        return {"epoch": self.epoch, "diverged": 1, "diverge_epoch": self.epoch, "error": error,
                **self._status_metrics()}

    def finish_epoch(self, metrics: dict[str, Any], train_s: float) -> dict[str, Any]:
        """Evaluate after an epoch of training (its step statistics in `metrics`, `train_s` seconds) and update
        the collapse status; returns the epoch's metrics."""
        t1 = time.perf_counter()
        metrics.update(self.evaluate())
        t2 = time.perf_counter()
        self.epoch += 1
        self.compute_s += train_s
        metrics.update({"time/train_s": train_s, "time/eval_s": t2 - t1, "compute/seconds": self.compute_s,
                        "compute/d_steps": self.ctx.counts["d_steps"], "compute/g_steps": self.ctx.counts["g_steps"]})
        self.history.append(metrics[self.config.collapse.metric])
        self.qualities.append(metrics["eval/hq_fraction"])
        self.g_steps_at.append(self.ctx.counts["g_steps"])
        self._update_status()
        self.outcome = self._outcome()
        return {"epoch": self.epoch, "diverged": 0, **metrics, **self._status_metrics()}

    def _update_status(self) -> None:
        self.states = states_of(self.history, self.qualities, self.rule)
        self.status = collapse_status(self.states, self.rule, self.epochs)

    def _outcome(self) -> str:
        if self.status["collapsed"]:
            return names.COLLAPSED_OUTCOME
        if self.epoch < self.epochs:
            return names.RUNNING
        return names.NEVER_DIVERSE_OUTCOME if self.status["never_diverse"] else names.CENSORED

    def _status_metrics(self) -> dict[str, Any]:
        s = self.status
        out = {"collapsed": s["collapsed"], "epochs_survived": s["epochs_survived"],
               "never_diverse": s["never_diverse"]}
        for key in ("collapse_epoch", "censor_epoch"):
            if s[key] is not None:
                out[key] = s[key]
        if s["collapse_epoch"] is not None:  # the same event counted in G steps
            out[names.COLLAPSE_G_STEP] = self.g_steps_at[s["collapse_epoch"] - 1]
        out["diverse_epochs"] = s["diverse_epochs"]
        if self.states and self.diverged_epoch is None:
            out["state"] = STATE_CODE[self.states[-1]]
        out["objective"] = objective(s, self.qualities, self.states, self.epochs, self.diverged_epoch is not None)
        return out

    @torch.no_grad()
    def samples(self, n: int | None = None) -> Tensor:
        """G's samples on the first n fixed latents (for grids and scatter plots)."""
        n = n or self.config.eval.grid_size
        return self.generate(self.z_eval[:n]).cpu()

    @torch.no_grad()
    def grids(self, n: int | None = None) -> dict[str, Tensor]:
        """Named sample sets logged as grids besides `samples()` (AdaGAN: each component's); {} for one GAN."""
        n = n or self.config.eval.grid_size
        return {} if self.rounds is None else {k: v.cpu() for k, v in self.rounds.grids(self, n).items()}

    def d_surface_png(self, path: str | Path) -> Path | None:
        """PNG of D's surface, its gradient field and G's samples (2D mixtures with an unpacked D; else None); a
        joint D's surface is D(x, E(x)), the plane paired with the encoder's code."""
        if self.data.kind != "points" or self.pack != 1:
            return None
        from trainables.metrics.d_surface import save_d_surface

        with self._d_seen() as d:
            return save_d_surface(d, self.samples(len(self.z_eval)), self.data, Path(path),
                                  title=f"D surface, epoch {self.epoch}", device=self.device)

    def state_dict(self) -> dict[str, Any]:
        """Everything to continue exactly: nets, optimisers, RNG states, history and counters."""
        return {
            "g": self.ctx.g.state_dict(), "d": self.ctx.d.state_dict(),
            "opt_g": self.ctx.opt_g.state_dict(), "opt_d": self.ctx.opt_d.state_dict(),
            "gen": self.gen.get_state(), "torch_rng": torch.get_rng_state(),
            "epoch": self.epoch, "history": list(self.history), "qualities": list(self.qualities),
            "g_steps_at": list(self.g_steps_at),
            "diverged_epoch": self.diverged_epoch, "compute_s": self.compute_s,
            "counts": dict(self.ctx.counts), "outcome": self.outcome,
            "forgetting_prev": self.probes.tracker.previous if self.probes is not None else None,
            "forgetting_held": self.probes.tracker.held if self.probes is not None else None,
            **({"rounds": self.rounds.state_dict()} if self.rounds is not None else {}),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.ctx.g.load_state_dict(state["g"])
        self.ctx.d.load_state_dict(state["d"])
        self.ctx.opt_g.load_state_dict(state["opt_g"])
        self.ctx.opt_d.load_state_dict(state["opt_d"])
        self.gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch, self.history = int(state["epoch"]), list(state["history"])
        self.qualities, self.diverged_epoch = list(state["qualities"]), state["diverged_epoch"]
        self.g_steps_at = list(state["g_steps_at"])
        self.compute_s, self.outcome = float(state["compute_s"]), state["outcome"]
        self.ctx.counts.update(state["counts"])
        if self.probes is not None and state.get("forgetting_prev") is not None:
            self.probes.tracker.previous, self.probes.tracker.held = state["forgetting_prev"], state["forgetting_held"]
        if self.rounds is not None:
            self.rounds.load_state_dict(state["rounds"], self)
        self._update_status()
