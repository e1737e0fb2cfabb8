"""Load: 200 tiny trials, 8 at a time, against a SQLite store and against the basic-auth MLflow server of
cluster/start_mlflow.sh. Every trial has exactly one FINISHED run with every epoch's metrics; no write is lost
to "database is locked". Prints the trials per minute and the store's write rate (README, Performance)."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.tests_support import REPO, child_runs, tiny_spec

EPOCHS, SEEDS, RATES = 2, 8, [round(0.01 * i, 2) for i in range(25)]  # 25 configurations x 8 seeds = 200 trials


def _spec(tmp_path: Path) -> Path:
    spec = tiny_spec("load", search={"remedies.label_flip.rate": {"grid": RATES}}, seeds=SEEDS, max_concurrent=8,
                     resources={"cpu": 0.25})  # 8 trial slots on a 2-CPU Ray
    spec.pop("trials")
    spec["fixed"]["train"]["epochs"] = EPOCHS
    path = tmp_path / "load.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _study(tmp_path: Path, uri: str, env: dict) -> float:
    """Run the study in a subprocess (its own Ray, workers inheriting `env`); its wall seconds."""
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "study.run", str(_spec(tmp_path)), "--tracking-uri", uri,
                          "--storage-path", str(tmp_path / "ray")], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=1800)
    wall = time.monotonic() - start
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert "database is locked" not in out.stdout + out.stderr
    return wall


def _check(uri: str, db: Path, wall: float, label: str) -> None:
    parents, trials = child_runs(uri, "load")
    assert len(parents) == 1 and len(trials) == len(RATES) * SEEDS
    assert (trials.status == "FINISHED").all()
    assert len(set(zip(trials["params.remedies.label_flip.rate"], trials["params.seed"]))) == len(trials)
    client = MlflowClient(uri)
    for run_id in trials.run_id:
        assert [m.step for m in client.get_metric_history(run_id, "eval/diversity")] == list(range(1, EPOCHS + 1))
    with sqlite3.connect(db) as con:
        rows = sum(con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("metrics", "params", "tags"))
    print(f"\nload ({label}): {len(trials)} trials in {wall:.0f} s = {len(trials) / wall * 60:.0f} trials/min; "
          f"{rows} metric/param/tag rows = {rows / wall:.0f} writes/s")


@pytest.mark.slow
@pytest.mark.verify  # 276 s in CI (2026-12-04): make verify, with the server load test
def test_200_trials_on_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_"))}
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _check(uri, tmp_path / "mlflow.db", _study(tmp_path, uri, env), "SQLite")


@pytest.mark.slow
@pytest.mark.verify  # about 14 minutes on 2 cores: make verify, not CI
def test_200_trials_on_the_basic_auth_server(tmp_path, monkeypatch, basic_auth_server):
    uri, env = basic_auth_server
    wall = _study(tmp_path, uri, env)
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):  # this process reads the runs back
        monkeypatch.setenv(key, env[key])
    _check(uri, tmp_path / "server" / "mlflow.db", wall, "basic-auth server")
