"""study.tracking: what the study prints about its store, and who writes to a basic-auth server."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client
from mlflow.tracking import MlflowClient

from tests.tests_support import REPO, child_runs, tiny_spec


def test_the_ui_url_opens_the_runs_table_of_the_store_the_study_wrote():
    from study.tracking import ui_url

    assert ui_url("sqlite:////x/mlflow.db", "3") == "http://127.0.0.1:5000/#/experiments/3?workflowType=machine_learning"
    assert ui_url("http://10.0.0.2:5000/", "7") == "http://10.0.0.2:5000/#/experiments/7?workflowType=machine_learning"


def test_no_trial_user_means_no_grant_and_the_driver_credentials():
    from study.tracking import trial_credentials

    assert trial_credentials("sqlite:////x/mlflow.db", "1") == {}
    assert trial_credentials("http://127.0.0.1:1", "1") == {}  # no GAN_STUDY_TRIAL_*: nothing is asked of the server


@pytest.mark.slow
def test_trials_log_as_the_non_admin_trial_user(tmp_path, monkeypatch, basic_auth_server):
    """The driver holds the admin credentials; the trials get only the trial user's, which may write this
    study's runs and nothing else; the server's files are private to its user."""
    uri, env = basic_auth_server
    spec = tiny_spec("least_privilege", search={"remedies.label_flip.rate": {"grid": [0.0, 0.1]}}, seeds=1)
    spec.pop("trials")
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = subprocess.run([sys.executable, "-m", "study.run", str(path), "--tracking-uri", uri, "--storage-path",
                          str(tmp_path / "ray")], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]  # its own Ray: the trials' runtime_env applies
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(key, env[key])
    parents, trials = child_runs(uri, "least_privilege")
    assert len(trials) == 2 and (trials.status == "FINISHED").all()
    assert set(trials["tags.gan_study.mlflow_user"]) == {"trials"}

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "trials")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", env["GAN_STUDY_TRIAL_PASSWORD"])
    as_trials = MlflowClient(uri)
    exp = as_trials.get_experiment_by_name("least_privilege").experiment_id
    as_trials.set_tag(trials.run_id.iloc[0], "probe", "1")  # EDIT on the study's experiment
    with pytest.raises(MlflowException, match="403"):
        as_trials.delete_experiment(exp)  # not MANAGE
    with pytest.raises(MlflowException, match="403"):
        get_app_client("basic-auth", tracking_uri=uri).create_user("intruder", "x" * 16)  # not admin
    loose = [str(p) for p in (tmp_path / "server").rglob("*") if p.stat().st_mode & 0o077]
    assert not loose, loose[:5]
