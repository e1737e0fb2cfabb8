"""Trainable overhead: the same GAN epochs through Ray Tune (GANTrainable + MLflow logging) vs a plain loop.

Usage: python benchmarks/trainable_overhead.py [--epochs 8] [--points 10000] [--rounds 2]
Alternates plain and Tune runs (`rounds` of each, so drifting machine load hits both), pools the per-epoch
times and prints their medians and ratio (goal: at most 1.05 for epochs of a few seconds); writes
benchmarks/out/trainable_overhead.md. Both sides use one torch thread, the same config and seed.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from _out import publish  # benchmarks/ is on sys.path when a benchmark runs as a script

from trainables.config import TrialConfig, resolve
from trainables.run import GANRun


class FixedBuild:
    """GANTrainable's `build`: every Tune config is this one trial config (no search; as study.space.TrialBuilder)."""

    def __init__(self, cfg: dict):
        self.cfg = cfg

    def __call__(self, sampled: dict) -> TrialConfig:
        return resolve(self.cfg)

    def configs(self, sampled: dict) -> list[TrialConfig]:
        return [self(sampled)]

    def values(self, sampled: dict) -> dict[str, str]:
        return {}


def config(points: int, epochs: int) -> dict:
    """PacGAN ring8 nets (G 4x400, D 3 maxout x 200), batch 100: an epoch of `points / 100` steps."""
    return {"seed": 0, "data": {"name": "ring8", "n_points": points}, "model": {"name": "mlp"},
            "remedies": {"label_flip": {"rate": 0.05}},
            "train": {"epochs": epochs, "batch_size": 100, "lr": 1e-4, "betas": [0.8, 0.999], "threads": 1},
            "eval": {"n_samples": 2500, "grid_every": 4}}


def plain(cfg: dict) -> list[float]:
    torch.set_num_threads(1)
    run = GANRun(cfg)
    times = []
    while not run.done:
        t0 = time.perf_counter()
        run.step()
        times.append(time.perf_counter() - t0)
    return times


def through_tune(cfg: dict, tmp: Path) -> tuple[list[float], float]:
    import ray
    from mlflow.tracking import MlflowClient
    from ray import tune

    from trainables.tune import GANTrainable

    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = client.create_experiment("overhead")
    parent = client.create_run(exp).info.run_id
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    trainable = tune.with_resources(tune.with_parameters(
        GANTrainable, build=FixedBuild(cfg), tracking_uri=uri, experiment_id=exp, parent_run_id=parent),
        {"cpu": 1})
    t0 = time.perf_counter()
    grid = tune.Tuner(trainable, param_space={}, run_config=tune.RunConfig(
        storage_path=str(tmp / "ray"), verbose=0,
        checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=4))).fit()
    wall = time.perf_counter() - t0
    df = grid[0].metrics_dataframe
    ray.shutdown()
    return df["time_this_iter_s"].tolist(), wall


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--points", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    cfg = config(args.points, args.epochs)
    plain_times, tune_times, walls = [], [], []
    for _ in range(args.rounds):
        plain_times += plain(cfg)
        with tempfile.TemporaryDirectory() as tmp:
            times, wall = through_tune(cfg, Path(tmp))
        tune_times += times
        walls.append(wall)
    wall = statistics.median(walls)
    med_plain, med_tune = statistics.median(plain_times), statistics.median(tune_times)
    lines = [
        "| measure | plain GANRun loop | Ray Tune GANTrainable | ratio |",
        "|---|---|---|---|",
        f"| median epoch (s), {args.rounds} x {args.epochs} epochs | {med_plain:.3f} | {med_tune:.3f} "
        f"| {med_tune / med_plain:.3f} |",
        f"| total of epochs (s) | {sum(plain_times):.2f} | {sum(tune_times):.2f} "
        f"| {sum(tune_times) / sum(plain_times):.3f} |",
        f"| Tune wall incl. Ray start-up and actor set-up (s) | | {wall:.2f} | |",
    ]
    publish(lines, "trainable_overhead.md")


if __name__ == "__main__":
    main()
