"""study.tracking: what the study prints about its store, and who writes to a basic-auth server."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import yaml
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client
from mlflow.tracking import MlflowClient

from tests.tests_support import REPO, child_runs, free_port, run_study, tiny_spec


def test_the_ui_url_opens_the_runs_table_of_the_store_the_study_wrote():
    from study.tracking import ui_url

    assert ui_url("sqlite:////x/mlflow.db", "3") == "http://127.0.0.1:5000/#/experiments/3?workflowType=machine_learning"
    assert ui_url("http://10.0.0.2:5000/", "7") == "http://10.0.0.2:5000/#/experiments/7?workflowType=machine_learning"
    assert ui_url("sqlite:////x/mlflow.db", "3", view="gan-study-ab") == (  # the runs route applies a shared view
        "http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning&viewStateShareKey=gan-study-ab")


def test_the_study_view_shows_the_studys_columns_and_is_found_on_its_experiment(tmp_path):
    """The view a study shares: the UI's column ids of its searched keys, seed, outcome and verdict metrics, as the
    plain JSON MLflow's UI loads; one key per set of columns; stored as the experiment tag the UI reads."""
    import json

    from mlflow import MlflowClient

    from study.tracking import VIEW_TAG, experiment_id, share_study_view, study_view, views_of

    key, text = study_view(["remedies.label_flip.rate", "train.lr"])
    columns = json.loads(text)["selectedColumns"]
    assert columns[:4] == ["params.`search.remedies.label_flip.rate`", "params.`search.train.lr`", "params.`seed`",
                           "tags.`gan_study.outcome`"]
    assert {"metrics.`collapse_epoch`", "metrics.`censor_epoch`", "metrics.`eval/diversity`",
            "metrics.`eval/hq_fraction`", "metrics.`outcome_code`"} <= set(columns)
    assert key == study_view(["remedies.label_flip.rate", "train.lr"])[0] != study_view(["train.lr"])[0]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = experiment_id(client, "views")
    assert views_of(client.get_experiment(exp).tags) == []
    assert share_study_view(client, exp, ["remedies.label_flip.rate", "train.lr"]) == key
    tags = client.get_experiment(exp).tags
    assert views_of(tags) == [key] and json.loads(tags[VIEW_TAG + key]) == json.loads(text)


def test_a_password_in_the_store_uri_is_never_printed():
    from study.tracking import shown, ui_command

    assert shown("postgresql://gan:s3cret@db:5432/mlflow") == "postgresql://gan:***@db:5432/mlflow"
    assert "s3cret" not in ui_command("mysql+pymysql://gan:s3cret@db/mlflow")
    assert shown("sqlite:////tmp/m.db") == "sqlite:////tmp/m.db" and shown("http://h:5000") == "http://h:5000"


def test_no_trial_user_means_no_grant_and_the_driver_credentials():
    from study.tracking import trial_credentials

    assert trial_credentials("sqlite:////x/mlflow.db", "1") == {}
    assert trial_credentials("http://127.0.0.1:1", "1") == {}  # no GAN_STUDY_TRIAL_*: nothing is asked of the server


@pytest.mark.slow
@pytest.mark.verify  # 450 s in CI (2026-12-04); CI keeps the trial-user preflight, verify-cluster the cluster flow
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


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="no headless Chromium (Debian: apt-get install chromium)")
def test_the_printed_url_opens_the_runs_table_in_a_real_browser(ray_local, tmp_path, capsys):
    """The URL the study prints, rendered by headless Chromium against `mlflow server` on the study's store,
    is the runs table holding the study's parent run (MLflow 3.17 opens a GenAI overview without
    workflowType=machine_learning), in the study's shared view: its columns are the searched key, the outcome and
    the verdict's metrics; a trial's run page shows its name, its searched key and its metrics."""
    spec = tiny_spec("ui_check", search={"remedies.label_flip.rate": {"grid": [0.0, 0.1]}}, seeds=1)
    spec.pop("trials")
    code, uri = run_study(tmp_path, spec)
    out = capsys.readouterr().out
    assert code == 0
    printed = out.rsplit("then ", 1)[1].strip()  # "Open the UI: mlflow ui ..., then http://127.0.0.1:5000/#/..."
    assert printed.startswith("http://127.0.0.1:5000/#/experiments/") and "workflowType=machine_learning" in printed
    assert "/runs?" in printed and "&viewStateShareKey=gan-study-" in printed
    parents, trials = child_runs(uri, "ui_check")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--host",
                               "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    exp = printed.split("/experiments/", 1)[1].split("/", 1)[0]
    child = trials.iloc[0]
    try:
        _wait_for(f"http://127.0.0.1:{port}/health")
        dom = _dom(printed.replace(":5000", f":{port}"), tmp_path)
        run_page = _dom(f"http://127.0.0.1:{port}/#/experiments/{exp}/runs/{child.run_id}", tmp_path)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "Run Name" in dom and "You're viewing a shared view" in dom, dom[-3000:]
    assert parents["tags.mlflow.runName"].iloc[0] in dom  # the study's parent run is listed, its trials under it
    for column in ("search.remedies.label_flip.rate", "gan_study.outcome", "eval/diversity", "eval/hq_fraction",
                   "outcome_code", "censor_epoch"):  # the study's columns, not the UI's default ones
        assert any(f'col-id="{kind}.`{column}`"' in dom for kind in ("params", "metrics", "tags")), column
    assert 'col-id="attributes.`Source`"' not in dom
    # a trial's own page: named by its configuration and seed, with the searched key and the epoch metrics
    assert child["tags.mlflow.runName"] in run_page, run_page[-3000:]
    assert "remedies.label_flip.rate" in run_page and "eval/diversity" in run_page


def _dom(url: str, tmp_path) -> str:
    """The page at `url` as headless Chromium renders it (20 s of virtual time for the UI's requests)."""
    return subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=2400,1000",
                           "--virtual-time-budget=20000", "--dump-dom", url],
                          capture_output=True, text=True, timeout=180).stdout


def _wait_for(url: str, limit: float = 120.0) -> None:
    import time
    import urllib.request

    start = time.monotonic()
    while time.monotonic() - start < limit:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{url} did not answer within {limit:g} s")


@pytest.mark.slow
@pytest.mark.verify  # a basic-auth server and two study subprocesses, as the trial-user test above
@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl to make the test CA")
def test_a_study_reaches_the_server_through_tls_with_the_servers_ca(tmp_path, monkeypatch, basic_auth_server):
    """cluster/README.md, "TLS in front of the MLflow server": the basic-auth server on the loopback behind a TLS
    proxy whose certificate a private CA signed. Without MLFLOW_TRACKING_SERVER_CERT_PATH the study is refused
    before Ray starts (exit 2, one line); with it, the preflight, the driver and the trials all log through TLS."""
    from tests.tls_proxy import make_certificates, serve

    uri, env = basic_auth_server
    ca, cert, key = make_certificates(tmp_path)
    port = free_port()
    proxy = serve(port, int(uri.rsplit(":", 1)[1]), cert, key)
    https = f"https://127.0.0.1:{port}"
    spec = tiny_spec("over_tls", search={"remedies.label_flip.rate": {"grid": [0.0, 0.1]}}, seeds=1)
    spec.pop("trials")
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    cmd = [sys.executable, "-m", "study.run", str(path), "--tracking-uri", https, "--storage-path",
           str(tmp_path / "ray")]
    try:
        refused = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert refused.returncode == 2 and "certificate verify failed" in refused.stderr, refused.stderr[-2000:]
        assert len(refused.stderr.strip().splitlines()) == 1 and https in refused.stderr
        assert "Traceback" not in refused.stderr and not (tmp_path / "ray").exists()

        out = subprocess.run(cmd, cwd=REPO, env={**env, "MLFLOW_TRACKING_SERVER_CERT_PATH": str(ca)},
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
        assert https in out.stdout  # the store the study names is the TLS address
        for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            monkeypatch.setenv(k, env[k])
        monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(ca))
        _, trials = child_runs(https, "over_tls")
        assert len(trials) == 2 and (trials.status == "FINISHED").all()
        assert set(trials["tags.gan_study.mlflow_user"]) == {"trials"}  # the trials, too, went through the proxy
    finally:
        proxy.shutdown()
