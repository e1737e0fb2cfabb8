"""`ray up` -> `ray submit` -> MLflow UI -> `ray down` of cluster/onprem.yaml against two SSH hosts on this machine.

`make verify-cluster` runs it (marker verify: too long for CI). Each "host" is Debian's sshd in private
namespaces that the test creates: network (its own address on a bridge that only this machine reaches), PID
(its `ray stop` sees only its own processes, never another Ray on the machine), mount (its own /root as home,
/tmp and /run, and the test's shared directory at /mnt/nfs/gan-study, the NFS path of the config). The config is a
copy of cluster/onprem.yaml that changes only the IPs, the SSH user and key. The commands are the ones
cluster/README.md gives a user, in its order, run from the repository root with a throwaway HOME (the user's
~/.ray/auth_token and ~/.gan-study/secrets.env); the user's real ~/.ssh and ~/.ray are not touched.

The hosts have no internet: the shared path holds the project's virtualenv (/mnt/nfs/gan-study/venv, here a link
to this checkout's environment), which setup_commands link instead of building one (cluster/README.md).
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from base64 import b64encode
from pathlib import Path

import pytest
import yaml
from namespaces import SSHD, SshHost
from tests_support import REPO, tiny_spec

BIN = Path(sys.executable).parent
VENV = BIN.parent
SUBNET = "10.213.77"
HEAD_IP, WORKER_IP = f"{SUBNET}.10", f"{SUBNET}.11"
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def hosts(tmp_path):
    if os.geteuid() != 0 or not os.path.exists(SSHD) or not shutil.which("rsync"):
        pytest.skip("needs root (namespaces, a bridge), Debian's openssh-server (sshd) and rsync")
    bridge = f"gsb{os.getpid() % 100000}"
    out = subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], capture_output=True, text=True)
    if out.returncode:
        pytest.skip(f"cannot create a network bridge: {out.stderr.strip()}")
    made: list[SshHost] = []
    try:
        subprocess.run(["ip", "addr", "add", f"{SUBNET}.1/24", "dev", bridge], check=True)
        subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
        (tmp_path / "nfs").mkdir()
        (tmp_path / "nfs" / "venv").symlink_to(VENV)  # the project's environment on the shared path
        key = tmp_path / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        pub = (tmp_path / "id_ed25519.pub").read_text()
        for name, ip in (("head", HEAD_IP), ("worker", WORKER_IP)):
            made.append(SshHost(tmp_path, name, ip, bridge, pub))
        yield made
    finally:
        for host in made:
            host.stop()
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


class User:
    """The user's machine: a throwaway HOME, the repository root as working directory, the project's `ray`."""

    def __init__(self, tmp_path: Path):
        self.home = tmp_path / "user-home"
        self.home.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_", "GAN_STUDY_"))}
        self.env.update(HOME=str(self.home), PATH=f"{BIN}:{os.environ['PATH']}", RAY_USAGE_STATS_ENABLED="0",
                        RAY_TMPDIR=str(tmp_path / "user-ray"), TMPDIR=str(tmp_path / "user-tmp"))
        (tmp_path / "user-tmp").mkdir()
        self.log: list[str] = []
        self.logs = tmp_path / "logs"  # each command's whole output

    def run(self, cmd: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        start = time.time()
        out = subprocess.run(["bash", "-c", cmd], cwd=REPO, env=self.env, capture_output=True, text=True,
                             timeout=timeout)
        shown = cmd.splitlines()[0] + (" ..." if "\n" in cmd else "")  # not the secrets of a here-document
        self.log.append(f"$ {shown}  [{time.time() - start:.0f} s, rc {out.returncode}]")
        self.logs.mkdir(exist_ok=True)
        (self.logs / f"{len(self.log):02d}.log").write_text(f"$ {shown}\n{out.stdout}\n--- stderr\n{out.stderr}")
        print(self.log[-1], flush=True)
        if check:
            assert out.returncode == 0, f"{cmd}\n{(out.stdout + out.stderr)[-6000:]}"
        return out


def _alive_nodes(user: User, cfg: Path) -> list[str]:
    probe = ("python -c 'import ray; ray.init(address=\"auto\", logging_level=\"ERROR\"); "
             "print(\"NODES\", sorted(n[\"NodeManagerAddress\"] for n in ray.nodes() if n[\"Alive\"]))'")
    out = user.run(f"ray exec {cfg} {_q(probe)}", timeout=180, check=False)
    found = re.findall(r"NODES \[(.*)\]", out.stdout)
    return re.findall(r"'([\d.]+)'", found[-1]) if found else []


def _q(s: str) -> str:
    import shlex
    return shlex.quote(s)


def _mlflow_get(url: str, user: str, password: str) -> dict:
    import json
    request = urllib.request.Request(url, headers={"Authorization": "Basic " + b64encode(
        f"{user}:{password}".encode()).decode()})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _trial_runs(base: str, experiment: str, user: str, password: str) -> list[tuple[dict, dict]]:
    """The study's trial runs on the MLflow server at `base` (REST, basic auth): (run, tags) pairs."""
    import json
    auth = {"Authorization": "Basic " + b64encode(f"{user}:{password}".encode()).decode()}
    exp = _mlflow_get(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name={experiment}", user,
                      password)["experiment"]
    body = json.dumps({"experiment_ids": [exp["experiment_id"]], "max_results": 100}).encode()
    request = urllib.request.Request(f"{base}/api/2.0/mlflow/runs/search", data=body,
                                     headers={"Content-Type": "application/json", **auth})
    with urllib.request.urlopen(request, timeout=30) as response:
        runs = json.loads(response.read()).get("runs", [])
    pairs = [(r, {t["key"]: t["value"] for t in r["data"].get("tags", [])}) for r in runs]
    return [(r, tg) for r, tg in pairs if tg.get("gan_study.role") == "trial"]


def _wait(what: str, check, limit: float = 600, every: float = 3):
    """Poll `check()` until it returns something truthy (-> it), failing after `limit` seconds naming `what`."""
    deadline = time.time() + limit
    while time.time() < deadline:
        with contextlib.suppress(OSError, KeyError, ValueError):
            found = check()
            if found:
                return found
        time.sleep(every)
    raise AssertionError(f"{limit:.0f} s without {what}")


def _tmux_study_killed_and_resumed(user: User, cfg: Path, head: SshHost, tmp_path: Path, spec: dict,
                                   admin_pw: str) -> None:
    """`ray submit --tmux` returns once the driver runs in a tmux session on the head (its SSH session closed);
    the driver is SIGKILLed after some epochs; the same command with --resume ends both trials once, every
    epoch logged once (cluster/README.md, "If the driver stops")."""
    epochs = 40
    tmux_spec = {**spec, "name": "onprem_tmux", "tracking": {"experiment": "onprem_tmux"},
                 "checkpoint": {"every": 2, "keep": 1}}
    tmux_spec["fixed"] = {**spec["fixed"], "train": {**spec["fixed"]["train"], "epochs": epochs},
                          "data": {**spec["fixed"]["data"], "n_points": 2000}}
    (tmp_path / "nfs" / "onprem_tmux.yaml").write_text(yaml.safe_dump(tmux_spec))
    submit = f"ray submit --tmux {cfg} study/run.py -- /mnt/nfs/gan-study/onprem_tmux.yaml --address auto"
    user.run(submit, timeout=300)

    def driver() -> list[int]:
        return [pid for pid, cmd in head.processes().items()  # not the tmux session's bash -c '...' around it
                if Path(cmd.split()[0]).name.startswith("python") and "run.py" in cmd and "onprem_tmux" in cmd]

    [pid] = _wait("the study's driver running on the head after ray submit --tmux returned", driver, 120, 1)
    base = f"http://{HEAD_IP}:5000"

    def logged() -> dict[str, list[int]]:  # run id -> epochs of eval/diversity, as the server holds them
        out = {}
        for run, _ in _trial_runs(base, "onprem_tmux", "gan", admin_pw):
            run_id = run["info"]["run_id"]
            history = _mlflow_get(f"{base}/api/2.0/mlflow/metrics/get-history?run_id={run_id}"
                                  "&metric_key=eval/diversity&max_results=1000", "gan", admin_pw)
            out[run_id] = sorted(int(m["step"]) for m in history.get("metrics", []))
        return out

    _wait("3 epochs of a trial in MLflow", lambda: any(len(v) >= 3 for v in logged().values()), 300)
    assert len(logged()) == 2 and all(len(v) < epochs for v in logged().values()), logged()  # mid-study
    os.kill(pid, signal.SIGKILL)
    _wait("the killed driver gone", lambda: not driver(), 60, 1)
    user.run(submit + " --resume", timeout=300)

    def finished() -> bool:
        runs = _trial_runs(base, "onprem_tmux", "gan", admin_pw)
        return len(runs) == 2 and all(r["info"]["status"] == "FINISHED" for r, _ in runs) and not driver()

    _wait("both trials FINISHED and the resumed driver ended", finished, 900, 5)
    final = logged()
    assert len(final) == 2 and all(v == list(range(1, epochs + 1)) for v in final.values()), final


@pytest.mark.slow
@pytest.mark.verify
def test_ray_up_submit_mlflow_ui_down_on_ssh_hosts(hosts, tmp_path):
    head, worker = hosts
    user = User(tmp_path)
    times: dict[str, float] = {}
    t0 = time.time()

    # the test copy of cluster/onprem.yaml: IPs, SSH user and key only
    raw = yaml.safe_load((REPO / "cluster" / "onprem.yaml").read_text())
    raw["provider"].update(head_ip=HEAD_IP, worker_ips=[WORKER_IP])
    raw["auth"] = {"ssh_user": "root", "ssh_private_key": str(tmp_path / "id_ed25519")}
    raw["min_workers"] = raw["max_workers"] = 1
    cfg = tmp_path / "onprem.yaml"
    cfg.write_text(yaml.safe_dump(raw, sort_keys=False))

    # "Once, on your machine" (cluster/README.md): Ray's token and the MLflow secrets
    admin_pw, trial_pw = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    user.run("ray get-auth-token --generate")
    assert (user.home / ".ray" / "auth_token").is_file()
    user.run("mkdir -p ~/.gan-study && (umask 077 && cat > ~/.gan-study/secrets.env) <<'EOF'\n"
             f"MLFLOW_TRACKING_USERNAME=gan\nMLFLOW_TRACKING_PASSWORD={admin_pw}\n"
             f"GAN_STUDY_TRIAL_USERNAME=trials\nGAN_STUDY_TRIAL_PASSWORD={trial_pw}\nEOF")

    # 1. ray up: the head over SSH, then the head's autoscaler brings up the worker over SSH
    user.run(f"ray up -y {cfg}", timeout=900)
    nodes: list[str] = []
    deadline = time.time() + 300
    while time.time() < deadline:
        nodes = _alive_nodes(user, cfg)
        if sorted(nodes) == sorted([HEAD_IP, WORKER_IP]):
            break
        time.sleep(10)
    assert sorted(nodes) == sorted([HEAD_IP, WORKER_IP]), nodes
    head_procs = " ".join(head.processes().values())
    assert "gcs_server" in head_procs and "mlflow" in head_procs and "raylet" in " ".join(worker.processes().values())
    # the worker keeps no admin MLflow credentials
    assert "MLFLOW_TRACKING_PASSWORD" not in (worker.home / ".gan-study" / "secrets.env").read_text()
    assert "MLFLOW_TRACKING_PASSWORD" in (head.home / ".gan-study" / "secrets.env").read_text()
    times["ray up (head + worker alive)"] = time.time() - t0

    # 2. ray submit: a tiny study, one trial per node (2 CPUs a trial; each host has 2)
    spec = tiny_spec("onprem_submit", search={"remedies.label_flip.rate": {"grid": [0.1]}}, seeds=2,
                     max_concurrent=2, resources={"cpu": 2, "gpu": 0})
    spec.pop("trials", None)
    (tmp_path / "nfs" / "onprem_submit.yaml").write_text(yaml.safe_dump(spec))
    t = time.time()
    out = user.run(f"ray submit {cfg} study/run.py -- /mnt/nfs/gan-study/onprem_submit.yaml --address auto",
                   timeout=900)
    times["ray submit"] = time.time() - t
    assert "Study summary" in out.stdout + out.stderr, (out.stdout + out.stderr)[-4000:]
    assert f"MLflow tracking URI: http://{HEAD_IP}:5000" in out.stdout + out.stderr

    # 3. the MLflow UI the documented way: an SSH tunnel to the head's private address
    port = _free_port()
    tunnel = subprocess.Popen(["ssh", "-i", str(tmp_path / "id_ed25519"), "-o", "StrictHostKeyChecking=no",
                               "-o", "UserKnownHostsFile=/dev/null", "-o", "ExitOnForwardFailure=yes", "-N",
                               "-L", f"{port}:{HEAD_IP}:5000", f"root@{HEAD_IP}"], env=user.env,
                              stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://localhost:{port}"
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=5)
                break
            except OSError:
                assert time.time() < deadline and tunnel.poll() is None, "tunnel to the MLflow UI"
                time.sleep(0.5)
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=onprem_submit")
        assert denied.value.code == 401
        trials = _trial_runs(base, "onprem_submit", "gan", admin_pw)
        assert len(trials) == 2 and all(r["info"]["status"] == "FINISHED" for r, _ in trials), trials
        assert {tg["gan_study.mlflow_user"] for _, tg in trials} == {"trials"}
        node_ids = {tg["ray.node_id"] for _, tg in trials}
        assert len(node_ids) == 2, node_ids  # one trial on each host
        page = urllib.request.urlopen(urllib.request.Request(base + "/", headers={
            "Authorization": "Basic " + b64encode(f"gan:{admin_pw}".encode()).decode()}), timeout=30).read()
        assert b"<html" in page.lower() or b"<!doctype html" in page.lower()
    finally:
        tunnel.terminate()
        tunnel.wait(timeout=10)
    times["MLflow UI through the tunnel"] = time.time() - t0

    # 4. ray job submit through the dashboard tunnel of `ray dashboard` (cluster/README.md), the same tiny study
    job_spec = {**spec, "name": "onprem_job", "tracking": {"experiment": "onprem_job"}}
    (tmp_path / "nfs" / "onprem_job.yaml").write_text(yaml.safe_dump(job_spec))
    dash = _free_port()
    forward = subprocess.Popen(["bash", "-c", f"exec ray dashboard -p {dash} {cfg}"], cwd=REPO, env=user.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", dash), timeout=1):
                break
            assert time.time() < deadline and forward.poll() is None, "ray dashboard tunnel"
            time.sleep(1)
        t = time.time()
        out = user.run(f"export RAY_AUTH_MODE=token RAY_ADDRESS=http://127.0.0.1:{dash} && ray job submit "
                       "--working-dir . -- python -m study.run /mnt/nfs/gan-study/onprem_job.yaml", timeout=900)
        times["ray job submit"] = time.time() - t
        log = out.stdout + out.stderr
        assert "succeeded" in log and "Study summary" in log, log[-4000:]
    finally:
        os.killpg(forward.pid, signal.SIGTERM)
        forward.wait(timeout=10)
    job_trials = _trial_runs(f"http://{HEAD_IP}:5000", "onprem_job", "gan", admin_pw)
    assert len(job_trials) == 2 and all(r["info"]["status"] == "FINISHED" for r, _ in job_trials)
    assert len({tg["ray.node_id"] for _, tg in job_trials}) == 2

    # 5. ray submit --tmux: the driver outlives the SSH session; killed (SIGKILL), --resume ends every trial once
    t = time.time()
    _tmux_study_killed_and_resumed(user, cfg, head, tmp_path, spec, admin_pw)
    times["ray submit --tmux, driver killed, --resume"] = time.time() - t

    # 6. ray down: nothing of the cluster left on either host (sshd's listener excepted)
    user.run(f"ray exec {cfg} 'tmux kill-server'", timeout=120)
    user.run(f"ray exec {cfg} 'bash ~/gan-study/cluster/stop_mlflow.sh'", timeout=120)
    user.run(f"ray down -y {cfg}", timeout=300)
    # `ray down` of the local provider stops Ray on the head only; each worker's Ray is stopped over SSH
    user.run(f"ssh -i {tmp_path / 'id_ed25519'} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
             f"root@{WORKER_IP} '. ~/gan-study/cluster/env.sh && ray stop'", timeout=120)
    deadline = time.time() + 120
    while time.time() < deadline and (head.processes() or worker.processes()):
        time.sleep(2)
    assert not head.processes(), head.processes()
    assert not worker.processes(), worker.processes()
    times["ray down"] = time.time() - t0
    print("\n".join(user.log))
    print({k: round(v) for k, v in times.items()})
