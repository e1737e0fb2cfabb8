"""Cost of the extended evaluation: time and peak memory per metric, and its share of a DCGAN epoch.

Usage: python benchmarks/eval_metrics.py [--sizes 2500 10000] [--skip-epoch]
Writes benchmarks/out/eval_metrics.md and prints the same markdown.

Per metric and sample count N (real = fake = N, 128-d features with ten clusters, like the mode
classifier's penultimate layer), one fresh subprocess builds the inputs, warms the kernels up on a small
input, then times one call. Peak memory: torch has no peak counter for CPU tensors and tracemalloc does not
see them, so the subprocess resets the kernel's RSS high-water mark (`echo 5 > /proc/self/clear_refs`,
Linux) after building the inputs and reports VmHWM - VmRSS: the extra resident memory at the call's peak.
Where clear_refs is refused it falls back to the `resource.getrusage` max-RSS delta (a lower bound).

Epoch share: GANRun with the label-noise study's quick settings (DCGAN 28 px, ngf = ndf = 32, batch 64,
eval.n_samples 1000, 32 steps per epoch as on its 2,048-image MNIST subset), on MNIST when it is in the
data root, else on sklearn digits resized to 28 px; times train_epoch() against evaluate() with and without
the extended metrics, and the same at eval.n_samples 10000 (the full study's setting).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _out import publish  # benchmarks/ is on sys.path when a benchmark runs as a script

METRICS = ("fit: real radii", "fit: NDB k-means", "fit: duplicate threshold",
           "prdc", "ndb", "duplicate_rate", "all (registry prdc + ndb + duplicates)")


def features(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n ReLU features (128-d) around ten random cluster means, and each one's cluster (its mode)."""
    gen = torch.Generator().manual_seed(seed)
    means = torch.randn(10, 128, generator=gen) * 2
    idx = torch.randint(10, (n,), generator=gen)
    x = (means[idx] + torch.randn(n, 128, generator=gen)).relu()
    return x, idx


def _call(name: str, n: int) -> Callable[[], object]:
    """The measured call for metric `name` at size n, with what it needs fitted beforehand."""
    from trainables.config import EvalConfig
    from trainables.metrics.duplicates import duplicate_rate, duplicate_threshold
    from trainables.metrics.knn import kth_neighbour_distance
    from trainables.metrics.ndb import NDBBins
    from trainables.metrics.prdc import prdc
    from trainables.metrics.registry import METRICS, Evaluation, Reference

    (real, modes), (fake, _) = features(n, 0), features(n, 1)
    if name == "fit: real radii":
        return lambda: kth_neighbour_distance(real, 5)
    if name == "fit: NDB k-means":
        return lambda: NDBBins.fit(real, 100)
    if name == "fit: duplicate threshold":
        return lambda: duplicate_threshold(real)
    if name == "prdc":
        radii = kth_neighbour_distance(real, 5)
        return lambda: prdc(real, fake, 5, real_radii=radii)
    if name == "ndb":
        bins = NDBBins.fit(real, 100)
        return lambda: bins.score(fake)
    if name == "duplicate_rate":
        threshold = duplicate_threshold(real)
        return lambda: duplicate_rate(fake, threshold)
    # the model-free registry metrics fitted once, then scored on one Evaluation (fake k-NN shared), as
    # trainables.evaluate.Evaluator.score does; the D probes need a D and are left out
    listed = ("prdc", "ndb", "duplicates")
    ev = EvalConfig(n_samples=max(n, 10), metrics=listed, k=5, ndb_bins=100)
    ref = Reference(real=real, features=real, modes=modes, ev=ev, seed=0, pack=1, probe_radius=0.5)
    scorers = [METRICS[m].fit(ref) for m in listed]

    def score_all() -> dict[str, float]:
        e, out = Evaluation(features=fake, d=lambda x: x.new_zeros(len(x)), k=5), {}
        for scorer in scorers:
            out.update(scorer(e))
        return out

    return score_all


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def measure_one(name: str, n: int) -> dict:
    """In this (fresh) process: seconds and peak extra MiB of one call of metric `name` at size n."""
    _call(name, 300)()  # warm-up: kernels, thread pool, lazy imports
    fn = _call(name, n)
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        method, before = "VmHWM", _status_kb("VmRSS")
    except OSError:
        method, before = "ru_maxrss", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    peak = _status_kb("VmHWM") if method == "VmHWM" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "peak_mib": max(0, peak - before) / 1024, "method": method}


def metric_table(sizes: list[int]) -> list[str]:
    rows = {}
    for name in METRICS:
        for n in sizes:
            out = subprocess.run([sys.executable, __file__, "--one", name, str(n)], capture_output=True, text=True,
                                 check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
            rows[name, n] = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"  {name} N={n}: {rows[name, n]}", file=sys.stderr)
    head = "| metric | " + " | ".join(f"N = {n:,}: s | N = {n:,}: peak MiB" for n in sizes) + " |"
    lines = [head, "|---|" + "---:|" * 2 * len(sizes)]
    for name in METRICS:
        cells = " | ".join(f"{rows[name, n]['seconds']:.2f} | {rows[name, n]['peak_mib']:.0f}" for n in sizes)
        lines.append(f"| {name} | {cells} |")
    return lines


def _dataset() -> dict:
    """MNIST 28 px (2,048-image subset) when its files are in the data root, else sklearn digits at 28 px."""
    from trainables.data.files import TV_FOLDER, data_root

    if (data_root() / TV_FOLDER["mnist"] / "raw").is_dir():
        return {"name": "mnist", "image_size": 28, "subset": 2048}
    return {"name": "digits", "image_size": 28}


def epoch_share(n_samples: int, repeats: int = 2) -> tuple[str, list[str]]:
    """Median seconds of train_epoch() and evaluate() (modes only / extended) for the quick DCGAN run."""
    from trainables.run import GANRun

    data = _dataset()
    cfg = {"seed": 0, "data": data, "model": {"name": "dcgan", "nz": 100, "ngf": 32, "ndf": 32},
           "train": {"epochs": 10, "batch_size": 64, "steps_per_epoch": 32, "lr": 2e-4},
           "eval": {"n_samples": n_samples}}
    t0 = time.perf_counter()
    run = GANRun(cfg)
    setup = time.perf_counter() - t0
    train, base, ext = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run.train_epoch()
        t1 = time.perf_counter()
        run.evaluate(extended=False)
        t2 = time.perf_counter()
        run.evaluate(extended=True)
        t3 = time.perf_counter()
        train.append(t1 - t0), base.append(t2 - t1), ext.append(t3 - t2)
        run.epoch += 1
    tr, b, e = (statistics.median(v) for v in (train, base, ext))
    n_real = min(run.config.eval.n_samples, len(run.x))  # the Evaluator's fixed real subset (real_subset)
    label = f"{data['name']} 28 px, eval.n_samples {n_samples:,} (real subset {n_real:,})"
    return label, [f"| {label} | {tr:.2f} | {b:.2f} | {e:.2f} | {e / (tr + e):.0%} | {(e - b) / (tr + e):.0%} | "
                   f"{setup:.1f} |"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[2500, 10_000])
    p.add_argument("--samples", type=int, nargs="+", default=[1000, 10_000], help="eval.n_samples of the epoch rows")
    p.add_argument("--skip-epoch", action="store_true")
    p.add_argument("--one", nargs=2, metavar=("METRIC", "N"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one[0], int(args.one[1]))))
        return
    lines = [f"Extended evaluation cost on CPU ({os.cpu_count()} cores, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads), 128-d features, k = 5, NDB K = 100. Peak = extra resident "
             "memory at the call's peak (VmHWM after resetting it via /proc/self/clear_refs), one fresh process "
             "per cell.", "", *metric_table(args.sizes)]
    if not args.skip_epoch:
        lines += ["", "Share of an epoch: DCGAN 28 px quick settings (ngf = ndf = 32, batch 64, 32 steps per epoch); "
                  "medians of 2 epochs; setup = GANRun() incl. fitting the real subset once.", "",
                  "| run | train epoch (s) | evaluate, modes only (s) | evaluate, extended (s) | eval share of epoch "
                  "| extended metrics' share | setup (s) |", "|---|---:|---:|---:|---:|---:|---:|"]
        for n in args.samples:
            lines += epoch_share(n)[1]
    publish(lines, "eval_metrics.md")


if __name__ == "__main__":
    main()
