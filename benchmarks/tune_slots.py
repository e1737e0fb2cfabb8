"""Trial slots a study fills (issue #12): the same small ring8 study through the real runner at several per-trial
resource settings, its throughput and how many trials it kept open at once.

    python benchmarks/tune_slots.py [--device cpu|cuda] [--fractions F ...] [--trials 16] [--epochs 4] [--quick]

Each setting runs `python -m study.run ring8_label_noise --quick` in a subprocess (a Ray of its own on this
machine) with one configuration (flip 0.1) x `trials` seeds, `train.threads=1`, its own temporary MLflow store
and GAN_STUDY_HOME. `--device cuda`: `resources.gpu=F` for each F (default 1.0: one trial at a time, 0.25, 0.1)
with `resources.cpu=0.5`, so that CPUs do not limit the slots. `--device cpu`: `resources.cpu=F` (default: all
of this machine's CPUs, one trial at a time, then 1 and 0.5). Per row: the study's wall seconds (Ray start and data
included), trials per minute over that wall, the mean and max number of trial runs open at once from their MLflow
start and end times (study/concurrency.py), and trials per minute relative to the first (one-at-a-time) row.
`--quick`: 4 trials of 2 epochs of 20 steps, two settings (about a minute or two on 2 CPU cores). Prints a
markdown table and writes it to benchmarks/out/tune_slots.md.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _out import publish  # benchmarks/ is on sys.path when a benchmark runs as a script

from study.concurrency import summary, trial_runs

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = "tune_slots"


def overrides(device: str, fraction: float, trials: int, epochs: int, steps: int) -> list[str]:
    """The --set values of one setting: one configuration x `trials` seeds, one torch thread a trial."""
    share = ([f"resources.gpu={fraction:g}", "resources.cpu=0.5"] if device == "cuda"
             else [f"resources.cpu={fraction:g}", "resources.gpu=0"])
    sets = [f"seeds={trials}", "search.remedies.label_flip.rate.grid=[0.1]", f"train.epochs={epochs}",
            f"train.steps_per_epoch={steps}", "train.threads=1", f"tracking.experiment={EXPERIMENT}", *share]
    return [arg for s in sets for arg in ("--set", s)]


def run_study(sets: list[str], tmp: Path) -> float:
    """Run the study in a subprocess with its own store, storage and home under `tmp`; its wall seconds."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAY_", "MLFLOW_", "TUNE_MAX_PENDING", "GAN_STUDY_"))}
    env.update(GAN_STUDY_HOME=str(tmp / "home"), GAN_STUDY_TRUST_DIR=str(tmp / "trust"))
    cmd = [sys.executable, "-m", "study.run", "ring8_label_noise", "--quick", *sets,
           "--tracking-uri", f"sqlite:///{tmp / 'mlflow.db'}", "--storage-path", str(tmp / "ray")]
    start = time.monotonic()
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.monotonic() - start
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(sets)}: exit {out.returncode}\n{(out.stdout + out.stderr)[-3000:]}")
    return wall


def measure(device: str, fractions: list[float], trials: int, epochs: int, steps: int = 100) -> list[dict]:
    """One row per fraction: setting, trials, wall seconds, trials/min, mean and max concurrency, ratio to the first."""
    rows: list[dict] = []
    for fraction in fractions:
        sets = overrides(device, fraction, trials, epochs, steps)
        with tempfile.TemporaryDirectory(prefix="tune-slots-") as tmp:
            wall = run_study(sets, Path(tmp))
            found = summary(trial_runs(f"sqlite:///{Path(tmp) / 'mlflow.db'}", EXPERIMENT))
        rows.append({"setting": " ".join(s for s in sets if s.startswith("resources.")), "trials": found["runs"],
                     "wall_s": wall, "trials_per_min": found["runs"] / wall * 60, "mean_concurrency": found["mean"],
                     "max_concurrency": found["max"], "span_s": found["span_s"]})
        rows[-1]["ratio"] = rows[-1]["trials_per_min"] / rows[0]["trials_per_min"]
        print(f"{rows[-1]['setting']}: {wall:.0f} s, mean concurrency {found['mean']:.2f}", flush=True)
    return rows


def table(rows: list[dict], device: str, epochs: int, steps: int) -> list[str]:
    """The markdown table of `measure`'s rows."""
    lines = [f"ring8 quick nets, {epochs} epochs of {steps} steps a trial, train.threads=1, on {device} "
             f"({os.cpu_count()} CPUs here); concurrency = trial runs open at once (MLflow start/end times)", "",
             "| setting | trials | wall (s) | trials/min | mean concurrency | max concurrency | trials/min vs row 1 |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['setting']} | {r['trials']} | {r['wall_s']:.0f} | {r['trials_per_min']:.1f} "
              f"| {r['mean_concurrency']:.2f} | {r['max_concurrency']} | {r['ratio']:.2f} |" for r in rows]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--fractions", type=float, nargs="+", default=None, help="resources.gpu (cuda) or .cpu (cpu)")
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=100, help="train.steps_per_epoch")
    ap.add_argument("--quick", action="store_true", help="4 trials of 2 epochs of 20 steps, two settings")
    args = ap.parse_args()
    one_at_a_time = 1.0 if args.device == "cuda" else float(os.cpu_count() or 1)
    fractions = args.fractions or [one_at_a_time, *((0.25, 0.1) if args.device == "cuda" else (1.0, 0.5))]
    if args.quick:
        args.trials, args.epochs, args.steps = 4, 2, 20
        fractions = args.fractions or [one_at_a_time, 0.1 if args.device == "cuda" else 0.5]
    rows = measure(args.device, fractions, args.trials, args.epochs, args.steps)
    publish(table(rows, args.device, args.epochs, args.steps), "tune_slots.md")


if __name__ == "__main__":
    main()
