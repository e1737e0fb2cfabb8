"""Checks made before Ray starts or anything is written: the address, the store, the storage path, the data
root, the resources of a local run, and that a resume has something to resume (SpecError, exit code 2)."""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import tempfile
from pathlib import Path

from study import seal, tracking
from study.schema import Spec
from study.spec import SpecError

STORE_SCHEMES = ("sqlite", "file", "http", "https", "databricks", "postgresql", "mysql", "mssql")
REACH_TIMEOUT_S = 10.0  # how long a store or a cluster may take to answer before the study is refused
_ADDRESS = re.compile(r"^(auto|local|(ray://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5})$")


def storage_root(args: argparse.Namespace, spec: Spec, key: str) -> str:
    """Where Ray keeps this study's runs: --storage-path, the spec's storage_path, $GAN_STUDY_STORAGE_PATH, else
    .studies/ray. A URI (s3://, gs://) stays a URI for Tune; file:// and local paths become absolute paths
    (workers run in trial directories). On several nodes it must be shared storage (object store or NFS)."""
    raw = str(args.storage_path or spec.storage_path or os.environ.get("GAN_STUDY_STORAGE_PATH")
              or tracking.default_home() / "ray")
    raw = raw.removeprefix("file://")
    if "://" in raw:
        return f"{raw.rstrip('/')}/{key}"
    return str(Path(raw).expanduser().resolve() / key)


def state_file(storage: str) -> str:
    """The file naming a study's latest run (for --resume)."""
    return f"{storage}/latest.json"


def ray_address(args: argparse.Namespace) -> str:
    """--address, else $RAY_ADDRESS (set by `ray job submit`), else "local": a Ray of the study's own on this
    machine, never a cluster that an earlier `ray start` left recorded here."""
    return args.address or os.environ.get("RAY_ADDRESS") or "local"


def _writable(path: Path, what: str) -> None:
    """SpecError unless `path` is a directory that can be written, or could be created (nothing is created)."""
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise SpecError(f"{what}: {probe} is a file, not a directory")
    try:  # os.access says yes to root everywhere (even /proc); a file that is created and gone is the test
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError:
        raise SpecError(f"{what}: {probe} is not writable") from None


def spec_record(spec: Spec) -> dict:
    """The validated spec as plain JSON data: what a resume compares with the run it continues."""
    return json.loads(spec.model_dump_json())


def _flat(tree: object, prefix: str = "") -> dict[str, object]:
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{prefix}{key}.").items()}


def check_unchanged(recorded: dict | None, spec: Spec) -> None:
    """SpecError listing what differs between the spec a run started with and the one given to resume it."""
    if recorded is None:  # a run started before specs were recorded: nothing to compare
        return
    old, new = _flat(recorded), _flat(spec_record(spec))
    def show(tree: dict[str, object], k: str) -> str:
        return repr(tree[k]) if k in tree else "(unset)"

    changed = [f"{k}: {show(old, k)} -> {show(new, k)}"
               for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    if changed:
        shown = "; ".join(changed[:4]) + (f"; and {len(changed) - 4} more" if len(changed) > 4 else "")
        raise SpecError(f"--resume: the spec differs from the run it resumes ({shown}); resume with the same spec, "
                        "--quick and --set values, or pass --allow-changed-spec")


def check(spec: Spec, args: argparse.Namespace, key: str) -> None:
    """Everything about this run that can be checked before Ray starts."""
    if args.address is not None and not _ADDRESS.match(args.address):
        raise SpecError(f"--address {args.address!r}: expected auto, local, HOST:PORT or ray://HOST:PORT")
    uri = args.tracking_uri or spec.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        scheme = uri.split(":", 1)[0] if ":" in uri else ""
        if scheme not in STORE_SCHEMES:
            raise SpecError(f"--tracking-uri {uri!r}: unknown scheme {scheme or '(none)'!r}; use sqlite:///PATH, "
                            f"http(s)://HOST:PORT or another MLflow store ({', '.join(STORE_SCHEMES)})")
    uri = uri or f"sqlite:///{tracking.default_home() / 'mlflow.db'}"
    if uri.startswith(("http://", "https://")):
        _store_answers(uri)
        _logins(uri, cluster=ray_address(args) != "local" and not args.dry_run)
    if uri.split(":", 1)[0].split("+", 1)[0] in DB_PORTS:
        _database_answers(uri)
    if uri.startswith("sqlite:///"):
        _writable(Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent, "--tracking-uri")
    storage = storage_root(args, spec, key)
    if "://" not in storage:
        _writable(Path(storage), "--storage-path")
        if args.resume and not Path(state_file(storage)).is_file():
            raise SpecError(f"--resume: no earlier run of study {key!r} under {storage}")
        if args.resume:
            state = json.loads(Path(state_file(storage)).read_text())
            if not getattr(args, "allow_changed_spec", False):
                check_unchanged(state.get("spec"), spec)
            if Path(storage, state["run_name"], "tuner.pkl").is_file():  # else launch says there is nothing to resume
                seal.check(f"{storage}/{state['run_name']}")
    root = spec.base.data.root
    if root and Path(root).expanduser().exists() and not Path(root).expanduser().is_dir():
        raise SpecError(f"fixed.data.root: {root} is a file, not a directory")
    if ray_address(args) == "local" and not args.dry_run:  # a dry run may plan a study for a cluster
        _local_resources(spec)
    elif not args.dry_run:
        _cluster_answers(ray_address(args))


def _connect(host: str, port: int) -> str | None:
    """None when a TCP connection to host:port opens within REACH_TIMEOUT_S, else why not."""
    try:
        socket.create_connection((host, port), timeout=REACH_TIMEOUT_S).close()
    except TimeoutError:
        return f"no answer within {REACH_TIMEOUT_S:g} s"
    except OSError as err:
        return err.strerror or type(err).__name__
    return None


def _store_answers(uri: str) -> None:
    """An HTTP tracking server must answer (any HTTP status, 401 included) within REACH_TIMEOUT_S."""
    why = tracking.server_fault(uri, REACH_TIMEOUT_S)
    if why:
        raise SpecError(f"tracking URI {uri}: the MLflow server cannot be reached ({why}); start it "
                        "(cluster/start_mlflow.sh) or pass another --tracking-uri")


DB_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}  # MLflow's database stores, their default ports


def _database_answers(uri: str) -> None:
    """A database store's server must accept a TCP connection within REACH_TIMEOUT_S (no driver needed)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(uri)
    except ArgumentError:
        raise SpecError("--tracking-uri: not a database URL (dialect://user:password@host:port/database)") from None
    shown = tracking.shown(uri)
    why = _connect(url.host or "localhost", url.port or DB_PORTS[url.get_backend_name()])
    if why:
        raise SpecError(f"tracking URI {shown}: the database server cannot be reached ({why}); start it or pass "
                        "another --tracking-uri")


def _logins(uri: str, cluster: bool) -> None:
    """A basic-auth server must take the driver's login; on a cluster the trials log as the trial user (least
    privilege: the admin login stays with the driver), whose login the server must take as well."""
    if not tracking.asks_login(uri, REACH_TIMEOUT_S):
        return
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if not (user and password):
        raise SpecError(f"tracking URI {uri}: the server asks for a login; set MLFLOW_TRACKING_USERNAME and "
                        "MLFLOW_TRACKING_PASSWORD (cluster/README.md)")
    if tracking.asks_login(uri, REACH_TIMEOUT_S, user, password):
        raise SpecError(f"tracking URI {uri}: the server refuses the login of MLFLOW_TRACKING_USERNAME={user!r}")
    trial_user, trial_password = (os.environ.get(k) for k in tracking.TRIAL_USER_ENV)
    if cluster and not (trial_user and trial_password):
        raise SpecError(f"tracking URI {uri}: on a cluster the trials log as a non-admin trial user, not with "
                        f"the admin login; set {' and '.join(tracking.TRIAL_USER_ENV)} to the user "
                        "cluster/start_mlflow.sh creates (cluster/README.md)")
    if trial_user and tracking.asks_login(uri, REACH_TIMEOUT_S, trial_user, trial_password):
        raise SpecError(f"tracking URI {uri}: the server refuses the login of "
                        f"{tracking.TRIAL_USER_ENV[0]}={trial_user!r}")


def _cluster_answers(address: str) -> None:
    """The Ray cluster of --address / $RAY_ADDRESS must accept a connection within REACH_TIMEOUT_S; `auto` is
    the cluster the last `ray start` on this machine recorded, which must still be running."""
    shown = address
    if address == "auto":
        from ray._private.services import canonicalize_bootstrap_address

        try:
            address = canonicalize_bootstrap_address("auto") or ""
        except ConnectionError:
            address = ""
        if not address:
            raise SpecError("--address auto: no Ray cluster was started on this machine (`ray start --head`)")
        shown = f"auto ({address})"
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not port.isdigit() or "/" in host:  # not HOST:PORT (an http:// job address in $RAY_ADDRESS): Ray decides
        return
    why = _connect(host.strip("[]"), int(port))
    if not why and not address.startswith("ray://"):  # a GCS port (ray:// is Ray Client's own protocol)
        why = _gcs_silent(address)
    if why:
        raise SpecError(f"--address {shown}: no Ray cluster answers there ({why}); without --address the study "
                        "runs on a Ray of its own on this machine")


def _gcs_silent(address: str) -> str | None:
    """None when a Ray GCS answers at address, else why not: ray.init would retry about 20 times for over 5
    minutes against a port where something else listens. Ray's own client, its C++ warnings kept off the
    terminal; about 13 s when nothing answers (its connect waits, then REACH_TIMEOUT_S / 3)."""
    from ray._raylet import InnerGcsClient  # type: ignore[attr-defined]  # Ray's own GCS client (Cython)

    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            InnerGcsClient.standalone(address, None, int(REACH_TIMEOUT_S * 1000 / 3))
    except Exception as err:  # RpcError (timed out), or a refused handshake
        return f"the port is open, but no Ray GCS answers: {str(err).splitlines()[0][:120]}"
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return None


def _local_resources(spec: Spec) -> None:
    """A trial on a Ray of this machine cannot ask for more CPUs or GPUs than the machine has."""
    import torch

    cpus, gpus = os.cpu_count() or 1, torch.cuda.device_count()
    want = spec.trial_resources  # per seed, times the seeds a trial trains together (seeds_per_trial)
    times = " (per seed, x seeds_per_trial)" if spec.seeds_per_trial > 1 else ""
    if want["cpu"] > cpus:
        raise SpecError(f"resources.cpu: a trial asks for {want['cpu']:g} CPUs{times}; this machine has {cpus}")
    if want["gpu"] > gpus:
        raise SpecError(f"resources.gpu: a trial asks for {want['gpu']:g} GPUs{times}; this machine has {gpus}")
