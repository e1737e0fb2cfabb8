"""cluster/aws-gpu.yaml's node commands, run on two fresh "nodes" of this machine: all that `ray up` does on EC2
but the cloud calls.

`make verify-cluster` runs it (marker verify). A node is a mount and PID namespace with its own new home at
/root (/etc/skel's files), its own /tmp and /run, Debian's system Python 3.11 on the default PATH, and nothing of
this checkout's environment; the project arrives as `file_mounts` say (copied where `ray up` would rsync it).
Each command runs as Ray's SSH command runner runs it (`bash --login -c -i`, `source ~/.bashrc`,
`export RAY_HEAD_IP=...`).

- The head keeps the machine's network (the package index answers, as it does for an EC2 node): it runs
  `setup_commands` (uv from pip, `uv venv --python 3.11`, `pip install -e ~/gan-study[cluster]`),
  `head_setup_commands` and `head_start_ray_commands` (MLflow server, `ray start --head`) with the config as
  `~/ray_bootstrap_config.yaml`. Its autoscaler cannot reach AWS (no credentials): that is the part left untested.
- The worker has a network namespace of its own on a bridge (its own address; the head reached through the
  machine's address). Its home is the head's after `setup_commands` (hard links: the same commands, the same
  result, without a second install), then it runs `worker_setup_commands` and `worker_start_ray_commands`.

Asserted: every command exits 0; the head's venv imports the project; the MLflow server answers on the head's
address and refuses a request without login; both nodes are alive in the head's Ray; the worker keeps no admin
MLflow credentials. About 6 minutes, most of it the venv install.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from namespaces import end_namespace, namespace_init
from tests_support import REPO

BRIDGE, SUBNET = "gsaws0", "10.213.78"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # a fresh node's: no pyenv, no venv
# this machine reaches the package index through a proxy whose CA is in the system store: pip trusts it through
# /etc/pip.conf, uv (bundled roots by default) through these; an EC2 node reaches PyPI directly and needs neither
MACHINE_TLS = ("UV_NATIVE_TLS=1", "UV_SYSTEM_CERTS=1", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt")
RUNNER = "true && source ~/.bashrc && export OMP_NUM_THREADS=1 PYTHONWARNINGS=ignore RAY_HEAD_IP={head} && ({cmd})"

# PID 1 of a node: reaps orphans (Ray's daemons re-parent to it) and holds the namespaces until killed
INIT = """
import os, time
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(1)
"""
SETUP = """
set -e
mount --make-rprivate /
mount --bind "$NODE_HOME" /root
mount -t tmpfs tmpfs /tmp && chmod 1777 /tmp
mount -t tmpfs tmpfs /run
ip link set lo up
exec /usr/bin/python3 -c "$INIT"
"""


class Node:
    """A fresh node: mount + PID namespaces (+ network when `net`), `home` seen as /root inside."""

    def __init__(self, home: Path, net: bool, logs: Path):
        self.home, self.logs, self.log = home, logs, []  # type: ignore[var-annotated]
        flags = ["--mount", "--pid", "--fork", "--mount-proc"] + (["--net"] if net else [])
        self.unshare = subprocess.Popen(["unshare", *flags, "sh", "-c", SETUP],
                                        env={"PATH": PATH, "NODE_HOME": str(home), "INIT": INIT})
        init = namespace_init(self.unshare)
        assert init is not None, "the node's namespaces"
        self.init = init

    def run(self, cmd: str, head_ip: str, timeout: float = 900) -> subprocess.CompletedProcess:
        """`cmd` as Ray's SSH runner runs a setup or start command: a login shell that sources ~/.bashrc."""
        start = time.time()
        out = subprocess.run(["nsenter", "-t", str(self.init), "-m", "-p", "-n", "--", "env", "-i", "HOME=/root",
                              f"PATH={PATH}", "USER=root", "LANG=C.UTF-8", *MACHINE_TLS, "bash", "--login", "-c", "-i",
                              RUNNER.format(head=head_ip, cmd=cmd)], capture_output=True, text=True,
                             timeout=timeout, stdin=subprocess.DEVNULL)
        self.log.append(f"$ {cmd.splitlines()[0][:100]}  [{time.time() - start:.0f} s, rc {out.returncode}]")
        print(self.log[-1], flush=True)
        self.logs.mkdir(exist_ok=True)
        (self.logs / f"{len(list(self.logs.iterdir())):02d}.log").write_text(f"$ {cmd}\n{out.stdout}\n{out.stderr}")
        assert out.returncode == 0, f"{cmd}\n{(out.stdout + out.stderr)[-5000:]}"
        return out

    def stop(self) -> None:
        end_namespace(self.init, self.unshare)


def _file_mounts(raw: dict, user_home: Path, node_home: Path) -> None:
    """What `ray up` rsyncs: each `file_mounts` source (relative to the repository, ~ the user's home) to its
    target under the node's home."""
    for target, source in raw["file_mounts"].items():
        src = Path(source.replace("~", str(user_home), 1)) if source.startswith("~") else REPO / source
        dst = node_home / target.removeprefix("~/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dst)


def _machine_ip() -> str:
    return subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=True).stdout.split()[0]


@pytest.fixture
def bridge():
    if os.geteuid() != 0 or not shutil.which("nsenter") or not Path("/usr/bin/python3").exists():
        pytest.skip("needs root (namespaces, a bridge), nsenter and a system python3")
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
    subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE], check=True)
    subprocess.run(["ip", "link", "set", BRIDGE, "up"], check=True)
    yield BRIDGE
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)


def _join_bridge(node: Node, ip: str) -> None:
    veth = f"{BRIDGE}w"
    subprocess.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", str(node.init)],
                   check=True)
    subprocess.run(["ip", "link", "set", veth, "master", BRIDGE, "up"], check=True)
    ns = ["nsenter", "-t", str(node.init), "-n", "--"]
    subprocess.run([*ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0"], check=True)
    subprocess.run([*ns, "ip", "link", "set", "eth0", "up"], check=True)
    subprocess.run([*ns, "ip", "route", "add", "default", "via", f"{SUBNET}.1"], check=True)


@pytest.mark.slow
@pytest.mark.verify
def test_aws_node_commands_run_on_fresh_nodes(bridge, tmp_path):
    raw = yaml.safe_load((REPO / "cluster" / "aws-gpu.yaml").read_text())
    user = tmp_path / "user-home"  # "Once, on your machine" (cluster/README.md): Ray's token, the secrets
    (user / ".ray").mkdir(parents=True)
    (user / ".ray" / "auth_token").write_text(secrets.token_hex(32))
    (user / ".gan-study").mkdir()
    admin_pw = secrets.token_urlsafe(16)
    (user / ".gan-study" / "secrets.env").write_text(
        f"MLFLOW_TRACKING_USERNAME=gan\nMLFLOW_TRACKING_PASSWORD={admin_pw}\n"
        f"GAN_STUDY_TRIAL_USERNAME=trials\nGAN_STUDY_TRIAL_PASSWORD={secrets.token_urlsafe(16)}\n")
    head_home, worker_home = tmp_path / "head-home", tmp_path / "worker-home"
    shutil.copytree("/etc/skel", head_home)  # a new user's home (.bashrc, .profile), as on a fresh image
    _file_mounts(raw, user, head_home)
    (head_home / "ray_bootstrap_config.yaml").write_text(yaml.safe_dump(raw))  # as `ray up` writes it
    head_ip = _machine_ip()
    head = Node(head_home, net=False, logs=tmp_path / "head-logs")
    worker: Node | None = None
    try:
        for cmd in raw["setup_commands"] + raw.get("head_setup_commands", []):
            head.run(cmd, head_ip)
        out = head.run("~/gan-study-venv/bin/python -c 'import study.run, trainables.step, torch, ray, mlflow; "
                       "print(\"IMPORTS\", torch.__version__, ray.__version__, mlflow.__version__)'", head_ip)
        assert "IMPORTS" in out.stdout, out.stdout
        shutil.copytree(head_home, worker_home, symlinks=True, copy_function=os.link)  # the same setup's result
        for cmd in raw["head_start_ray_commands"]:
            head.run(cmd, head_ip, timeout=300)
        with pytest.raises(urllib.error.HTTPError) as denied:  # the server on the head's address, login needed
            urllib.request.urlopen(f"http://{head_ip}:5000/api/2.0/mlflow/experiments/search?max_results=1",
                                   timeout=30)
        assert denied.value.code == 401

        worker = Node(worker_home, net=True, logs=tmp_path / "worker-logs")
        _join_bridge(worker, f"{SUBNET}.11")
        for cmd in raw["worker_setup_commands"] + raw["worker_start_ray_commands"]:
            worker.run(cmd, head_ip, timeout=300)
        assert "MLFLOW_TRACKING_PASSWORD" not in (worker_home / ".gan-study" / "secrets.env").read_text()
        assert "MLFLOW_TRACKING_PASSWORD" in (head_home / ".gan-study" / "secrets.env").read_text()
        probe = ("python -c 'import ray, time; ray.init(address=\"auto\", logging_level=\"ERROR\")\n"
                 "for _ in range(60):\n"
                 "    alive = sorted(n[\"NodeManagerAddress\"] for n in ray.nodes() if n[\"Alive\"])\n"
                 "    if len(alive) == 2: break\n"
                 "    time.sleep(2)\n"
                 "print(\"NODES\", alive)'")
        out = head.run(probe, head_ip, timeout=300)
        nodes = re.findall(r"NODES \[(.*)\]", out.stdout)
        assert nodes and sorted(re.findall(r"'([\d.]+)'", nodes[-1])) == sorted([head_ip, f"{SUBNET}.11"]), out.stdout
    finally:
        for node in (worker, head):
            if node is not None:
                node.stop()
        print("\n".join(head.log + (worker.log if worker else [])), file=sys.stderr)
