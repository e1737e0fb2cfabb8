"""The README's first command: the quick label-noise demo (`make study`), then its report notebook on the store."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from tests_support import REPO, child_runs, execute_notebook

FLIPS = ["0.0", "0.1", "0.2"]


@pytest.mark.slow
def test_quick_label_noise_demo_collapses_and_is_reported(tmp_path):
    env = {**os.environ, "GAN_STUDY_HOME": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run([sys.executable, "-m", "study.run", "search_spaces/ring8_label_noise.yaml", "--quick"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Study summary" in proc.stdout and "mlflow ui --backend-store-uri" in proc.stdout
    assert len(proc.stdout.splitlines()) < 200, "a 12-trial study prints well under 200 lines"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parents, trials = child_runs(uri, "ring8_label_noise_quick")
    assert len(parents) == 1 and len(trials) == 12
    assert sorted(set(trials["params.remedies.label_flip.rate"])) == FLIPS
    # the calibrated claim of the quick form (docs/protocols.md, "Calibration"): without flips the generator
    # collapses in at least half its seeds, so the demo has a question to answer
    no_flip = trials[trials["params.remedies.label_flip.rate"] == "0.0"]
    assert (no_flip["tags.gan_study.outcome"] == "collapsed").sum() >= 2, no_flip["tags.gan_study.outcome"].tolist()
    summary = proc.stdout.split("Study summary", 1)[1]
    assert "logrank_p" in summary and all(f in summary for f in ("0.0", "0.1", "0.2"))
    text = execute_notebook(uri, "ring8_label_noise_quick")
    assert "remedies.label_flip.rate" in text and "median_collapse_epoch" in text and "logrank_p" in text
