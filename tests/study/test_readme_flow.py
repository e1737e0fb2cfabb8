"""The README, followed verbatim on a fresh clone: its first set-up command (`make study`: creates .venv,
installs, runs the demo), then `make report` and `make ui` as the paragraph under the commands says, with no
variable set. `make test` is the command CI itself runs (.ci/run), so it is not run again from here."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request

import pytest
from tests_support import REPO


def _setup_commands() -> list[str]:
    """The commands of the README's first ```bash block, comments stripped."""
    block = (REPO / "README.md").read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def _clean_env(home) -> dict[str, str]:
    """A user's shell: no MLflow, Ray or study variables, no virtualenv of ours on PATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "RAY_", "GAN_STUDY_", "VIRTUAL_ENV", "PYTEST", "TUNE_"))}
    env["PATH"] = ":".join(p for p in env["PATH"].split(":") if "/.venv/" not in p)
    env["GAN_STUDY_TRUST_DIR"] = str(home / "trusted")  # the one exception: keep the test's records out of ~
    return env


@pytest.mark.slow
@pytest.mark.verify
def test_the_readme_flow_on_a_fresh_clone(tmp_path):
    assert _setup_commands() == ["make study", "make test"]
    clone = tmp_path / "gan-study"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    env = _clean_env(tmp_path)
    start = time.time()
    study = subprocess.run(["make", "study"], cwd=clone, env=env, capture_output=True, text=True, timeout=3600)
    out = study.stdout + study.stderr
    assert study.returncode == 0, out[-5000:]
    print(f"make study on a fresh clone: {time.time() - start:.0f} s (venv, install and the demo)")
    assert "Study summary" in study.stdout and "logrank_p" in study.stdout
    store = clone / ".studies" / "mlflow.db"
    assert f"mlflow ui --backend-store-uri sqlite:///{store}" in study.stdout  # the store the README names

    report = subprocess.run(["make", "report"], cwd=clone, env=env, capture_output=True, text=True, timeout=1200)
    assert report.returncode == 0, (report.stdout + report.stderr)[-5000:]
    html = (clone / ".studies" / "reports" / "label_noise.html").read_text()
    assert html.count("data:image/png;base64") >= 3 and "median_collapse_epoch" in html

    [url] = re.findall(r"then (http://127\.0\.0\.1:5000/#/experiments/\d+/runs\?workflowType=machine_learning"
                       r"&viewStateShareKey=gan-study-\w+)", study.stdout)
    ui = subprocess.Popen(["make", "ui"], cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, start_new_session=True)
    try:
        for _ in range(120):
            try:
                page = urllib.request.urlopen(url.split("#", 1)[0], timeout=5).read().decode()
                break
            except OSError:
                time.sleep(1)
        else:
            raise AssertionError("make ui: no MLflow UI on port 5000 within 120 s")
        assert "MLflow" in page
        exp_id = url.split("/experiments/", 1)[1].split("/", 1)[0]
        search = urllib.request.Request("http://127.0.0.1:5000/api/2.0/mlflow/runs/search", method="POST",
                                        data=json.dumps({"experiment_ids": [exp_id], "max_results": 50}).encode(),
                                        headers={"Content-Type": "application/json"})
        runs = json.loads(urllib.request.urlopen(search, timeout=10).read())["runs"]
        assert len(runs) == 13  # the parent and the demo's 12 trials: what the printed URL shows
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.communicate(timeout=30)
