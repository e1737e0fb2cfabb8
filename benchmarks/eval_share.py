"""Share of an epoch spent evaluating, for every shipped spec at its full budget and its quick form (issue #12:
at most 10 %). Reuses the dry run's measurement (study/cost.py): a short timed epoch and one evaluation of each
grid arm's first seed, scaled to the arm's steps an epoch and eval.n_samples (extended metrics weighted by
eval.extended_every). An arm whose data or mode classifier is not on this machine is listed as not measured.

Usage: python benchmarks/eval_share.py [SPEC ...] [--form quick|full|both] [--threads 1]
(default: every search_spaces/*.yaml, both forms)
Writes benchmarks/out/eval_share.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from _out import publish  # benchmarks/ is on sys.path when a benchmark runs as a script

from study.cost import estimate
from study.spec import load_spec

SPECS = Path(__file__).resolve().parent.parent / "search_spaces"
GOAL = 0.10


def rows(path: Path, quick: bool, threads: int) -> list[str]:
    """One table row per grid arm of the spec (its full or quick form)."""
    spec = load_spec(path, quick=quick)
    out = []
    for c in estimate(spec):
        if c.step_s is None or c.eval_s is None:
            out.append(f"| {spec.name} | {'quick' if quick else 'full'} | {c.label} | {c.g_steps} | - | - | - | "
                       f"{c.note} |")
            continue
        train_s = c.g_steps * c.step_s
        share = c.eval_s / (train_s + c.eval_s)
        out.append(f"| {spec.name} | {'quick' if quick else 'full'} | {c.label} | {c.g_steps} | {train_s:.2f} | "
                   f"{c.eval_s:.2f} | {share:.1%} | {'ok' if share <= GOAL else 'over'} |")
        print(out[-1], flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("specs", nargs="*")
    p.add_argument("--form", choices=("quick", "full", "both"), default="both")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    paths = [SPECS / f"{s}.yaml" for s in args.specs] or sorted(SPECS.glob("*.yaml"))
    lines = ["| spec | form | arm | G steps an epoch | train s an epoch | eval s | eval share | <= 10 % |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    for path in paths:
        for quick in {"quick": (True,), "full": (False,), "both": (True, False)}[args.form]:
            lines += rows(path, quick, args.threads)
    publish(lines, "eval_share.md")


if __name__ == "__main__":
    sys.exit(main())
