"""The README's first command: the quick label-noise study on MNIST, then its report notebook on the store."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient
from tests_support import REPO, child_runs, execute_notebook, mnist_or_skip


@pytest.mark.slow
def test_quick_label_noise_study_and_report(tmp_path):
    mnist_or_skip()
    env = {**os.environ, "GAN_STUDY_HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run([sys.executable, "-m", "study.run", "search_spaces/label_noise.yaml", "--quick"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Study summary" in proc.stdout and "mlflow ui --backend-store-uri" in proc.stdout
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parents, trials = child_runs(uri, "label_noise_quick")
    assert len(parents) == 1 and len(trials) == 12
    assert sorted(set(trials["params.remedies.label_flip.rate"])) == ["0.0", "0.01", "0.05", "0.1", "0.15", "0.2"]
    client = MlflowClient(uri)
    for run_id in trials.run_id:
        run = client.get_run(run_id)
        assert [m.step for m in client.get_metric_history(run_id, "eval/diversity")] == list(range(1, 13))
        assert "epochs_survived" in run.data.metrics or "collapse_epoch" in run.data.metrics
        assert float(run.data.params["classifier.test_accuracy"]) > 0.98
    text = execute_notebook(uri, "label_noise_quick")
    assert "remedies.label_flip.rate" in text and "median_collapse_epoch" in text
