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
from _out import publish  # benchmarks/ is on sys.path when a benchmark runs as a script
from throughput import bare_epoch, ring_config  # the bare loop and the nets, the same in both benchmarks

from trainables.run import GANRun


def make_run(steps: int) -> GANRun:
    return GANRun(ring_config("fp32", steps))


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
