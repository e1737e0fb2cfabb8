"""End to end: a tiny study through real Ray Tune + Optuna + MLflow, then the report notebook on its store."""
from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from tests_support import child_runs, execute_notebook, run_study, tiny_spec

from trainables import names


@pytest.mark.slow
def test_tiny_study_end_to_end(ray_local, tmp_path, capsys, monkeypatch):
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
        assert client.list_artifacts(row.run_id, "d_surface")  # D surface and gradient field, 2D data
        # named by configuration and seed; the outcome also as a number; sample grids as images at their epoch
        rate = {"0.0": "0", "0.2": "0.2"}[row["params.remedies.label_flip.rate"]]
        assert row["tags.mlflow.runName"].startswith(f"remedies.label_flip.rate={rate} train.lr=")
        assert row["tags.mlflow.runName"].endswith(f" seed={row['params.seed']}")
        assert row[f"metrics.{names.OUTCOME_CODE}"] == names.OUTCOMES.index(row["tags.gan_study.outcome"])
        images = {a.path for a in client.list_artifacts(row.run_id, "images")}
        assert {f"samples+step+{e}" for e in (2, 3)} <= {p.split("/")[1].split("+timestamp")[0] for p in images}
    assert trials["tags.mlflow.runName"].nunique() == 4
    assert set(trials["tags.gan_study.device"]) == {"cpu"}  # no GPU given by Ray: the trial says it ran on the CPU
    artifacts = {a.path for a in client.list_artifacts(parents.run_id.iloc[0])}
    assert {"summary.txt", "summary.csv", "spec"} <= artifacts
    parent = client.get_run(parents.run_id.iloc[0])
    summary = client.download_artifacts(parent.info.run_id, "summary.txt", str(tmp_path))
    assert Path(summary).read_text() in parent.data.tags[names.NOTE]  # the summary is the parent's description
    arms = {k: v for k, v in parent.data.metrics.items() if k.startswith(names.ARM_METRIC)}
    assert {k.split("/")[1].split()[1] for k in arms} == {"0", "0.2"} and all(
        v == 2 for k, v in arms.items() if k.endswith("/seeds"))
    text = execute_notebook(uri, "tiny_e2e")
    assert "label-flip rate -> epochs until collapse" in text.lower() or "median_collapse_epoch" in text
    # `make report` / `gan-study report`: nbconvert executes the notebook to HTML under $GAN_STUDY_HOME/reports
    from study.cli import main as cli

    monkeypatch.setenv("GAN_STUDY_HOME", str(tmp_path / "home"))
    assert cli(["report", "label_noise", "--experiment", "tiny_e2e", "--tracking-uri", uri]) == 0
    html = (tmp_path / "home" / "reports" / "label_noise.html").read_text()
    assert "tiny_e2e" in html and "data:image/png;base64" in html


@pytest.mark.slow
def test_list_and_remedy_set_choices_reach_the_trial_as_written(ray_local, tmp_path):
    """Categorical choices reach Optuna as indices and the trial as the spec wrote them (lists, remedy sets)."""
    options = ["none", "instance_noise+label_smoothing", ["r1"]]
    spec = tiny_spec("tiny_choices", seeds=1, trials=4, search={
        "train.betas": {"choice": [[0.5, 0.9], [0.5, 0.999]]}, "remedies": {"choice": options},
        "remedies.instance_noise.std": {"choice": [0.05, 0.2]}})
    spec["fixed"]["train"]["epochs"] = 1
    code, uri = run_study(tmp_path, spec)
    assert code == 0
    _, trials = child_runs(uri, "tiny_choices")
    assert len(trials) == 4 and (trials.status == "FINISHED").all()
    written = {"none": set(), "instance_noise+label_smoothing": {"instance_noise", "label_smoothing"}, "r1": {"r1"}}
    for _, row in trials.iterrows():
        assert row["params.train.betas"] in ("[0.5, 0.9]", "[0.5, 0.999]")  # the trial's own config
        assert row["params.search.train.betas"] == row["params.train.betas"]
        applied = {c.split(".")[2] for c in trials.columns if c.startswith("params.remedies.") and not pd_isna(row[c])}
        assert applied - {"label_flip"} == written[row["params.search.remedies"]]
        if "instance_noise" in applied:
            assert row["params.remedies.instance_noise.std"] in ("0.05", "0.2")


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


@pytest.mark.slow
def test_crashing_trial_is_failed_in_mlflow_and_the_study_goes_on(ray_local, tmp_path):
    spec = tiny_spec("tiny_crash", search={"data.image_size": {"grid": [8, 6]}}, seeds=1)
    spec.pop("trials")
    spec["fixed"].update(data={"name": "digits", "image_size": 8},
                         model={"name": "dcgan", "nz": 8, "ngf": 4, "ndf": 4}, eval={"n_samples": 200})
    spec["fixed"]["train"]["epochs"] = 1
    code, uri = run_study(tmp_path, spec)
    assert code == 3  # one trial of two failed: the study still completes, and its exit code says so
    _, trials = child_runs(uri, "tiny_crash")
    by_size = {r["params.data.image_size"]: r for _, r in trials.iterrows()}
    assert by_size["6"]["status"] == "FAILED" and by_size["6"]["tags.gan_study.outcome"] == "failed"
    assert "image_size must be" in by_size["6"]["tags.gan_study.error"]
    assert by_size["8"]["status"] == "FINISHED"
