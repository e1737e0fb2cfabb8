"""GANTrainable (trainables/tune.py) in this process, with real torch, a real SQLite MLflow store and the Ray of
the test session: how a trial's MLflow runs end."""
from __future__ import annotations

import pytest
from mlflow import MlflowClient
from ray import tune
from tests_support import tiny_spec

from study.space import TrialBuilder
from study.spec import validate
from study.tracking import experiment_id
from trainables.tune import GANTrainable


@pytest.fixture
def trainable(ray_local, tmp_path):
    """A 3-epoch ring8 trial of one seed, its store tmp_path/mlflow.db -> (trainable, client, experiment id)."""
    raw = tiny_spec("tiny_finish", search={"remedies.label_flip.rate": {"grid": [0.0]}}, seeds=1)
    raw.pop("trials")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp = experiment_id(client, "tiny_finish")
    cls = tune.with_parameters(GANTrainable, build=TrialBuilder(validate(raw)), tracking_uri=uri,
                               experiment_id=exp, parent_run_id=client.create_run(exp).info.run_id)
    t = cls(config={"remedies.label_flip.rate": 0.0})
    yield t, client, exp
    t.stop()


def _trial_runs(client: MlflowClient, exp: str) -> list[tuple[str, str]]:
    runs = client.search_runs([exp], "tags.gan_study.role = 'trial'")
    return [(r.info.status, r.data.tags["gan_study.outcome"]) for r in runs]


def test_the_step_that_reports_done_has_ended_the_run(trainable):
    """Tune records a trial as finished once a step reports done, and a resume never reruns it: so that step
    ends the MLflow run itself (status and outcome), before Tune's stop/cleanup, which a store fault could skip."""
    t, client, exp = trainable
    for _ in range(2):
        assert not t.train()["done"]
        assert _trial_runs(client, exp) == [("RUNNING", "running")]
    result = t.train()
    assert result["done"] and result["epoch"] == 3
    [(status, outcome)] = _trial_runs(client, exp)
    assert status == "FINISHED" and outcome == result["outcome"] != "running"


def test_a_run_that_cannot_be_ended_errs_the_step_not_the_study(trainable, tmp_path):
    """The store gone as the run is ended: from the step that reports done (strict) it raises, so Tune records an
    errored trial that --resume restores and ends; from a failing or stopped trial it is left for the resume."""
    t, client, exp = trainable
    t.train()
    [child] = t.children
    (tmp_path / "mlflow.db").rename(tmp_path / "away.db")
    with pytest.raises(FileNotFoundError, match="is gone"):
        t._finish(child, "FINISHED", "censored", strict=True)
    assert not child.finished and not (tmp_path / "mlflow.db").exists()
    t._finish(child, "FAILED", "failed")
    assert child.finished and not (tmp_path / "mlflow.db").exists()
    (tmp_path / "away.db").rename(tmp_path / "mlflow.db")
    assert _trial_runs(client, exp) == [("RUNNING", "running")]  # nothing was ended while the store was away
