"""An interrupted study (driver stopped with Ctrl-C) resumes with --resume: same trials, no duplicates."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient
from tests_support import child_runs, tiny_spec

from study.run import main

REPO = Path(__file__).resolve().parents[2]


def _spec(name: str) -> dict:
    spec = tiny_spec(name, search={"remedies.label_flip.rate": {"grid": [0.0, 0.1, 0.2]}}, seeds=2)
    spec.pop("trials")
    spec["fixed"]["data"]["n_points"] = 3000
    spec["fixed"]["train"]["epochs"] = 5
    spec["checkpoint"] = {"every": 1, "keep": 2}
    return spec


def _final(uri: str, experiment: str) -> dict:
    _, trials = child_runs(uri, experiment)
    client = MlflowClient(uri)
    out = {}
    for _, row in trials.iterrows():
        key = (row["params.remedies.label_flip.rate"], row["params.seed"])
        assert key not in out, f"duplicate MLflow run for {key}"
        steps = [m.step for m in client.get_metric_history(row.run_id, "eval/diversity")]
        assert steps == sorted(set(steps)), f"epochs logged twice in {key}: {steps}"
        out[key] = (row.status, row["tags.gan_study.outcome"], steps, row["metrics.eval/diversity"])
    return out


def _wait_for_finished_trials(uri: str, experiment: str, n: int, proc: subprocess.Popen, limit: float = 240) -> None:
    start = time.time()
    while time.time() - start < limit and proc.poll() is None:
        try:
            _, trials = child_runs(uri, experiment)
            if (trials.status == "FINISHED").sum() >= n if len(trials) else False:
                return
        except Exception:
            pass
        time.sleep(1)
    raise AssertionError("the study did not finish the first trials in time")


@pytest.mark.slow
def test_interrupted_study_resumes_without_losing_or_duplicating(ray_local, tmp_path):
    spec = _spec("tiny_resume")
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = [str(path), "--tracking-uri", uri, "--storage-path", str(tmp_path / "ray")]
    proc = subprocess.Popen([sys.executable, "-m", "study.run", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    _wait_for_finished_trials(uri, "tiny_resume", 2, proc)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-3000:]
    assert "--resume" in out
    interrupted = _final(uri, "tiny_resume")
    assert 2 <= len(interrupted) < 6 or any(v[1] in ("running", "stopped") for v in interrupted.values())

    assert main([*args, "--resume"]) == 0
    resumed = _final(uri, "tiny_resume")

    straight_uri = f"sqlite:///{tmp_path / 'straight.db'}"
    assert main([str(path), "--tracking-uri", straight_uri, "--storage-path", str(tmp_path / "ray2")]) == 0
    straight = _final(straight_uri, "tiny_resume")
    assert set(resumed) == set(straight) and len(resumed) == 6
    for key, (status, outcome, steps, diversity) in resumed.items():
        assert status == "FINISHED" and outcome in ("collapsed", "censored", "never_diverse")
        assert (outcome, steps, diversity) == straight[key][1:], key  # same metrics as the uninterrupted run
