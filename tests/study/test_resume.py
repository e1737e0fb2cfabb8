"""An interrupted study (driver stopped with Ctrl-C) resumes with --resume: same trials, no duplicates."""
from __future__ import annotations

import os
import pickle
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


def _start(tmp_path, spec: dict, uri: str | None = None, env: dict | None = None):
    """Write `spec` and start its study in a subprocess -> (spec path, store URI, the study's args, the process)."""
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    uri = uri or f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = [str(path), "--tracking-uri", uri, "--storage-path", str(tmp_path / "ray")]
    proc = subprocess.Popen([sys.executable, "-m", "study.run", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**(env or os.environ), "PYTHONUNBUFFERED": "1"})
    return path, uri, args, proc


def _as_uninterrupted(tmp_path, path, name: str, resumed: dict) -> None:
    """The same spec run straight through gives the same trials with the same metrics as `resumed`."""
    straight_uri = f"sqlite:///{tmp_path / 'straight.db'}"
    assert main([str(path), "--tracking-uri", straight_uri, "--storage-path", str(tmp_path / "ray2")]) == 0
    straight = _final(straight_uri, name)
    assert set(resumed) == set(straight) and len(resumed) == 6
    for key, (status, outcome, steps, diversity) in resumed.items():
        assert status == "FINISHED" and outcome in ("collapsed", "censored", "never_diverse"), key
        assert (outcome, steps, diversity) == straight[key][1:], key  # the store an uninterrupted run gives


@pytest.mark.slow
def test_interrupted_study_resumes_without_losing_or_duplicating(ray_local, tmp_path, capsys):
    """Ctrl-C mid-study, then --resume: every trial once, the same metrics as an uninterrupted run; and before
    that, a searcher pickle replaced in storage is refused (exit 2, the file named, its code never run)."""
    path, uri, args, proc = _start(tmp_path, _spec("tiny_resume"))
    _wait_for_finished_trials(uri, "tiny_resume", 2, proc)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-3000:]
    assert "--resume" in out
    interrupted = _final(uri, "tiny_resume")
    assert 2 <= len(interrupted) < 6 or any(v[1] in ("running", "stopped") for v in interrupted.values())

    _a_tampered_state_file_is_refused(tmp_path / "ray" / "tiny_resume", args, capsys)
    assert main([*args, "--resume"]) == 0
    _as_uninterrupted(tmp_path, path, "tiny_resume", _final(uri, "tiny_resume"))


@pytest.mark.slow
@pytest.mark.parametrize("seeds_per_trial", [pytest.param(1, marks=pytest.mark.verify), 2],
                         ids=["alone", "seed_batched"])  # CI: the seed-batched kill (same path); verify: both
def test_a_killed_driver_resumes_every_trial_once(ray_local, tmp_path, seeds_per_trial):
    """SIGKILL of the driver (no Tune shutdown, MLflow runs left RUNNING) once two seed runs have finished:
    --resume accepts the state it had recorded (study/seal.py) and ends every seed of every trial exactly once,
    each epoch logged once, with the metrics of an uninterrupted run; alone, and with two seeds a trial trained
    as one seed-batched model (tests/study/test_seed_groups.py)."""
    name = f"tiny_killed_{seeds_per_trial}"
    spec = _spec(name)
    if seeds_per_trial > 1:
        spec.update(seeds_per_trial=seeds_per_trial, resources={"cpu": 0.5})
    path, uri, args, proc = _start(tmp_path, spec)
    _wait_for_finished_trials(uri, name, 2, proc)
    proc.kill()
    proc.communicate(timeout=60)
    assert main([*args, "--resume"]) == 0
    final = _final(uri, name)
    assert all(steps == list(range(1, 6)) for _, _, steps, _ in final.values()), final
    _as_uninterrupted(tmp_path, path, name, final)


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _a_tampered_state_file_is_refused(storage: Path, args: list[str], capsys) -> None:
    """Replace the run's searcher state (a pickle Tune loads on restore) with one that runs a command: --resume
    stops before Ray with exit code 2 naming it and nothing runs; the study's own bytes put back, it resumes."""
    [state] = storage.glob("*/searcher-state-*.pkl")
    marker, original = storage / "pwned", state.read_bytes()
    state.write_bytes(pickle.dumps(_Payload(marker)))
    capsys.readouterr()
    assert main([*args, "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --resume: ") and f"{state.name} is not a file this study wrote" in err, err
    assert "\n" not in err and not marker.exists()
    state.write_bytes(original)


def _study_with_a_store_fault(tmp_path, name: str, fault, mend, uri: str | None = None,
                              env: dict | None = None) -> tuple[str, list[str]]:
    """Start a study (store: `uri`, else tmp_path/mlflow.db), apply `fault(store)` once a trial finished, expect
    exit code 4; `mend(store, what fault returned)`; -> the study's output and its args (for the resume)."""
    spec = _spec(name)
    spec["fixed"]["train"]["epochs"] = 8
    store = tmp_path / "mlflow.db"
    _, uri, args, proc = _start(tmp_path, spec, uri, env)
    _wait_for_finished_trials(uri, name, 1, proc)
    held = fault(store)
    try:
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 4, out[-3000:]
    finally:
        mend(store, held)
    assert "--resume" in out.rsplit("error:", 1)[1] and "Study summary" not in out
    return out, args


def _all_finished_once(uri: str, name: str) -> None:
    final = _final(uri, name)
    assert len(final) == 6
    for key, (status, outcome, steps, _) in final.items():
        assert status == "FINISHED" and outcome in ("collapsed", "censored", "never_diverse"), key
        assert all(isinstance(v, str) for v in key), f"a run without its params: {key}"
        assert steps == list(range(1, 9)), (key, steps)


@pytest.mark.slow  # about 60 s; a trial ending while the store is gone: tests/trainables/test_tune.py
def test_a_store_moved_away_mid_study_stops_it_and_resume_completes_it(ray_local, tmp_path):
    """The SQLite store disappears after the first trials: the study stops with exit code 4 and one error naming
    the file, creates no new empty store, and once the file is back, --resume ends every trial exactly once."""
    away = tmp_path / "mlflow.db.away"
    store = tmp_path / "mlflow.db"
    out, args = _study_with_a_store_fault(tmp_path, "tiny_store_gone", lambda db: db.rename(away),
                                          lambda db, _: None)
    assert f"error: the MLflow store failed during the study: the SQLite file {store} is gone" in out
    assert not store.exists()  # no trial and not the driver started a new empty store
    away.rename(store)
    assert main([*args, "--resume"]) == 0
    _all_finished_once(f"sqlite:///{store}", "tiny_store_gone")


@pytest.mark.slow
@pytest.mark.verify  # 164 s; CI keeps the store-moved fault, which takes the same exit path
def test_a_store_locked_mid_study_stops_it_and_resume_completes_it(ray_local, tmp_path):
    """Another process holds the SQLite store's write lock for good: trials give up after their retries, the
    study stops with exit code 4 naming the lock; released, --resume ends every trial exactly once."""
    import sqlite3

    def lock(db):
        holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN EXCLUSIVE")
        return holder

    def release(db, holder):
        holder.rollback()
        holder.close()

    out, args = _study_with_a_store_fault(tmp_path, "tiny_store_locked", lock, release)
    assert "stayed locked for 10 s (another process holds it)" in out
    assert main([*args, "--resume"]) == 0
    _all_finished_once(f"sqlite:///{tmp_path / 'mlflow.db'}", "tiny_store_locked")


@pytest.mark.slow
@pytest.mark.verify  # about 4 minutes: make verify
def test_a_tracking_server_that_dies_mid_study_stops_it_and_resume_completes_it(tmp_path, monkeypatch,
                                                                                basic_auth_server):
    """The basic-auth server is killed after the first trials: exit code 4 naming the server within seconds;
    restarted on the same store, --resume (a new driver) ends every trial exactly once."""
    uri, env = basic_auth_server
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):  # this process reads the runs
        monkeypatch.setenv(key, env[key])
    pid_file = tmp_path / "server" / "server.pid"

    def kill(_):
        subprocess.run(["kill", pid_file.read_text().strip()], check=True)

    def restart(_, __):
        out = subprocess.run(["bash", str(REPO / "cluster" / "start_mlflow.sh")], env=env, capture_output=True,
                             text=True, timeout=180)
        assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]

    out, args = _study_with_a_store_fault(tmp_path, "tiny_server_gone", kill, restart, uri=uri, env=env)
    assert f"error: the MLflow store failed during the study: the tracking server {uri} does not answer (" in out
    resumed = subprocess.run([sys.executable, "-m", "study.run", *args, "--resume"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-4000:]
    _all_finished_once(uri, "tiny_server_gone")


@pytest.mark.slow
def test_ctrl_c_while_ray_starts_ends_the_driver_with_one_line(tmp_path):
    """Outside Tune's own handler (Ray starting, data, imports) Ctrl-C ends the driver: exit 130, no traceback."""
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(_spec("tiny_ctrl_c")))
    proc = subprocess.Popen([sys.executable, "-m", "study.run", str(path), "--tracking-uri",
                             f"sqlite:///{tmp_path / 'mlflow.db'}", "--storage-path", str(tmp_path / "ray")],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    while not (line := proc.stdout.readline()).startswith("MLflow tracking URI"):  # next: ray.init
        assert line, "the study ended before starting Ray"
    proc.send_signal(signal.SIGINT)
    start = time.monotonic()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.monotonic() - start < 30, err[-2000:]
    assert "Traceback" not in err and err.strip().endswith(
        "interrupted (Ctrl-C); a study whose trials had started continues with --resume")
