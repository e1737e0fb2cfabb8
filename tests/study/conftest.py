"""Fixtures of the study tests."""
from __future__ import annotations

import mlflow
import pytest


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch):
    """A fresh SQLite MLflow store for one test, set as the tracking URI (and unset after)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = "sqlite:///" + str(tmp_path / "m.db")
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


@pytest.fixture
def basic_auth_server(tmp_path):
    """cluster/start_mlflow.sh on 127.0.0.1: the basic-auth server with an admin and a non-admin trial user.
    -> (uri, env: the admin's and the trial user's credentials, no RAY_/MLFLOW_ variables of this process)."""
    import os
    import secrets
    import subprocess
    import sys
    from pathlib import Path

    from tests.tests_support import REPO, free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_"))}
    env.update(MLFLOW_TRACKING_USERNAME="gan", MLFLOW_TRACKING_PASSWORD=secrets.token_urlsafe(12),
               GAN_STUDY_TRIAL_USERNAME="trials", GAN_STUDY_TRIAL_PASSWORD=secrets.token_urlsafe(12),
               GAN_STUDY_HEAD_IP="127.0.0.1", GAN_STUDY_MLFLOW_PORT=str(port),
               GAN_STUDY_MLFLOW_ROOT=str(tmp_path / "server"), PATH=f"{Path(sys.executable).parent}:{env['PATH']}")
    out = subprocess.run(["bash", str(REPO / "cluster" / "start_mlflow.sh")], env=env, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert "trial user 'trials' created" in out.stdout
    yield f"http://127.0.0.1:{port}", env
    subprocess.run(["kill", (tmp_path / "server" / "server.pid").read_text().strip()], check=False)
