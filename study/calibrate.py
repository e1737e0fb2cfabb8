"""Calibrate a spec's budget without Ray: every grid arm x seed as a plain GANRun, in worker processes.

`python -m study.calibrate SPEC [--quick] [--set key=value ...] [--seeds N] [--workers 2]` prints, per arm,
how many seeds collapsed (and when), how many never became diverse, the final modes and high-quality share,
and the wall time; it is how the quick blocks' budgets were chosen (docs/protocols.md, "Calibration").
Trials run exactly as in a study (same TrialConfig, same seeds), minus Tune's scheduling and MLflow.
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from study.schema import Spec
from study.space import format_value, overrides
from study.spec import SpecError, load_spec
from trainables.config import TrialConfig, resolve

STATE_LETTER = {"not_learned": ".", "diverse": "D", "collapsed": "C", "degraded": "d"}


def arms(spec: Spec) -> list[dict[str, Any]]:
    """The grid points of the spec (searched values by key); one empty arm when nothing is a grid."""
    keys = [k for k, d in spec.search.items() if d.kind == "grid"]
    return [dict(zip(keys, combo)) for combo in itertools.product(*(spec.search[k].values for k in keys))]


def configs(spec: Spec, seeds: Sequence[int]) -> list[tuple[str, int, TrialConfig]]:
    """(arm label, seed, config) for every grid arm x seed, built as TrialBuilder builds a trial's."""
    out = []
    for arm in arms(spec):
        label = " ".join(f"{k}={format_value(k, v)}" for k, v in arm.items()) or "base"
        for seed in seeds:
            out.append((label, seed, resolve(dict(spec.fixed), overrides(arm), {"seed": seed})))
    return out


def run_one(item: tuple[str, int, TrialConfig]) -> dict[str, Any]:
    """Train one trial to its end; its outcome, states per epoch and final quality."""
    import torch

    from trainables.run import GANRun

    torch.set_num_threads(1)
    label, seed, config = item
    t0 = time.perf_counter()
    run, last = GANRun(config), {}
    while not run.done:
        last = run.step()
    return {"arm": label, "seed": seed, "outcome": run.outcome, "collapse_epoch": run.status["collapse_epoch"],
            "states": "".join(STATE_LETTER[s] for s in run.states), "modes": last.get("eval/modes_covered"),
            "hq": last.get("eval/hq_fraction"), "kl": last.get("eval/kl_to_uniform"),
            "mass": last.get("eval/modes_with_mass"),
            "seconds": time.perf_counter() - t0}


def summarise(results: list[dict[str, Any]]) -> list[str]:
    """One line per trial (its states, D diverse C collapsed . not learned d degraded), then one per arm."""
    lines = [f"{r['arm']:<32} seed {r['seed']:<3} {r['outcome']:<13} {r['states']}  modes {r['modes']}"
             f" hq {r['hq']:.2f} kl {r.get('kl') or 0:.2f} mass {r.get('mass')}  {r['seconds']:.0f}s" for r in results]
    for arm in dict.fromkeys(r["arm"] for r in results):
        rs = [r for r in results if r["arm"] == arm]
        hit = [r["collapse_epoch"] for r in rs if r["outcome"] == "collapsed"]
        never = sum(r["outcome"] == "never_diverse" for r in rs)
        lines.append(f"ARM {arm}: collapsed {len(hit)}/{len(rs)} at {sorted(hit)}, never diverse {never}, "
                     f"median final modes {statistics.median(r['modes'] or 0 for r in rs)}, "
                     f"median hq {statistics.median(r['hq'] or 0 for r in rs):.2f}, "
                     f"mean final modes {statistics.mean(r['modes'] or 0 for r in rs):.2f}, "
                     f"mean reverse KL {statistics.mean(r.get('kl') or 0 for r in rs):.3f}, "
                     f"median {statistics.median(r['seconds'] for r in rs):.0f}s a trial")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m study.calibrate", description=__doc__.splitlines()[0])
    p.add_argument("spec")
    p.add_argument("--quick", action="store_true", help="apply the spec's quick block")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a spec key")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the spec's)")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    try:
        from study.run import find_spec

        spec = load_spec(find_spec(args.spec), quick=args.quick, overrides=args.set)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    seeds = spec.seed_list[: args.seeds] if args.seeds else spec.seed_list
    if args.seeds and args.seeds > len(seeds):
        seeds = list(range(args.seeds))
    items = configs(spec, seeds)
    print(f"{len(items)} trials ({len(arms(spec))} arms x {len(seeds)} seeds), {args.workers} workers", flush=True)
    held = [k for k, d in spec.search.items() if d.kind != "grid"]
    if held:
        print(f"searched keys held at their fixed values: {', '.join(held)}", flush=True)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        results = []
        for r in pool.map(run_one, items):
            results.append(r)
            print(summarise([r])[0], flush=True)
    print("\n".join(summarise(results)[len(results):]))
    print(f"wall {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
