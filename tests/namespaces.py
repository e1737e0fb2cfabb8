"""The cluster tests' "hosts": Linux namespaces of this machine, started by `unshare ... --fork`. The SSH hosts of
tests/study/test_cluster_launcher.py (SshHost) and the fresh nodes of tests/study/test_cluster_aws_commands.py
share how such a namespace starts and ends."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(c) for t in os.listdir(f"/proc/{pid}/task")
                for c in Path(f"/proc/{pid}/task/{t}/children").read_text().split()]
    return []


def namespace_init(unshare: subprocess.Popen, limit: float = 10) -> int | None:
    """The PID (as this machine sees it) of PID 1 of the namespaces `unshare --fork` made; None if it died."""
    deadline = time.time() + limit
    while not children(unshare.pid) and time.time() < deadline and unshare.poll() is None:
        time.sleep(0.05)
    found = children(unshare.pid) if unshare.poll() is None else []
    return found[0] if found else None


def end_namespace(init: int, unshare: subprocess.Popen) -> None:
    """Kill PID 1 of the namespaces: the kernel kills everything in them."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(init, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        unshare.wait(timeout=10)


SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
# what the project's environment needs from the real /root (the venv's base interpreter under pyenv): mounted
# into each host's home at the same place, as a machine-wide Python install would be on a real host
_base = Path(os.path.realpath(sys.executable))
KEEP_IN_HOME = " ".join(sorted({p.relative_to("/root").parts[0] for p in (_base, Path(sys.base_prefix))
                                if p.is_relative_to("/root")}))

# PID 1 of a host: starts sshd, reaps orphans (Ray's daemons re-parent to it), exits with sshd
INIT = """
import os, subprocess, sys
sshd = subprocess.Popen(sys.argv[1:])
while True:
    pid, _ = os.wait()
    if pid == sshd.pid:
        sys.exit(0)
"""

# inside the new namespaces, before sshd: the host's own home, /tmp, /run and the "NFS" share
SETUP = """
set -e
mount --make-rprivate /
for keep in $KEEP_IN_HOME; do mkdir -p "$HOST_HOME/$keep" && mount --bind "/root/$keep" "$HOST_HOME/$keep"; done
mount --rbind "$HOST_HOME" /root
mount -t tmpfs tmpfs /mnt && mkdir -p /mnt/nfs/gan-study && mount --bind "$HOST_NFS" /mnt/nfs/gan-study
mount -t tmpfs tmpfs /tmp && chmod 1777 /tmp
mount -t tmpfs tmpfs /run && mkdir -p /run/sshd && chmod 755 /run/sshd
ip link set lo up
for _ in $(seq 200); do ip -4 addr show dev eth0 2>/dev/null | grep -q "inet $HOST_IP/" && break; sleep 0.1; done
exec "$PYTHON" -c "$INIT" "$SSHD" -D -e -f "$HOST_CFG"
"""


class SshHost:
    """sshd as PID 1's only child in new network, PID and mount namespaces, at `ip` on the test's bridge."""

    def __init__(self, root: Path, name: str, ip: str, bridge: str, pubkey: str):
        self.name, self.ip = name, ip
        self.home = root / f"{name}-home"
        (self.home / ".ssh").mkdir(parents=True)
        (self.home / ".ssh" / "authorized_keys").write_text(pubkey)
        os.chmod(self.home / ".ssh" / "authorized_keys", 0o600)
        cfg = self.home / ".sshd"  # seen as /root/.sshd inside (the test's /tmp is hidden there)
        cfg.mkdir()
        self.log = cfg / "log"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(cfg / "host_key")], check=True)
        (cfg / "sshd_config").write_text(
            f"ListenAddress {ip}\nPort 22\nHostKey /root/.sshd/host_key\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "PidFile none\nAllowTcpForwarding yes\nMaxSessions 50\nMaxStartups 50\nSubsystem sftp internal-sftp\n"
            "AcceptEnv LANG\n")
        env = {**os.environ, "HOST_HOME": str(self.home), "HOST_NFS": str(root / "nfs"),
               "HOST_CFG": "/root/.sshd/sshd_config", "HOST_IP": ip, "PYTHON": sys.executable,
               "KEEP_IN_HOME": KEEP_IN_HOME, "INIT": INIT, "SSHD": SSHD}
        self.unshare = subprocess.Popen(["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc",
                                         "sh", "-c", SETUP], env=env, stdout=self.log.open("w"),
                                        stderr=subprocess.STDOUT)
        init = namespace_init(self.unshare)
        if init is None:
            raise RuntimeError(f"namespaces for {name}: {self.log.read_text()}")
        self.init = init
        self.pidns = os.readlink(f"/proc/{self.init}/ns/pid")
        veth = f"{bridge}{name[0]}"
        subprocess.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", str(self.init)],
                       check=True)
        subprocess.run(["ip", "link", "set", veth, "master", bridge, "up"], check=True)
        ns = ["nsenter", f"--net=/proc/{self.init}/ns/net", "--"]
        subprocess.run([*ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0"], check=True)
        subprocess.run([*ns, "ip", "link", "set", "eth0", "up"], check=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((ip, 22), timeout=1):
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"sshd of {name} does not answer on {ip}:22: {self.log.read_text()[-3000:]}")

    def processes(self) -> dict[int, str]:
        """Every live process of this host but its init and sshd's listener: pid -> command line."""
        found = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                if os.readlink(f"/proc/{pid}/ns/pid") != self.pidns or pid == self.init:
                    continue
                stat = Path(f"/proc/{pid}/stat").read_text()
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[0] == "Z" or cmd.startswith(f"{SSHD} -D"):
                continue
            if cmd.startswith("sshd:") and "[listener]" in cmd:  # the listening daemon (sessions are its children)
                continue
            found[pid] = cmd
        return found

    def stop(self) -> None:
        end_namespace(self.init, self.unshare)
