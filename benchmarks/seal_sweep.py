"""Driver-side cost of recording Tune's state files for --resume (study/seal.py, watchdog.StateSeal).

    python benchmarks/seal_sweep.py [--trials 200] [--reps 30]

A staging directory as Tune's driver keeps it for `--trials` trials (params.pkl, result.json, progress.csv and
params.json each; a 160 kB experiment state and a 200 kB searcher pickle), timed at the end of a Tune step
without a save (the common case: only the top-level files are stat'ed) and right after a save (the tree is
walked and the changed files hashed). Medians of one run.
"""
from __future__ import annotations

import argparse
import os
import pickle
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    os.environ["GAN_STUDY_TRUST_DIR"] = tempfile.mkdtemp()  # the records of this run stay out of ~
    from study.watchdog import StateSeal

    root = Path(tempfile.mkdtemp())
    state = root / "experiment_state-s.json"
    state.write_text("{" + '"x": 1,' * 20000 + '"y": 0}')
    (root / "searcher-state-s.pkl").write_bytes(os.urandom(200_000))
    for i in range(args.trials):
        trial = root / f"t{i:04d}"
        trial.mkdir()
        (trial / "params.pkl").write_bytes(pickle.dumps({"lr": i}))
        for name in ("result.json", "progress.csv", "params.json"):
            (trial / name).write_text("{}\n" * 50)
    watch = StateSeal(str(root / "run"))
    trials = [SimpleNamespace(storage=SimpleNamespace(experiment_driver_staging_path=str(root)))]
    watch.on_step_end(0, trials)
    quiet, saved = [], []
    for k in range(args.reps):
        t0 = time.perf_counter()
        watch.on_step_end(k, trials)
        quiet.append(time.perf_counter() - t0)
        state.write_text("{" + '"x": 1,' * 20000 + f'"y": {k + 1}}}')  # Tune's save rewrites the state
        t0 = time.perf_counter()
        watch.on_step_end(k, trials)
        saved.append(time.perf_counter() - t0)
    print(f"{args.trials} trials: a step end without a save {statistics.median(quiet) * 1e3:.2f} ms, "
          f"after a save {statistics.median(saved) * 1e3:.2f} ms (medians of {args.reps})")


if __name__ == "__main__":
    main()
