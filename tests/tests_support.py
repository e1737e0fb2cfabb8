"""Helpers shared by the end-to-end tests: tiny specs, running a study in-process, reading its MLflow store."""
from __future__ import annotations

import os
from pathlib import Path

import mlflow
import nbformat
import yaml
from nbclient import NotebookClient

from study.run import main

REPO = Path(__file__).resolve().parents[1]
TINY_MLP = {"name": "mlp", "g_hidden": 16, "g_layers": 2, "d_hidden": 16, "d_layers": 2, "maxout": 2}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (just now)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_spec(name: str, **extra) -> dict:
    spec = {
        "name": name,
        "fixed": {
            "data": {"name": "ring8", "n_points": 400},
            "model": TINY_MLP,
            "remedies": {"label_flip": {"rate": 0.0}},
            "train": {"epochs": 3, "batch_size": 100, "lr": 1e-3},
            "eval": {"n_samples": 300, "grid_every": 2},
            "collapse": {"warmup": 0, "patience": 1},
        },
        "search": {"remedies.label_flip.rate": {"grid": [0.0, 0.2]}, "train.lr": {"loguniform": [1e-4, 1e-2]}},
        "trials": 2,
        "seeds": 2,
        "checkpoint": {"every": 2, "keep": 1},
        "tracking": {"experiment": name},
    }
    spec.update(extra)
    return spec


def run_study(tmp_path: Path, spec: dict, *args: str) -> tuple[int, str]:
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = main([str(path), "--tracking-uri", uri, "--storage-path", str(tmp_path / "ray"), *args])
    return code, uri


def child_runs(uri: str, experiment: str):
    from study.report import using_store

    with using_store(uri):  # the process's tracking URI stays as it was: later tests read their own stores
        runs = mlflow.search_runs(experiment_names=[experiment])
    return runs[runs["tags.gan_study.role"] == "study"], runs[runs["tags.gan_study.role"] == "trial"]


def quick_spec(spec_file: str, name: str) -> dict:
    """A shipped spec with its own quick block applied, as `--quick` applies it, renamed to `name` (experiment too)."""
    from study.spec import load_raw
    from trainables.config import deep_merge

    raw = load_raw(REPO / "search_spaces" / spec_file)
    return deep_merge(deep_merge(raw, raw.pop("quick")), {"name": name, "tracking": {"experiment": name}})


def run_arms(tmp_path: Path, spec: dict, variants: list[str]):
    """Run `spec` through Tune and MLflow to exit 0 with every trial FINISHED, seeds x variants of them; its
    store's URI, its trial runs, and per variant the collapsed count, mean final modes and mean reverse KL."""
    code, uri = run_study(tmp_path, spec)
    assert code == 0
    _, trials = child_runs(uri, spec["name"])
    assert len(trials) == len(variants) * spec["seeds"] and (trials["status"] == "FINISHED").all()
    assert sorted(trials["params.variant"]) == sorted(variants * spec["seeds"])
    arms = {v: trials[trials["params.variant"] == v] for v in variants}
    collapsed = {v: int((a["tags.gan_study.outcome"] == "collapsed").sum()) for v, a in arms.items()}
    modes = {v: float(a["metrics.eval/modes_covered"].mean()) for v, a in arms.items()}
    kl = {v: float(a["metrics.eval/kl_to_uniform"].mean()) for v, a in arms.items()}
    return uri, trials, collapsed, modes, kl


def execute_notebook(uri: str, experiment: str, notebook: str = "label_noise.ipynb") -> str:
    """Run reports/<notebook> headless against `uri`/`experiment`; the text of its outputs.

    First checks that the committed notebook is the one its jupytext source reports/<name>.py builds
    (`make notebooks-check`). The kernel gets GAN_STUDY_TRACKING_URI / GAN_STUDY_EXPERIMENT in its own
    environment (study.notebook.setup reads them), with cwd reports/; this process's environment is untouched.
    """
    import subprocess
    import sys

    check = subprocess.run([sys.executable, str(REPO / "reports" / "build.py"), "--check"],
                           check=False, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    nb = nbformat.read(REPO / "reports" / notebook, as_version=4)
    env = {**os.environ, "GAN_STUDY_TRACKING_URI": uri, "GAN_STUDY_EXPERIMENT": experiment}
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "reports")}}).execute(env=env)
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def mnist_or_skip() -> None:
    """Skip a test that needs MNIST where it cannot be obtained (no cache, no package index)."""
    import pytest

    from trainables.data.images import load_raw

    try:
        load_raw("mnist")
    except FileNotFoundError as err:
        pytest.skip(f"MNIST cannot be obtained here: {str(err).splitlines()[0]}")


def reproduce_report(spec: str, experiment: str, uri: str) -> str:
    """What `python -m study.reproduce search_spaces/SPEC.yaml --quick` prints for a test's study (exit 0 asserted)."""
    import contextlib
    import io

    from study.reproduce import main as reproduce

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert reproduce([str(REPO / "search_spaces" / f"{spec}.yaml"), "--quick", "--experiment", experiment,
                          "--tracking-uri", uri]) == 0
    return out.getvalue()
