"""Cost of one training step with each remedy relative to no remedy, and of the unrolled G update.

    python benchmarks/remedy_step_cost.py [--reps-mlp 20] [--reps-dcgan 6] [--threads 1]

mlp: PacGAN 2D nets on ring8, batch 100. dcgan: the 28 px DCGAN (ngf = ndf = 64) on random 1x28x28 images,
batch 64. Median of repeated steps after warm-up, timed in interleaved rounds, one run; prints a markdown
table and writes it to benchmarks/out/remedy_step_cost.md.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from trainables.config import resolve
from trainables.data import load_dataset
from trainables.remedies import REMEDIES
from trainables.step import build_context, d_step, g_step, train_step

SETUPS: dict[str, dict[str, Any]] = {
    "mlp": {"model": {"name": "mlp"}, "batch": 100},
    "dcgan": {"model": {"name": "dcgan", "ngf": 64, "ndf": 64}, "batch": 64},
}
UNROLL_K = (0, 1, 5, 10)
OUT = Path(__file__).parent / "out" / "remedy_step_cost.md"


def _data(net: str, gen: torch.Generator) -> torch.Tensor:
    if net == "mlp":
        return load_dataset({"name": "ring8", "n_points": 10_000, "seed": 0}).x
    return torch.rand((1024, 1, 28, 28), generator=gen) * 2 - 1


def _context(net: str, remedies: dict) -> tuple[Any, Callable[[], torch.Tensor]]:
    setup = SETUPS[net]
    loss = [REMEDIES[name].loss for name in remedies if REMEDIES[name].loss]  # mmd_critic: its own objective
    cfg = resolve({"model": setup["model"], "remedies": remedies, "train": {"batch_size": setup["batch"]},
                   **({"loss": loss[0]} if loss else {})})
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    ctx = build_context(cfg, (2,) if net == "mlp" else (1, 28, 28), gen, torch.device("cpu"))
    x, b = _data(net, gen), setup["batch"]
    return ctx, lambda: x[torch.randint(len(x), (b,), generator=gen)]


def _round_robin(fns: dict[Any, Callable[[], Any]], reps: int, warmup: int = 2) -> dict[Any, float]:
    """Median seconds per call of each fn, timed in interleaved rounds so load drift hits all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[Any, list[float]] = {key: [] for key in fns}
    for _ in range(reps):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    return {key: statistics.median(ts) for key, ts in times.items()}


def step_costs(net: str, reps: int) -> dict[str, float]:
    """Median seconds of one train_step (n_critic D updates + one G update) with each remedy alone."""
    fns = {}
    model = SETUPS[net]["model"]["name"]
    for name in ["none", *sorted(n for n, r in REMEDIES.items() if not r.models or model in r.models)]:
        ctx, next_real = _context(net, {} if name == "none" else {name: {}})
        fns[name] = lambda ctx=ctx, next_real=next_real: train_step(ctx, next_real)
    return _round_robin(fns, reps)


def _g_update(ctx, next_real: Callable[[], torch.Tensor]) -> None:
    real = next_real()
    fake = ctx.g(ctx.z(len(real)))
    ctx.d.requires_grad_(False)
    try:
        g_step(ctx, real, fake)
    finally:
        ctx.d.requires_grad_(True)


def unrolled_costs(net: str, reps: int) -> tuple[float, dict[int, float]]:
    """(median plain D update, {k: median G update with k look-ahead steps}); G update = G forward + g_step."""
    ctx, next_real = _context(net, {})
    batch = SETUPS[net]["batch"]
    fns: dict[Any, Callable[[], Any]] = {"d": lambda: d_step(ctx, next_real(), ctx.g(ctx.z(batch)).detach())}
    for k in UNROLL_K:
        ctx_k, next_k = _context(net, {"unrolled": {"k": k}})
        train_step(ctx_k, next_k)  # D's optimiser has its moments
        fns[k] = lambda ctx_k=ctx_k, next_k=next_k: _g_update(ctx_k, next_k)
    t = _round_robin(fns, reps)
    return t.pop("d"), t


def adagan_round_cost(n_points: int = 6400) -> tuple[float, float]:
    """(seconds of one training epoch, seconds of starting an AdaGAN round: mixture samples, the classifier's
    `classifier_epochs` passes, W_t, fresh nets), mlp on ring8 with `n_points` points, batch 100."""
    from trainables.run import GANRun

    run = GANRun({"data": {"name": "ring8", "n_points": n_points}, "remedies": {"adagan": {"rounds": 2}},
                  "train": {"epochs": 2, "batch_size": 100}, "eval": {"metrics": []}})
    t0 = time.perf_counter()
    run.train_epoch()
    t1 = time.perf_counter()
    run.epoch += 1
    assert run.rounds is not None
    run.rounds.begin(run)  # round 2 starts
    return t1 - t0, time.perf_counter() - t1


def table(costs: dict[str, dict[str, float]], unroll: dict[str, tuple[float, dict[int, float]]], threads: int) -> str:
    nets = list(costs)
    lines = [f"# Remedy step cost (CPU, {threads} torch thread(s), median of interleaved repeated steps, one run)", "",
             "| remedy | " + " | ".join(f"{n} ms | {n} x none" for n in nets) + " |",
             "|---|" + "---:|---:|" * len(nets)]
    for name in costs[nets[0]]:
        cells = [f"{costs[n][name] * 1e3:.2f} | {costs[n][name] / costs[n]['none']:.2f}" if name in costs[n]
                 else "- | -" for n in nets]  # "-": the remedy works with other models (veegan, bigan: mlp)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Unrolled: one G update (G forward + g_step) in units of one plain D update (d_step); "
              "expected about (k + 1) D forward/backward passes plus the backward through them.", "",
              "| k | " + " | ".join(f"{n} G ms | {n} G / D step | {n} (G_k - G_0) / (k D steps)" for n in nets) + " |",
              "|---|" + "---:|---:|---:|" * len(nets)]
    for k in UNROLL_K:
        cells = []
        for n in nets:
            t_d, t_g = unroll[n]
            extra = f"{(t_g[k] - t_g[0]) / (k * t_d):.2f}" if k else "-"
            cells.append(f"{t_g[k] * 1e3:.2f} | {t_g[k] / t_d:.2f} | {extra}")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines += ["", "Plain D update: " + ", ".join(f"{n} {unroll[n][0] * 1e3:.2f} ms" for n in nets) + "."]
    epoch_s, round_s = adagan_round_cost()
    lines += ["", "AdaGAN: its step is the plain step (row `adagan`: only the data order is drawn by W_t); starting "
              f"a round (classifier, 5 passes; W_t; fresh nets) took {round_s:.2f} s = {round_s / epoch_s:.1f} "
              f"training epochs (mlp, ring8, 6,400 points, batch 100: one epoch {epoch_s:.2f} s)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps-mlp", type=int, default=20)
    ap.add_argument("--reps-dcgan", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    reps = {"mlp": args.reps_mlp, "dcgan": args.reps_dcgan}
    costs = {n: step_costs(n, reps[n]) for n in SETUPS}
    unroll = {n: unrolled_costs(n, reps[n]) for n in SETUPS}
    text = table(costs, unroll, args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
