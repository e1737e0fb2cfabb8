"""study.preflight: a tracking server or a Ray cluster that does not answer is refused before Ray starts, in
seconds, with one line (exit code 2); one that answers is accepted."""
from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from study import preflight
from tests.study.test_spec import GOOD, _error
from tests.tests_support import free_port


@pytest.fixture
def silent_port():
    """A port that accepts TCP connections and never answers a byte (a hung server)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield s.getsockname()[1]
    s.close()


@pytest.fixture
def auth_server():
    """An HTTP server that answers every request with 401, as the basic-auth MLflow server does without
    credentials: it answers, so the store is reachable."""
    class Deny(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(401)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Deny)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_closed_port_is_refused_for_the_store_and_the_cluster(tmp_path, capsys):
    port = free_port()
    err = _error(tmp_path, capsys, GOOD, ("--tracking-uri", f"http://127.0.0.1:{port}"))
    assert f"tracking URI http://127.0.0.1:{port}: the MLflow server cannot be reached" in err
    assert len(err.strip().splitlines()) == 1
    err = _error(tmp_path, capsys, GOOD, ("--address", f"127.0.0.1:{port}"))
    assert f"--address 127.0.0.1:{port}: no Ray cluster answers there" in err and "refused" in err
    assert len(err.strip().splitlines()) == 1


def test_a_database_store_that_does_not_answer_is_refused_without_showing_its_password(tmp_path, capsys):
    port = free_port()
    err = _error(tmp_path, capsys, GOOD, ("--tracking-uri", f"postgresql://gan:s3cret@127.0.0.1:{port}/mlflow"))
    assert f"tracking URI postgresql://gan:***@127.0.0.1:{port}/mlflow: the database server cannot be reached " \
           "(Connection refused)" in err
    assert "s3cret" not in err and len(err.strip().splitlines()) == 1


def test_a_hung_server_is_refused_after_the_timeout(tmp_path, capsys, silent_port, monkeypatch):
    monkeypatch.setattr(preflight, "REACH_TIMEOUT_S", 0.5)
    start = time.monotonic()
    err = _error(tmp_path, capsys, GOOD, ("--tracking-uri", f"http://127.0.0.1:{silent_port}"))
    assert "cannot be reached (no answer within 0.5 s)" in err
    assert time.monotonic() - start < 5


def test_an_open_port_that_is_not_ray_is_refused_in_seconds_not_minutes(tmp_path, capsys, silent_port):
    """ray.init would retry for over 5 minutes (and take Ctrl-C only between tries): Ray's GCS client probes it."""
    start = time.monotonic()
    err = _error(tmp_path, capsys, GOOD, ("--address", f"127.0.0.1:{silent_port}"))
    assert f"--address 127.0.0.1:{silent_port}: no Ray cluster answers there (the port is open, but no Ray GCS " \
           "answers: " in err
    assert len(err.strip().splitlines()) == 1 and time.monotonic() - start < 30


def test_a_server_that_asks_for_a_login_needs_one_it_takes(tmp_path, capsys, auth_server, monkeypatch):
    """The server answers (401), so it is reachable; without credentials, or with ones it refuses, the study
    stops before Ray with one line naming the variables."""
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    err = _error(tmp_path, capsys, GOOD, ("--tracking-uri", auth_server))
    assert f"tracking URI {auth_server}: the server asks for a login; set MLFLOW_TRACKING_USERNAME and " \
           "MLFLOW_TRACKING_PASSWORD" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "gan")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-password")
    err = _error(tmp_path, capsys, GOOD, ("--tracking-uri", auth_server))
    assert "the server refuses the login of MLFLOW_TRACKING_USERNAME='gan'" in err


@pytest.mark.slow
def test_on_a_cluster_the_trials_need_the_trial_user(tmp_path, capsys, basic_auth_server, monkeypatch):
    """The real basic-auth server: the admin login is taken; a study for a cluster without the trial user (the
    trials would hold the admin login) is refused, and so is a trial login the server refuses."""
    uri, env = basic_auth_server
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.setenv(key, env[key])
    for key in ("GAN_STUDY_TRIAL_USERNAME", "GAN_STUDY_TRIAL_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    cluster = ("--tracking-uri", uri, "--address", f"127.0.0.1:{free_port()}")
    err = _error(tmp_path, capsys, GOOD, cluster)
    assert "on a cluster the trials log as a non-admin trial user, not with the admin login; set " \
           "GAN_STUDY_TRIAL_USERNAME and GAN_STUDY_TRIAL_PASSWORD" in err
    monkeypatch.setenv("GAN_STUDY_TRIAL_USERNAME", "trials")
    monkeypatch.setenv("GAN_STUDY_TRIAL_PASSWORD", "not-the-trial-password")
    err = _error(tmp_path, capsys, GOOD, cluster)
    assert "the server refuses the login of GAN_STUDY_TRIAL_USERNAME='trials'" in err
    monkeypatch.setenv("GAN_STUDY_TRIAL_PASSWORD", env["GAN_STUDY_TRIAL_PASSWORD"])
    err = _error(tmp_path, capsys, GOOD, cluster)  # the logins pass: next, the cluster that is not there
    assert "no Ray cluster answers there" in err


def test_auto_names_the_stale_cluster_an_earlier_ray_start_left(tmp_path, capsys, monkeypatch):
    """`ray start --head` records its address in $RAY_TMPDIR/ray/ray_current_cluster; stopped without `ray
    stop`, the record stays. `--address auto` then names the dead address instead of retrying for minutes."""
    import ray._private.services as services

    port = free_port()
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "tmp"))
    # Ray's `auto` takes any Ray running on the machine over the record: this test session's own Ray is not the
    # cluster this case is about, so the process scan sees none (as on the machine the issue describes)
    monkeypatch.setattr(services, "find_gcs_addresses", lambda: frozenset())
    (tmp_path / "tmp" / "ray").mkdir(parents=True)
    (tmp_path / "tmp" / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{port}")
    err = _error(tmp_path, capsys, GOOD, ("--address", "auto"))
    assert "--address auto (" in err and f":{port}): no Ray cluster answers there (Connection refused)" in err

