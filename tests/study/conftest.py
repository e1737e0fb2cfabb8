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
