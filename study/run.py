"""`python -m study.run SPEC [--quick] [--set k=v ...] [--resume] [--address A] [--dry-run [--no-cost]] ...`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script (`ray submit CLUSTER study/run.py -- SPEC`)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from study.schema import Spec
from study.spec import SpecError, load_spec, n_configurations


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m study.run", description="Run a GAN mode-collapse study.")
    p.add_argument("spec", help="study spec YAML (search_spaces/*.yaml)")
    p.add_argument("--quick", action="store_true", help="apply the spec's `quick` block (a CPU budget)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec key (dotted; trial-config keys like train.epochs go under fixed)")
    p.add_argument("--resume", action="store_true", help="continue the latest interrupted run of this study")
    p.add_argument("--allow-changed-spec", action="store_true",
                   help="with --resume: continue although the spec or --set values differ from the run's")
    p.add_argument("--address", default=None, help="join an existing Ray cluster (e.g. auto or 10.0.0.1:6379)")
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: a local SQLite store)")
    p.add_argument("--storage-path", default=None, help="where Ray keeps results and checkpoints")
    p.add_argument("--dry-run", action="store_true", help="validate and print the plan; start nothing")
    p.add_argument("--no-cost", action="store_true",
                   help="with --dry-run: skip the cost estimate (it trains a short epoch of each grid arm)")
    return p.parse_args(argv)


def find_spec(path: str) -> str:
    """The spec as given, else the same relative path inside the project: `ray submit CLUSTER study/run.py --
    search_spaces/x.yaml` runs the uploaded script in the head node's home directory, beside the installed project.
    A bare name (`label_noise`) is search_spaces/<name>.yaml, here or in the project."""
    import study.spec

    if Path(path).exists() or Path(path).is_absolute():
        return path
    project = Path(study.spec.__file__).resolve().parents[1]
    named = [] if Path(path).suffix else [f"search_spaces/{path}.yaml"]  # a bare name: `label_noise`
    for candidate in [Path(path), *map(Path, named), *(project / p for p in [path, *named])]:
        if candidate.exists():
            return str(candidate)
    return path


def dry_run(spec: Spec, args: argparse.Namespace) -> None:
    """The plan beyond the trial count: the experiment, the store, the storage path and the cost (study/cost.py)."""
    import os

    from study import tracking
    from study.cost import estimate, report
    from study.preflight import storage_root

    uri = (args.tracking_uri or spec.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI")
           or f"sqlite:///{tracking.default_home() / 'mlflow.db'}")
    key = spec.name + ("-quick" if args.quick else "")
    storage = storage_root(args, spec, key)
    print(f"experiment: {spec.tracking.experiment or spec.name}; store: {tracking.shown(uri)}; storage: {storage}")
    if args.no_cost:
        return
    print("gan-study: measuring a short epoch of each grid arm for the cost estimate", flush=True)
    print("\n".join(report(spec, estimate(spec))))


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # outside Tune's own handling (it saves the trials): importing, connecting, data
        print("\ninterrupted (Ctrl-C); a study whose trials had started continues with --resume", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    args = parse_args(argv)
    args.spec = find_spec(args.spec)
    try:
        spec = load_spec(args.spec, quick=args.quick, overrides=args.overrides)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        from study.preflight import check

        check(spec, args, spec.name + ("-quick" if args.quick else ""))
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    seeds, groups = spec.seed_list, spec.seed_groups
    n_cfg = n_configurations(spec)
    batched = (f" (each configuration's seeds in {len(groups)} trial{'s' * (len(groups) > 1)} of up to "
               f"{spec.seeds_per_trial})" if spec.seeds_per_trial > 1 else "")
    print(f"gan-study: {spec.name}{' (quick)' if args.quick else ''}: {n_cfg} configurations x {len(seeds)} seeds"
          f"{batched} = {n_cfg * len(groups)} trials of {spec.base.train.epochs} epochs; searched: "
          f"{', '.join(spec.search) or 'nothing (fixed config)'}", flush=True)
    if args.dry_run:
        dry_run(spec, args)
        return 0
    from study.launch import launch  # imports Ray and MLflow only once the spec is known to be good

    try:
        return launch(spec, Path(args.spec), args, n_cfg)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
