"""The platform's training step vs a bare PyTorch loop over the same modules (goal: >= 0.95 of its speed).

Usage: python benchmarks/step_overhead.py [--steps 300] [--rounds 5]
Both sides train the same G and D (PacGAN ring8 nets, batch 100, Adam, non-saturating loss, no remedy) from
the same init and batches; the platform side is GANRun.train_epoch (hooks, device-side statistics, divergence
watch), the bare side a hand-written loop that keeps nothing. Rounds alternate the two, so drifting load hits
both; prints the median seconds per step of each and bare/platform (1.0 = as fast as the bare loop); writes
benchmarks/out/step_overhead.md. One torch thread.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from _out import publish  # benchmarks/ is on sys.path when a benchmark runs as a script

from trainables.run import GANRun


def make_run(steps: int) -> GANRun:
    return GANRun({"seed": 0, "data": {"name": "ring8", "n_points": 20_000}, "model": {"name": "mlp"},
                   "train": {"epochs": 1, "batch_size": 100, "lr": 1e-4, "steps_per_epoch": steps},
                   "eval": {"n_samples": 1000, "metrics": []}})


def bare_epoch(run: GANRun, steps: int) -> None:
    """The same step written plainly: D on real and fake, BCE; G non-saturating; Adam on both."""
    ctx, x = run.ctx, run.x
    order = torch.randperm(len(x), generator=run.gen)
    for i in range(steps):
        real = x[order[(i * 100) % (len(x) - 100):][:100]]
        fake = ctx.g(ctx.z(100))
        r, f = ctx.d(real), ctx.d(fake.detach())
        loss_d = F.binary_cross_entropy_with_logits(r, torch.ones_like(r)) + \
            F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
        ctx.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        ctx.opt_d.step()
        ctx.d.requires_grad_(False)
        loss_g = F.softplus(-ctx.d(fake)).mean()
        ctx.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        ctx.opt_g.step()
        ctx.d.requires_grad_(True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    times: dict[str, list[float]] = {"bare": [], "platform": []}
    for _ in range(args.rounds):
        for side in ("bare", "platform"):
            run = make_run(args.steps)
            t0 = time.perf_counter()
            bare_epoch(run, args.steps) if side == "bare" else run.train_epoch()
            times[side].append((time.perf_counter() - t0) / args.steps)
    bare, platform = statistics.median(times["bare"]), statistics.median(times["platform"])
    publish(["| loop | median s/step | bare / platform |", "|---|---|---|",
             f"| bare PyTorch | {bare:.5f} | |",
             f"| GANRun.train_epoch | {platform:.5f} | {bare / platform:.3f} |",
             "", f"{args.rounds} rounds x {args.steps} steps, PacGAN ring8 nets, batch 100, 1 thread; goal >= 0.95."],
            "step_overhead.md")


if __name__ == "__main__":
    main()
