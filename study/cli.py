"""`gan-study run|calibrate|reproduce|report|ui ...`: the console entry point ([project.scripts]).

`run`, `calibrate` and `reproduce` are `python -m study.run`, `study.calibrate` and `study.reproduce`;
`report [NOTEBOOK]` executes `reports/NOTEBOOK.ipynb` headless into
`<GAN_STUDY_HOME or ./.studies>/reports/NOTEBOOK.html` on the store the runner uses (the notebooks resolve it
as the runner does: study/notebook.py); `ui` starts the MLflow UI on it.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPORTS = Path(__file__).resolve().parents[1] / "reports"
USAGE = "usage: gan-study {run,calibrate,reproduce,report,ui} ...  (gan-study COMMAND --help for its options)"


def _store(uri: str | None) -> str:
    from study import tracking

    return uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{tracking.default_home() / 'mlflow.db'}"


def report(argv: Sequence[str]) -> int:
    """Execute one report notebook to HTML against the study's store."""
    p = argparse.ArgumentParser(prog="gan-study report", description=report.__doc__)
    p.add_argument("notebook", nargs="?", default="label_noise", help="reports/NOTEBOOK.ipynb (default label_noise)")
    p.add_argument("--experiment", default=None, help="MLflow experiment (default: the notebook's study)")
    p.add_argument("--tracking-uri", default=None, help="MLflow store (default: the runner's)")
    args = p.parse_args(argv)
    nb = REPORTS / f"{args.notebook.removesuffix('.ipynb')}.ipynb"
    if not nb.is_file():
        known = ", ".join(sorted(x.stem for x in REPORTS.glob("*.ipynb")))
        print(f"error: no report notebook {args.notebook!r}; known: {known}", file=sys.stderr)
        return 2
    from study import tracking

    out = tracking.default_home() / "reports"
    env = {**os.environ, "GAN_STUDY_TRACKING_URI": _store(args.tracking_uri)}
    if args.experiment:
        env["GAN_STUDY_EXPERIMENT"] = args.experiment
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "jupyter", "nbconvert", "--execute", "--to", "html", "--output-dir", str(out),
           nb.name]
    code = subprocess.run(cmd, cwd=REPORTS, env=env, check=False).returncode
    if code == 0:
        print(f"report: {out / nb.with_suffix('.html').name}")
    return code


def ui(argv: Sequence[str]) -> int:
    """Start the MLflow UI on the study's store (`--print`: only print the command)."""
    p = argparse.ArgumentParser(prog="gan-study ui", description=ui.__doc__)
    p.add_argument("--tracking-uri", default=None, help="MLflow store (default: the runner's)")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--print", action="store_true", dest="dry", help="print the command instead of running it")
    args = p.parse_args(argv)
    uri = _store(args.tracking_uri)
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--port", str(args.port)]
    if args.dry:
        print(" ".join(cmd))
    else:
        from study.relocate import relocate_store

        relocate_store(uri)  # a moved study folder: the UI shows its sample grids from where they are now
    tables = _runs_tables(uri, args.port)
    print("each study's runs table, once the UI is up:\n" + "\n".join(tables) if tables
          else f"no study in {uri} yet: run one first (python -m study.run SPEC)", flush=True)
    return 0 if args.dry else subprocess.run(cmd, check=False).returncode


def _runs_tables(uri: str, port: int) -> list[str]:
    """`  NAME: URL` of each experiment's runs table in the store (none for a SQLite file not there yet)."""
    from study import tracking

    path = tracking.sqlite_path(uri)
    if path is not None and not path.is_file():
        return []
    if uri.startswith(("http://", "https://")):
        return [f"  {uri.rstrip('/')}/#/experiments?workflowType=machine_learning (the server is its own UI)"]
    from mlflow.tracking import MlflowClient

    tracking.quiet()
    found = MlflowClient(uri).search_experiments(order_by=["last_update_time DESC"])
    return [f"  {e.name}: {tracking.ui_url(uri, e.experiment_id, port, _last(tracking.views_of(e.tags)))}"
            for e in found if e.name != "Default"]


def _last(keys: list[str]) -> str | None:
    return keys[-1] if keys else None


def run(argv: Sequence[str]) -> int:
    from study.run import main as run_main

    return run_main(list(argv))


def calibrate(argv: Sequence[str]) -> int:
    from study.calibrate import main as calibrate_main

    return calibrate_main(argv)


def reproduce(argv: Sequence[str]) -> int:
    from study.reproduce import main as reproduce_main

    return reproduce_main(argv)


COMMANDS = {"run": run, "calibrate": calibrate, "reproduce": reproduce, "report": report, "ui": ui}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; {USAGE}", file=sys.stderr)
        return 2
    return COMMANDS[command](rest)


if __name__ == "__main__":
    sys.exit(main())
