"""Cluster runs and fault tolerance.

Fast: Ray's own cluster-launcher validation accepts cluster/aws-gpu.yaml and cluster/onprem.yaml; the configs ship
the project and no secrets; the runner's cluster pieces (storage URIs, autoscaling-aware resources check, running
study/run.py as a script) work.

Slow: a real two-node Ray cluster on this machine (a head node and a worker node with its own temp dir, 1 CPU
each, token authentication) inside a private network namespace that has only the loopback interface, so every
Ray and MLflow port is bound to 127.0.0.1 and nothing collides with another Ray on the machine (or with the
`ray.init(address="local")` session of the test process). Ray rewrites --node-ip-address=127.0.0.1 to the
machine's routable address when it has one; in the namespace it keeps 127.0.0.1.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import glob
import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from mlflow.tracking import MlflowClient
from tests_support import REPO, child_runs, tiny_spec

BIN = Path(sys.executable).parent  # the project's environment: `ray`, `mlflow`, `python` for the cluster
CONFIGS = ["aws-gpu.yaml", "onprem.yaml"]


def _config(name: str) -> dict:
    return yaml.safe_load((REPO / "cluster" / name).read_text())


# ----------------------------------------------------------------------------------------------- fast checks

@pytest.mark.parametrize("name", CONFIGS)
def test_ray_cluster_launcher_accepts_the_config(name):
    """What `ray up` does before it contacts any machine: prepare_config (defaults, node types) and
    validate_config (ray/autoscaler/ray-schema.json and the node-type rules); the local provider's full bootstrap."""
    import jsonschema
    from ray.autoscaler._private.commands import _bootstrap_config
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = _config(name)
    prepared = prepare_config(copy.deepcopy(raw))
    validate_config(prepared)
    if raw["provider"]["type"] == "local":  # AWS's bootstrap needs credentials (boto3 calls); local needs none
        validate_config(_bootstrap_config(copy.deepcopy(raw), no_config_cache=True))
    else:
        workers = prepared["available_node_types"]["gpu_worker"]
        assert workers["resources"]["GPU"] >= 1 and workers["min_workers"] == 0 < workers["max_workers"]
    misspelt = {**prepared, "setup_comands": []}  # the validator is live
    with pytest.raises(jsonschema.ValidationError):
        validate_config(misspelt)


@pytest.mark.parametrize("name", CONFIGS)
def test_config_ships_the_project_token_and_credentials_but_writes_no_secret(name):
    text = (REPO / "cluster" / name).read_text()
    raw = yaml.safe_load(text)
    mounts = raw["file_mounts"]
    for local in mounts.values():
        assert local.startswith("~/") or (REPO / local).exists(), local
    assert mounts["~/.ray/auth_token"] == "~/.ray/auth_token"  # Ray's token reaches every node as a file
    assert mounts["~/.gan-study/secrets.env"] == "~/.gan-study/secrets.env"
    secrets_env = "MLFLOW_TRACKING_USERNAME=gan\nMLFLOW_TRACKING_PASSWORD=admin\nGAN_STUDY_TRIAL_USERNAME=trials\n"
    kept = subprocess.run(["sed", *shlex.split(raw["worker_setup_commands"][0])[2:-1]], input=secrets_env,
                          capture_output=True, text=True, check=True).stdout
    assert kept == "GAN_STUDY_TRIAL_USERNAME=trials\n"  # a worker keeps no admin credentials
    if raw["provider"]["type"] == "aws":
        worker = raw["available_node_types"]["gpu_worker"]["node_config"]
        assert worker["IamInstanceProfile"] == {"Name": "gan-study-worker"}
        policy = json.loads((REPO / "cluster" / "aws-worker-policy.json").read_text())
        actions = {a for statement in policy["Statement"] for a in statement["Action"]}
        assert actions and all(a.startswith("s3:") for a in actions)  # the bucket, nothing else
    setup = "\n".join(raw["setup_commands"])
    assert '-e "$HOME/gan-study[cluster]"' in setup and "GAN_STUDY_STORAGE_PATH" in setup
    head = "\n".join(raw["head_start_ray_commands"])
    assert "cluster/start_mlflow.sh" in head and "ray start --head" in head
    assert "RAY_AUTH_MODE=disabled" not in text and "PASSWORD=" not in text and "RAY_AUTH_TOKEN=" not in text
    env = (REPO / "cluster" / "env.sh").read_text()
    assert "export RAY_AUTH_MODE=token" in env and "MLFLOW_TRACKING_URI=" in env
    script = REPO / "cluster" / "start_mlflow.sh"
    assert "--app-name basic-auth" in script.read_text() and "--artifacts-destination" in script.read_text()
    for sh in (script, REPO / "cluster" / "env.sh"):
        subprocess.run(["bash", "-n", str(sh)], check=True)


def test_autoscaling_gpu_workers_count_in_the_resources_check(tmp_path):
    """On a `ray up` cluster with no GPU worker running yet, a GPU study must start (the autoscaler adds one)."""
    from ray.autoscaler._private.util import prepare_config

    from study.launch import _autoscaling_node_types

    path = tmp_path / "ray_bootstrap_config.yaml"
    path.write_text(yaml.safe_dump(prepare_config(_config("aws-gpu.yaml"))))
    assert _autoscaling_node_types(str(path)) == [{"CPU": 4, "GPU": 1}]
    assert _autoscaling_node_types(str(tmp_path / "absent.yaml")) == []


def test_storage_paths_and_uris(tmp_path, monkeypatch):
    from study.launch import _read_text, _write_text, storage_root

    spec = SimpleNamespace(storage_path=None)
    args = argparse.Namespace(storage_path="s3://bucket/gan-study/")
    assert storage_root(args, spec, "tiny") == "s3://bucket/gan-study/tiny"
    args.storage_path = f"file://{tmp_path}/ray"
    assert storage_root(args, spec, "tiny") == f"{tmp_path}/ray/tiny"
    monkeypatch.chdir(tmp_path)
    args.storage_path = "rel"
    assert storage_root(args, spec, "tiny") == f"{tmp_path}/rel/tiny"
    args.storage_path = None
    monkeypatch.setenv("GAN_STUDY_STORAGE_PATH", "gs://b/p")
    assert storage_root(args, spec, "tiny") == "gs://b/p/tiny"
    spec.storage_path = "/nfs/ray"
    assert storage_root(args, spec, "tiny") == "/nfs/ray/tiny"
    uri = f"file://{tmp_path}/state/latest.json"  # the URI branch (pyarrow), as for s3://
    assert _read_text(uri) is None
    _write_text(uri, '{"run_name": "x"}')
    assert _read_text(uri) == '{"run_name": "x"}' == (tmp_path / "state" / "latest.json").read_text()


@pytest.mark.slow  # two `study/run.py` subprocesses (dry runs): a study entry point in a subprocess
def test_run_py_runs_as_a_script_from_another_directory(tmp_path):
    """`ray submit CLUSTER study/run.py -- search_spaces/x.yaml` uploads run.py alone and runs it in the home
    directory of the head node, where the project is installed."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "study" / "run.py", home / "run.py")
    for cmd, cwd in (([str(REPO / "study" / "run.py")], tmp_path), ([str(home / "run.py")], home)):
        out = subprocess.run([sys.executable, *cmd, "search_spaces/label_noise.yaml", "--set", "resources.gpu=0.25",
                              "--dry-run", "--no-cost"], cwd=cwd, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert "label_noise: 6 configurations x 5 seeds = 30 trials" in out.stdout


# ------------------------------------------------------------------------------------------ a local cluster

class LocalCluster:
    """A Ray head node and one worker node (custom resource `worker_node`) on this machine, in a private network
    namespace with only loopback. Every process it starts lives in that namespace; `stop` ends exactly those."""

    GCS, DASHBOARD, MLFLOW = 6379, 8265, 5000

    def __init__(self, root: Path, dashboard: bool = False):
        self.root, self.dashboard = root, dashboard
        self.token = secrets.token_hex(32)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_"))}
        self.env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token, PATH=f"{BIN}:{os.environ['PATH']}",
                        RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1")
        self.holder = subprocess.Popen(["unshare", "--net", "sh", "-c", "ip link set lo up && exec sleep 86400"],
                                       stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        if self.holder.poll() is not None:
            pytest.skip(f"needs a private network namespace (unshare --net, root): {self.holder.stderr.read()}")
        self.netns = os.readlink(f"/proc/{self.holder.pid}/ns/net")
        self.prefix = ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net", "--"]
        # short temp dirs (Unix socket paths); one per node, as on real machines: a node's runtime-env agent
        # deletes the unpacked job working_dir it manages, which must not be the head's copy
        self.head_tmp = tempfile.mkdtemp(prefix="rh", dir="/tmp")
        self.worker_tmp = tempfile.mkdtemp(prefix="rw", dir="/tmp")
        self.address = f"127.0.0.1:{self.GCS}"

    def run(self, cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(self.prefix + cmd, env=kw.pop("env", self.env), capture_output=True, text=True,
                              timeout=timeout, **kw)

    def popen(self, cmd: list[str], **kw) -> subprocess.Popen:
        return subprocess.Popen(self.prefix + cmd, env=kw.pop("env", self.env), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, **kw)

    def start(self) -> LocalCluster:
        fast_failure_detection = json.dumps({"health_check_period_ms": 1000, "health_check_timeout_ms": 1000,
                                             "health_check_failure_threshold": 3})
        common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--num-gpus=0", "--object-store-memory=80000000",
                  "--disable-usage-stats"]
        head = [str(BIN / "ray"), "start", "--head", f"--port={self.GCS}", f"--temp-dir={self.head_tmp}", *common,
                "--node-manager-port=6380", "--object-manager-port=6381", "--min-worker-port=20000",
                "--max-worker-port=20999", f"--system-config={fast_failure_detection}"]
        head += (["--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={self.DASHBOARD}"]
                 if self.dashboard else ["--include-dashboard=false"])
        worker = [str(BIN / "ray"), "start", f"--address={self.address}", f"--temp-dir={self.worker_tmp}", *common,
                  '--resources={"worker_node": 1}', "--node-manager-port=6390", "--object-manager-port=6391",
                  "--dashboard-agent-listen-port=6392", "--dashboard-agent-grpc-port=6393",
                  "--runtime-env-agent-port=6394", "--metrics-export-port=6395", "--min-worker-port=21000",
                  "--max-worker-port=21999"]
        for cmd in (head, worker):
            out = self.run(cmd, timeout=180)
            assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
        probe = (f"import json, ray; ray.init(address='{self.address}', logging_level='ERROR');"
                 "print(json.dumps({n['NodeID']: 'worker_node' in n['Resources'] for n in ray.nodes() if n['Alive']}))")
        for _ in range(30):
            out = self.run([sys.executable, "-c", probe], timeout=120)
            nodes = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {}
            if len(nodes) == 2:
                break
            time.sleep(1)
        assert len(nodes) == 2, (out.stdout + out.stderr)[-3000:]
        self.head_id = next(n for n, is_worker in nodes.items() if not is_worker)
        self.worker_id = next(n for n, is_worker in nodes.items() if is_worker)
        return self

    def start_mlflow(self) -> str:
        """cluster/start_mlflow.sh on the 'head node': the basic-auth server, admin = MLFLOW_TRACKING_* of env."""
        env = {**self.env, "GAN_STUDY_HEAD_IP": "127.0.0.1", "GAN_STUDY_MLFLOW_PORT": str(self.MLFLOW),
               "GAN_STUDY_MLFLOW_ROOT": str(self.root / "mlflow")}
        out = self.run(["bash", str(REPO / "cluster" / "start_mlflow.sh")], timeout=180, env=env)
        assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
        return f"http://127.0.0.1:{self.MLFLOW}"

    def _pids(self, match=lambda pid: True) -> list[int]:
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != self.holder.pid:
                try:
                    if os.readlink(f"/proc/{entry}/ns/net") == self.netns and match(int(entry)):
                        pids.append(int(entry))
                except OSError:
                    pass
        return pids

    def kill_worker_node(self) -> list[int]:
        """The worker node dies: its raylet and every process it started (trial workers, agents), SIGKILL."""
        import psutil

        def on_worker(pid: int) -> bool:
            try:
                proc = psutil.Process(pid)
                return any(self.worker_tmp in " ".join(p.cmdline()) for p in [proc, *proc.parents()])
            except psutil.Error:
                return False

        pids = self._pids(on_worker)
        assert pids, "no worker node processes found"
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids

    def stop(self) -> None:
        """End every process in the namespace (the cluster's, the MLflow server, drivers), then the namespace."""
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
            pids = self._pids()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.time() + wait
            while pids and time.time() < deadline and self._pids():
                time.sleep(0.2)
        self.holder.kill()
        self.holder.wait()
        for path in (self.head_tmp, self.worker_tmp):
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_cluster(tmp_path):
    clusters = []

    def make(dashboard: bool = False, **env: str) -> LocalCluster:
        cluster = LocalCluster(tmp_path, dashboard)
        clusters.append(cluster)
        cluster.env.update(env)  # what cluster/env.sh exports before `ray start`: trial workers inherit it
        return cluster.start()

    yield make
    for cluster in clusters:
        cluster.stop()


def _write_spec(tmp_path: Path, name: str, **extra) -> Path:
    """One configuration x 2 seeds, both trials queued at once (max_concurrent 2; with a searcher Tune otherwise
    queues one trial at a time), so they run at the same time, one on each node."""
    spec = tiny_spec(name, search={"remedies.label_flip.rate": {"grid": [0.1]}}, seeds=2, max_concurrent=2, **extra)
    spec.pop("trials", None)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _check_runs(uri: str, experiment: str, n: int, epochs: int):
    """Every trial has exactly one FINISHED child run (per Ray trial id and per (config, seed)), all epochs once."""
    parents, trials = child_runs(uri, experiment)
    assert len(parents) == 1 and (parents.status == "FINISHED").all()
    assert len(trials) == n and trials["tags.ray.trial_id"].is_unique
    keys = list(zip(trials["params.remedies.label_flip.rate"], trials["params.train.lr"], trials["params.seed"]))
    assert len(set(keys)) == n, keys
    assert (trials.status == "FINISHED").all(), trials[["status", "tags.gan_study.outcome"]]
    client = MlflowClient(uri)
    for run_id in trials.run_id:
        steps = [m.step for m in client.get_metric_history(run_id, "eval/diversity")]
        assert steps == list(range(1, epochs + 1)), steps
    return trials


# ------------------------------------------------------------------------------------------------ slow runs

@pytest.mark.slow
def test_study_on_a_two_node_cluster_places_trials_on_both_nodes(make_cluster, tmp_path):
    """`python -m study.run SPEC --address HOST:PORT` on a token-authenticated cluster, tracking to the MLflow
    basic-auth server of cluster/start_mlflow.sh (credentials from the environment; the trials log as its trial
    user, the preflight's rule on a cluster), storage as a file:// URI."""
    cluster = make_cluster(MLFLOW_TRACKING_USERNAME="gan", MLFLOW_TRACKING_PASSWORD=secrets.token_urlsafe(12),
                           GAN_STUDY_TRIAL_USERNAME="trials", GAN_STUDY_TRIAL_PASSWORD=secrets.token_urlsafe(12))
    server = cluster.start_mlflow()
    denied = cluster.run([sys.executable, "-c", "import urllib.request as u; u.urlopen("
                          f"'{server}/api/2.0/mlflow/experiments/search?max_results=1')"], timeout=60)
    assert denied.returncode != 0 and "401" in denied.stderr  # no credentials, no access
    spec = _write_spec(tmp_path, "tiny_cluster")
    start = time.time()
    out = cluster.run([sys.executable, "-m", "study.run", str(spec), "--address", cluster.address,
                       "--storage-path", f"file://{tmp_path}/ray"], timeout=420, cwd=tmp_path,
                      env={**cluster.env, "MLFLOW_TRACKING_URI": server})
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
    print(f"two-node study: {time.time() - start:.0f} s")
    assert f"MLflow tracking URI: {server}" in out.stdout
    trials = _check_runs(f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}", "tiny_cluster", 2, 3)  # the server's store
    assert set(trials["tags.ray.node_id"]) == {cluster.head_id, cluster.worker_id}, out.stdout[-6000:]
    assert set(trials["tags.gan_study.mlflow_user"]) == {"trials"}  # on both nodes: not the admin login
    assert (tmp_path / "ray" / "tiny_cluster" / "latest.json").is_file()  # file:// taken as a local path
    samples = glob.glob(f"{tmp_path}/mlflow/artifacts/*/*/artifacts/samples/*.png")  # proxied by the server
    assert len({Path(p).parts[-4] for p in samples}) == 2
    loose = [str(p) for p in (tmp_path / "mlflow").rglob("*") if p.stat().st_mode & 0o077]
    assert not loose, loose[:5]  # the server's runs, password hashes, log and artifacts are private to its user


@pytest.mark.slow
def test_study_submitted_as_a_ray_job(make_cluster, tmp_path):
    """`ray job submit --address http://HOST:DASHBOARD --working-dir . -- python -m study.run SPEC`."""
    cluster = make_cluster(dashboard=True)
    spec = _write_spec(tmp_path, "tiny_job")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = cluster.run([str(BIN / "ray"), "job", "submit", "--address", f"http://127.0.0.1:{cluster.DASHBOARD}",
                       "--working-dir", ".", "--", "python", "-m", "study.run", str(spec), "--tracking-uri", uri,
                       "--storage-path", str(tmp_path / "ray")], timeout=480, cwd=REPO)
    log = out.stdout + out.stderr
    assert out.returncode == 0 and "succeeded" in log, log[-5000:]
    assert "Study summary" in log
    trials = _check_runs(uri, "tiny_job", 2, 3)
    assert set(trials["tags.ray.node_id"]) == {cluster.head_id, cluster.worker_id}, log[-6000:]
    # artifacts live beside the SQLite store, not in the job's working directory (Ray deletes that)
    client = MlflowClient(uri)
    for run_id in trials.run_id:
        assert client.list_artifacts(run_id, "samples")
    assert str(tmp_path / "mlartifacts") in client.get_experiment_by_name("tiny_job").artifact_location


@pytest.mark.slow
def test_worker_node_failure_resumes_trials_from_checkpoints(make_cluster, tmp_path):
    """The worker node dies mid-study (max_failures 2, a checkpoint every epoch): its trials restart on the head
    node from their last checkpoint, every trial ends with one FINISHED MLflow run holding each epoch once, and
    the store holds the metrics an uninterrupted run of the spec gives."""
    cluster = make_cluster()
    epochs = 6
    spec = tiny_spec("tiny_failover", seeds=2, max_failures=2, checkpoint={"every": 1, "keep": 2}, max_concurrent=2,
                     search={"remedies.label_flip.rate": {"grid": [0.0, 0.2]}})
    spec.pop("trials")
    spec["fixed"]["data"]["n_points"] = 2000
    spec["fixed"]["train"]["epochs"] = epochs
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    start = time.time()
    driver = cluster.popen([sys.executable, "-m", "study.run", str(path), "--address", cluster.address,
                            "--tracking-uri", uri, "--storage-path", str(tmp_path / "ray")], cwd=tmp_path)
    try:
        victims = _wait_for_trials_in_progress_on(cluster.worker_id, uri, "tiny_failover", driver, epochs)
        cluster.kill_worker_node()
        killed_at = time.time() - start
        out, _ = driver.communicate(timeout=480)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, out[-5000:]
    print(f"failover study: {time.time() - start:.0f} s, worker killed after {killed_at:.0f} s")
    trials = _check_runs(uri, "tiny_failover", 4, epochs)
    moved = trials[trials["tags.ray.trial_id"].isin(victims)]
    assert len(moved) == len(victims) and (moved["tags.ray.node_id"] == cluster.head_id).all()
    for trial_id in victims:  # restored, not restarted: the first result after the restore is past epoch 1
        [result_file] = glob.glob(f"{tmp_path}/ray/tiny_failover/*/{trial_id}/result.json")
        rows = [json.loads(line) for line in Path(result_file).read_text().splitlines() if line.strip()]
        restored = [r["training_iteration"] for r in rows if r["iterations_since_restore"] == 1]
        assert restored[0] == 1 and any(it > 1 for it in restored[1:]), restored
    _same_as_uninterrupted(path, uri, tmp_path)


def _same_as_uninterrupted(path: Path, uri: str, tmp_path: Path) -> None:
    """The study's store after the node failure holds what the same spec run straight through, on a Ray of its
    own on this machine, gives: per (flip rate, seed) the outcome and every epoch's eval/diversity."""
    straight_uri = f"sqlite:///{tmp_path / 'straight.db'}"
    out = subprocess.run([sys.executable, "-m", "study.run", str(path), "--tracking-uri", straight_uri,
                          "--storage-path", str(tmp_path / "ray-straight")], cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]

    def store(at: str) -> dict:
        _, trials = child_runs(at, "tiny_failover")
        client = MlflowClient(at)
        return {(row["params.remedies.label_flip.rate"], row["params.seed"]): (
            row["tags.gan_study.outcome"],
            [m.value for m in sorted(client.get_metric_history(row.run_id, "eval/diversity"), key=lambda m: m.step)])
            for _, row in trials.iterrows()}

    failed_over, straight = store(uri), store(straight_uri)
    assert failed_over == straight and len(straight) == 4, (failed_over, straight)


def _wait_for_trials_in_progress_on(node_id: str, uri: str, experiment: str, driver: subprocess.Popen,
                                    epochs: int, limit: float = 300) -> list[str]:
    """Ray trial ids of the runs on `node_id` that have logged at least 2 epochs (so a checkpoint exists) and
    not all of them."""
    deadline = time.time() + limit
    while time.time() < deadline and driver.poll() is None:
        if not glob.glob(f"{Path(uri.removeprefix('sqlite:///')).parent}/ray/*/latest.json"):
            time.sleep(0.5)  # the driver has not made the store's tables yet: reading now would race it
            continue
        try:
            _, trials = child_runs(uri, experiment)
            running = trials[(trials.status == "RUNNING") & (trials["tags.ray.node_id"] == node_id)]
            client = MlflowClient(uri)
            victims = [row["tags.ray.trial_id"] for _, row in running.iterrows()
                       if 2 <= len(client.get_metric_history(row.run_id, "eval/diversity")) < epochs - 1]
            if victims:
                return victims
        except Exception:
            pass
        time.sleep(0.3)
    out = driver.stdout.read() if driver.poll() is not None else ""
    raise AssertionError(f"no trial in progress on the worker node in time\n{out[-3000:]}")
