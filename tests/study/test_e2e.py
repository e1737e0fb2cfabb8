"""End to end: a tiny study through real Ray Tune + Optuna + MLflow, then the report notebook on its store."""
from __future__ import annotations

import os
from pathlib import Path

import mlflow
import nbformat
import pytest
import yaml
from mlflow.tracking import MlflowClient
from nbclient import NotebookClient

from study.run import main

REPO = Path(__file__).resolve().parents[2]
TINY_MLP = {"name": "mlp", "g_hidden": 16, "g_layers": 2, "d_hidden": 16, "d_layers": 2, "maxout": 2}


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
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=[experiment])
    return runs[runs["tags.gan_study.role"] == "study"], runs[runs["tags.gan_study.role"] == "trial"]


def execute_notebook(uri: str, experiment: str) -> str:
    nb = nbformat.read(REPO / "reports" / "label_noise.ipynb", as_version=4)
    os.environ.update(GAN_STUDY_TRACKING_URI=uri, GAN_STUDY_EXPERIMENT=experiment)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO / "reports")}}).execute()
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_tiny_study_end_to_end(ray_local, tmp_path, capsys):
    code, uri = run_study(tmp_path, tiny_spec("tiny_e2e"))
    out = capsys.readouterr().out
    assert code == 0
    assert "Study summary" in out and "remedies.label_flip.rate" in out and "mlflow ui --backend-store-uri" in out
    parents, trials = child_runs(uri, "tiny_e2e")
    assert len(parents) == 1 and len(trials) == 4
    assert set(trials["tags.mlflow.parentRunId"]) == {parents.run_id.iloc[0]}
    assert sorted(trials["params.seed"]) == ["0", "0", "1", "1"]
    assert set(trials["params.remedies.label_flip.rate"]) == {"0.0", "0.2"}
    assert trials["params.train.lr"].nunique() == 2  # Optuna sampled one learning rate per configuration
    client = MlflowClient(uri)
    for _, row in trials.iterrows():
        history = client.get_metric_history(row.run_id, "eval/diversity")
        assert [m.step for m in history] == list(range(1, len(history) + 1)) and history
        assert not pd_isna(row.get("metrics.epochs_survived")) or not pd_isna(row.get("metrics.collapse_epoch"))
        assert row["tags.gan_study.outcome"] in ("collapsed", "censored", "never_diverse")
        assert row.status == "FINISHED"
        assert any(a.path.startswith("samples/") for a in client.list_artifacts(row.run_id, "samples"))
    artifacts = {a.path for a in client.list_artifacts(parents.run_id.iloc[0])}
    assert {"summary.txt", "summary.csv", "spec"} <= artifacts
    text = execute_notebook(uri, "tiny_e2e")
    assert "label-flip rate -> epochs until collapse" in text.lower() or "median_collapse_epoch" in text


def pd_isna(value) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


@pytest.mark.slow
def test_diverging_trial_is_recorded_and_the_study_goes_on(ray_local, tmp_path):
    spec = tiny_spec("tiny_nan", search={"train.lr": {"grid": [1e-3, 1e30]}}, trials=None, seeds=1)
    spec["fixed"]["train"]["epochs"] = 2
    spec.pop("trials")
    code, uri = run_study(tmp_path, spec)
    assert code == 0
    _, trials = child_runs(uri, "tiny_nan")
    outcomes = dict(zip(trials["params.train.lr"], trials["tags.gan_study.outcome"]))
    assert outcomes["1e+30"] == "diverged" and outcomes["0.001"] != "diverged"
    bad = trials[trials["params.train.lr"] == "1e+30"].iloc[0]
    assert "loss is nan" in bad["tags.gan_study.error"]


@pytest.mark.slow
def test_stop_on_collapse_ends_collapsed_trials_early(ray_local, tmp_path):
    spec = tiny_spec("tiny_stop", scheduler={"name": "stop-on-collapse"}, seeds=2)
    spec["fixed"]["train"]["epochs"] = 6
    # a collapse metric that is good at epoch 1 (4 G steps) and bad from epoch 2 (8 > 5): collapse at 2, surely
    spec["fixed"]["collapse"] = {"metric": "compute/g_steps", "threshold": 5, "direction": "above", "patience": 1}
    code, uri = run_study(tmp_path, spec)
    assert code == 0
    _, trials = child_runs(uri, "tiny_stop")
    client = MlflowClient(uri)
    assert len(trials) == 4
    for run_id in trials.run_id:
        steps = [m.step for m in client.get_metric_history(run_id, "eval/diversity")]
        run = client.get_run(run_id)
        assert run.data.tags["gan_study.outcome"] == "collapsed"
        assert run.data.metrics["collapse_epoch"] == 2 and max(steps) == 2  # the other 4 epochs were saved
