"""GANRun: one trial as plain PyTorch, built from a trial config; train_epoch(), evaluate(), state_dict()."""
from __future__ import annotations

import math
import time
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor

from trainables.config import resolve
from trainables.data import load_dataset
from trainables.evaluate import ModeScorer, generate
from trainables.metrics.collapse import CollapseRule, collapse_status
from trainables.step import Diverged, build_context, train_step


class GANRun:
    """A GAN trial: `step()` trains one epoch, evaluates, and updates the collapse status."""

    def __init__(self, config: Mapping[str, Any], device: str | torch.device = "cpu"):
        self.config = resolve(config)
        cfg, self.device = self.config, torch.device(device)
        torch.manual_seed(int(cfg["seed"]))
        self.gen = torch.Generator(device=self.device).manual_seed(int(cfg["seed"]))
        self.data = load_dataset(cfg["data"])
        self.x = self.data.x.to(self.device)
        self.ctx = build_context(cfg, self.data.shape, self.gen, self.device)
        ev = cfg["eval"]
        eval_gen = torch.Generator(device=self.device).manual_seed(10_000 + int(cfg["seed"]))
        self.z_eval = torch.randn(int(ev["n_samples"]), self.ctx.nz, generator=eval_gen, device=self.device)
        self.scorer = ModeScorer(self.data, cfg["data"].get("root"), self.device)
        c = cfg["collapse"]
        self.rule = CollapseRule(float(c["threshold"]), int(c["patience"]), int(c["warmup"]), c["direction"])
        self.epoch, self.history, self.compute_s = 0, [], 0.0
        self.status: dict[str, Any] = collapse_status([], self.rule)
        self.outcome = "running"

    @property
    def epochs(self) -> int:
        return int(self.config["train"]["epochs"])

    @property
    def done(self) -> bool:
        return self.outcome in ("diverged",) or self.epoch >= self.epochs

    def _steps(self) -> int:
        train = self.config["train"]
        return int(train.get("steps_per_epoch") or max(1, len(self.x) // int(train["batch_size"])))

    def train_epoch(self) -> dict[str, float]:
        """One epoch: a fresh permutation of the data, consumed by n_critic D batches per G step."""
        bs, n = int(self.config["train"]["batch_size"]), len(self.x)
        order = torch.randperm(n, generator=self.gen, device=self.device)
        pos = [0]

        def next_real() -> Tensor:
            nonlocal order
            if pos[0] + bs > n:
                order, pos[0] = torch.randperm(n, generator=self.gen, device=self.device), 0
            batch = self.x[order[pos[0] : pos[0] + bs]]
            pos[0] += bs
            return batch

        sums: dict[str, float] = {}
        g_steps = max(1, self._steps() // self.ctx.n_critic)
        self.ctx.g.train(), self.ctx.d.train()
        for i in range(g_steps):
            self.ctx.progress = (self.epoch + i / g_steps) / self.epochs
            for k, v in train_step(self.ctx, next_real).items():
                sums[k] = sums.get(k, 0.0) + v
        return {k: v / g_steps for k, v in sums.items()}

    def evaluate(self) -> dict[str, float]:
        """Mode metrics of G on the fixed latent batch."""
        return self.scorer.score(generate(self.ctx.g, self.z_eval))

    def step(self) -> dict[str, Any]:
        """Train one epoch and evaluate; returns this epoch's metrics and the collapse status."""
        t0 = time.perf_counter()
        try:
            metrics = self.train_epoch()
        except Diverged as err:
            self.epoch += 1
            self.outcome = "diverged"
            return {"epoch": self.epoch, "diverged": 1, "error": str(err), **self._status_metrics()}
        t1 = time.perf_counter()
        metrics.update(self.evaluate())
        t2 = time.perf_counter()
        self.epoch += 1
        self.compute_s += t1 - t0
        self.history.append(metrics[self.config["collapse"]["metric"]])
        self.status = collapse_status(self.history, self.rule)
        self.outcome = self._outcome()
        metrics.update({"time/train_s": t1 - t0, "time/eval_s": t2 - t1, "compute/seconds": self.compute_s,
                        "compute/d_steps": self.ctx.counts["d_steps"], "compute/g_steps": self.ctx.counts["g_steps"]})
        return {"epoch": self.epoch, "diverged": 0, **metrics, **self._status_metrics()}

    def _outcome(self) -> str:
        if self.status["collapsed"]:
            return "collapsed"
        if self.epoch < self.epochs:
            return "running"
        return "never_diverse" if self.status["never_diverse"] else "censored"

    def _status_metrics(self) -> dict[str, Any]:
        s = self.status
        out = {"collapsed": s["collapsed"], "epochs_survived": s["epochs_survived"], "never_diverse": s["never_diverse"]}
        if s["collapse_epoch"] is not None:
            out["collapse_epoch"] = s["collapse_epoch"]
        last = self.history[-1] if self.history else 0.0
        out["objective"] = s["epochs_survived"] + (last if math.isfinite(last) else 0.0) / 2
        return out

    @torch.no_grad()
    def samples(self, n: int | None = None) -> Tensor:
        """G's samples on the first n fixed latents (for grids and scatter plots)."""
        n = n or int(self.config["eval"]["grid_size"])
        return generate(self.ctx.g, self.z_eval[:n]).cpu()

    def state_dict(self) -> dict[str, Any]:
        """Everything to continue exactly: nets, optimisers, RNG states, history and counters."""
        return {
            "g": self.ctx.g.state_dict(), "d": self.ctx.d.state_dict(),
            "opt_g": self.ctx.opt_g.state_dict(), "opt_d": self.ctx.opt_d.state_dict(),
            "gen": self.gen.get_state(), "torch_rng": torch.get_rng_state(),
            "epoch": self.epoch, "history": list(self.history), "compute_s": self.compute_s,
            "counts": dict(self.ctx.counts), "outcome": self.outcome,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.ctx.g.load_state_dict(state["g"])
        self.ctx.d.load_state_dict(state["d"])
        self.ctx.opt_g.load_state_dict(state["opt_g"])
        self.ctx.opt_d.load_state_dict(state["opt_d"])
        self.gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch, self.history = int(state["epoch"]), list(state["history"])
        self.compute_s, self.outcome = float(state["compute_s"]), state["outcome"]
        self.ctx.counts.update(state["counts"])
        self.status = collapse_status(self.history, self.rule)
