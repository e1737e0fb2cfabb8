"""Share of an epoch spent evaluating at the label-noise study's full defaults (DCGAN 64 px, MNIST, 10,000 samples).

Usage: python benchmarks/eval_share_default.py [--steps 5] [--threads 2]
A 64 px epoch is 938 steps (60,000 / 64): too long to run whole on a CPU, so the epoch time is the median
of `steps` timed training steps (after one warm-up step) times the steps per epoch; the evaluation
(mode metrics plus every model-free metric) is timed once, after the once-per-run fits made in GANRun().
Writes benchmarks/out/eval_share_default.md.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import yaml
from _out import publish  # benchmarks/ is on sys.path when a benchmark runs as a script

from trainables.run import GANRun
from trainables.step import train_step


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    spec = yaml.safe_load((Path(__file__).parent.parent / "search_spaces" / "label_noise.yaml").read_text())
    run = GANRun(spec["fixed"])
    bs = run.config.train.batch_size
    steps_per_epoch = len(run.x) // bs
    gen = torch.Generator().manual_seed(0)
    times = []
    for i in range(args.steps + 1):
        batch = run.x[torch.randint(len(run.x), (bs,), generator=gen)]
        t0 = time.perf_counter()
        train_step(run.ctx, lambda batch=batch: batch)
        if i:
            times.append(time.perf_counter() - t0)
    epoch = statistics.median(times) * steps_per_epoch
    t0 = time.perf_counter()
    run.evaluate()
    ev = time.perf_counter() - t0
    lines = ["| setting | step (s, median) | steps/epoch | train epoch (s, est.) | evaluate (s) | eval share |",
             "|---|---:|---:|---:|---:|---:|",
             f"| label_noise.yaml fixed: 64 px, ngf = ndf = 64, batch 64, 10,000 eval samples, {args.threads} threads "
             f"| {statistics.median(times):.3f} | {steps_per_epoch} | {epoch:.0f} | {ev:.1f} "
             f"| {ev / (epoch + ev):.1%} |"]
    publish(lines, "eval_share_default.md")


if __name__ == "__main__":
    main()
