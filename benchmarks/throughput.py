"""Training throughput on a CPU or a GPU, in one run: (a) the platform's step vs a bare loop over the same modules,
DCGAN-64 (batch 64) and the PacGAN ring8 MLP (batch 100), fp32 and bf16; (b) seed-steps per second, S seeds
one after another vs S seeds as one seed-batched model (trainables/seeds.py), S in {1, 4, 10, 40}; (c) trials
per slot with fractional resources through Ray Tune (benchmarks/tune_slots.py).

Usage: python benchmarks/throughput.py --device cpu|cuda [--quick] [--skip-tune] [--determinism]
(a) alternates bare and platform epochs from the same nets (medians of `rounds`; bare / platform >= 0.95 is
the goal); the bare loop is D on real and fake with BCE, G non-saturating, Adam, under the same autocast. DCGAN
trains on scikit-learn's digits resized to 64 px (bundled: no download), which costs what MNIST does per step.
(b) times train_epoch only (no evaluation) after one warm-up epoch. --quick: 32 px DCGAN with ngf = ndf = 32,
fewer steps and S up to 10 (under 2 minutes on 2 CPU cores). Writes benchmarks/out/throughput_<device>.md; on
a GPU (without --quick) it also records (a)'s platform steps in docs/gpu_costs.md, which `--dry-run` prices with.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from _out import publish  # benchmarks/ is on sys.path when a benchmark runs as a script

from study.cost import MEASURE_STEPS
from study.gpu_table import GpuStep, count_ops, record
from trainables.run import GANRun
from trainables.seeds import SeedGroup, seed_configs


def ring_config(precision: str, steps: int) -> dict[str, Any]:
    """PacGAN's ring8 nets (G 4 x 400 BN, D 3 maxout x 200), batch 100, Adam, no remedy."""
    return {"seed": 0, "data": {"name": "ring8", "n_points": 20_000}, "model": {"name": "mlp"},
            "train": {"epochs": 1, "batch_size": 100, "lr": 1e-4, "steps_per_epoch": steps, "precision": precision},
            "eval": {"n_samples": 1000, "metrics": []}}


def dcgan_config(precision: str, steps: int, size: int, width: int) -> dict[str, Any]:
    """The seed DCGAN at `size` px with ngf = ndf = `width`, batch 64, on digits resized to `size`."""
    return {"seed": 0, "data": {"name": "digits", "image_size": size},
            "model": {"name": "dcgan", "ngf": width, "ndf": width},
            "train": {"epochs": 1, "batch_size": 64, "lr": 2e-4, "steps_per_epoch": steps, "precision": precision},
            "eval": {"n_samples": 200, "metrics": []}}


def _shown(row: str) -> str:
    """A table row, printed at once (a run cut short still shows what it measured)."""
    print(f"[{time.strftime('%H:%M:%S')}] {row}", flush=True)
    return row


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_epoch(run: GANRun, steps: int) -> None:
    """The step written plainly over the run's own modules and data; reads nothing on the host until the end."""
    ctx, x, batch = run.ctx, run.x, run.config.train.batch_size
    order = torch.randperm(len(x), generator=run.gen, device=run.device)
    for i in range(steps):
        real = x[order[(i * batch) % (len(x) - batch):][:batch]]
        with ctx.autocast():
            fake = ctx.g(ctx.z(batch))
            r, f = ctx.d(real), ctx.d(fake.detach())
            loss_d = F.binary_cross_entropy_with_logits(r, torch.ones_like(r)) + \
                F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
        ctx.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        ctx.opt_d.step()
        ctx.d.requires_grad_(False)
        with ctx.autocast():
            loss_g = F.softplus(-ctx.d(fake)).mean()
        ctx.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        ctx.opt_g.step()
        ctx.d.requires_grad_(True)
    sync(run.device)


def _timed(fn: Callable[[], Any], device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def step_vs_bare(name: str, config: dict[str, Any], device: str, rounds: int) -> tuple[str, GpuStep]:
    """One row: median s/step of the bare loop and of GANRun.train_epoch, and bare / platform; and the platform's
    step as a GPU table row."""
    steps = config["train"]["steps_per_epoch"]
    bare_run, platform_run = GANRun(config, device), GANRun(config, device)
    bare_epoch(bare_run, steps)  # warm-up: CUDA context, cuDNN algorithm choice, allocator
    platform_run.train_epoch()
    times: dict[str, list[float]] = {"bare": [], "platform": []}
    for _ in range(rounds):
        times["bare"].append(_timed(lambda: bare_epoch(bare_run, steps), bare_run.device) / steps)
        times["platform"].append(_timed(platform_run.train_epoch, platform_run.device) / steps)
    bare, platform = statistics.median(times["bare"]), statistics.median(times["platform"])
    ops = (count_ops(lambda: bare_epoch(bare_run, steps)) / steps, count_ops(platform_run.train_epoch) / steps)
    precision = config["train"]["precision"]
    card = torch.cuda.get_device_name(0) if platform_run.device.type == "cuda" else "CPU"
    counted = cpu_ops(config) if card != "CPU" else ops[1]  # on the CPU the timed run's own count serves
    step = GpuStep(card, config["model"]["name"], precision, platform * 1e3, counted, _commit(),
                   time.strftime("%Y-%m-%d", time.gmtime()))
    return _shown(f"| {name} | {precision} | {config['train']['batch_size']} | {bare * 1e3:.3f} | "
                  f"{platform * 1e3:.3f} | {bare / platform:.3f} | {ops[0]:.0f} / {ops[1]:.0f} |"), step


def cpu_ops(config: dict[str, Any], steps: int = MEASURE_STEPS) -> float:
    """The platform step's aten ops counted on the CPU in an epoch of `steps`, as `--dry-run` counts an arm's: the
    GPU table prices an op of that count, whatever the card dispatches (its Adam is one foreach kernel a step)."""
    run = GANRun({**config, "train": {**config["train"], "steps_per_epoch": steps}}, "cpu")
    run.train_epoch()  # the first step creates the optimisers' state
    return count_ops(run.train_epoch) / steps


def _commit() -> str:
    """The code measured: $GAN_STUDY_COMMIT (a copy without .git), else the checkout's HEAD."""
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    return os.environ.get("GAN_STUDY_COMMIT", "")[:7] or found.stdout.strip() or "unknown"


def seed_rates(device: str, sizes: list[int], steps: int) -> list[str]:
    """Per S: seed-steps/s of S GANRuns trained one after another, and of one SeedGroup of S, and their ratio."""
    rows = []
    for s in sizes:
        configs = seed_configs(ring_config("fp32", steps), list(range(s)))
        runs = [GANRun(c, device) for c in configs]
        for run in runs:
            run.train_epoch()  # warm-up
        sequential = _timed(lambda runs=runs: [r.train_epoch() for r in runs], runs[0].device)
        del runs
        group = SeedGroup(configs, device)
        group.train_epoch()
        batched = _timed(group.train_epoch, group.device)
        seq_rate, batch_rate = s * steps / sequential, s * steps / batched
        rows.append(_shown(f"| {s} | {seq_rate:,.0f} | {batch_rate:,.0f} | {batch_rate / seq_rate:.2f} |"))
        del group
    return rows


def determinism(device: str, steps: int, size: int, width: int) -> list[str]:
    """(d) train.deterministic: its cost (median train seconds of an epoch, off vs on) and whether two runs of
    the same seed give the same per-epoch metrics, for DCGAN and the ring8 MLP."""
    rows = []
    for name, base in ((f"DCGAN-{size}", dcgan_config("fp32", steps, size, width)),
                       ("ring8 MLP", ring_config("fp32", steps))):
        seconds: dict[bool, list[float]] = {False: [], True: []}
        metrics: dict[bool, list[list[dict]]] = {False: [], True: []}
        for _ in range(2):
            for on in (False, True):
                run = GANRun({**base, "train": {**base["train"], "epochs": 3, "deterministic": on}}, device)
                epochs = [run.step() for _ in range(run.epochs)]
                seconds[on] += [e["time/train_s"] for e in epochs[1:]]  # the first epoch warms up
                metrics[on].append([{k: v for k, v in e.items() if not k.startswith(("time/", "compute/sec"))}
                                    for e in epochs])
        off, on_ = statistics.median(seconds[False]), statistics.median(seconds[True])
        same = {flag: "yes" if repr(runs[0]) == repr(runs[1]) else "no" for flag, runs in metrics.items()}  # NaN too
        rows.append(f"| {name} | {off:.3f} | {on_:.3f} | {on_ / off:.2f} | {same[False]} | {same[True]} |")
    return ["| model | epoch s, default | epoch s, deterministic | cost | same metrics twice, default | "
            "same metrics twice, deterministic |", "|---|---:|---:|---:|---|---|", *rows]


def tune_rows(device: str, quick: bool) -> list[str]:
    """(c): benchmarks/tune_slots.py's rows (Ray Tune with fractional resources), or a line saying why not."""
    try:
        from tune_slots import measure, table
    except ImportError as err:
        return [f"(c) not measured: {err}"]
    one_at_a_time = 1.0 if device == "cuda" else float(os.cpu_count() or 1)
    fractions = [one_at_a_time, *((0.25, 0.1) if device == "cuda" else (1.0, 0.5))][: 2 if quick else 3]
    trials, epochs, steps = (4, 1, 10) if quick else (16, 3, 100)
    return table(measure(device, fractions, trials, epochs, steps), device, epochs, steps)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--quick", action="store_true", help="small budget: under 2 minutes on 2 CPU cores")
    p.add_argument("--skip-tune", action="store_true", help="leave out (c), the Ray Tune measurement")
    p.add_argument("--determinism", action="store_true", help="add (d): train.deterministic's cost and repeatability")
    p.add_argument("--steps", type=int, nargs=3, metavar=("RING", "CONV", "ROUNDS"), default=None,
                   help="ring8 steps an epoch, DCGAN steps an epoch, rounds (default: by device and --quick)")
    args = p.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda: no CUDA device is visible")
    torch.set_num_threads(int(os.environ.get("GAN_STUDY_BENCH_THREADS", "1")))
    torch.backends.cudnn.benchmark = True
    quick, dev = args.quick, args.device
    defaults = (10, 2, 3) if quick else ((200, 50, 5) if dev == "cuda" else (50, 4, 3))
    ring_steps, conv_steps, rounds = args.steps or defaults
    size, width = (32, 32) if quick else (64, 64)
    card = torch.cuda.get_device_name(0) if dev == "cuda" else f"CPU, {torch.get_num_threads()} torch thread(s)"
    t0 = time.perf_counter()
    lines = [f"device: {card}; torch {torch.__version__}; {'quick' if quick else 'full'} settings", "",
             "(a) platform step vs bare loop (median ms/step; bare / platform: goal >= 0.95)", "",
             "| model | precision | batch | bare ms | platform ms | bare / platform | aten ops a step, bare / "
             "platform |", "|---|---|---:|---:|---:|---:|---:|"]
    steps: list[GpuStep] = []
    for precision in ("fp32", "bf16"):
        nets = [("ring8 MLP", ring_config(precision, ring_steps))]
        if not (quick and precision == "bf16" and dev == "cpu"):  # CPU bf16 convolutions: seconds a step here
            nets.append((f"DCGAN-{size}", dcgan_config(precision, conv_steps, size, width)))
        for name, config in nets:
            row, step = step_vs_bare(name, config, dev, rounds)
            lines.append(row)
            steps.append(step)
    if dev == "cuda" and not quick:
        record(steps)  # the GPU step table `--dry-run` prices with (docs/gpu_costs.md)
    sizes = [1, 4, 10] if quick else [1, 4, 10, 40]
    lines += ["", f"(b) ring8 seed-steps/s (PacGAN nets, batch 100, {ring_steps} steps an epoch)", "",
              "| S | sequential | seed-batched | ratio |", "|---:|---:|---:|---:|"]
    lines += seed_rates(dev, sizes, ring_steps)
    if args.determinism:
        from trainables.run import set_deterministic

        lines += ["", "(d) train.deterministic: cost and repeatability (3 epochs with evaluation, 2 runs each)", ""]
        lines += determinism(dev, conv_steps, size, width)
        set_deterministic(False)
    if not args.skip_tune:
        lines += ["", "(c) trials through Ray Tune with fractional resources", ""] + tune_rows(dev, quick)
    lines += ["", f"wall {time.perf_counter() - t0:.0f} s: `python benchmarks/throughput.py --device {dev}"
              f"{' --quick' if quick else ''}`"]
    publish(lines, f"throughput_{dev}{'_quick' if quick else ''}.md")


if __name__ == "__main__":
    main()
