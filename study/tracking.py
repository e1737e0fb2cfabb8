"""Driver-side MLflow: tracking URI, experiment, and the study's parent run with its artifacts."""
from __future__ import annotations

import hashlib
import json
import os
import re
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from mlflow.tracking import MlflowClient

from trainables import names


def default_home() -> Path:
    """Where studies keep their local MLflow store and Ray results: $GAN_STUDY_HOME, else ./.studies."""
    return Path(os.environ.get("GAN_STUDY_HOME") or Path.cwd() / ".studies").resolve()


def resolve_uri(uri: str | None) -> str:
    """An absolute tracking URI (workers run in trial directories, so relative paths would move)."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{default_home() / 'mlflow.db'}"
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = Path(uri.removeprefix("sqlite:///")).resolve()
        uri = f"sqlite:///{path}"
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return uri


def sqlite_path(uri: str) -> Path | None:
    """The file of a sqlite:/// store, else None."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def _get(uri: str, request: str | urllib.request.Request, timeout: float) -> None:
    """GET from the tracking server at `uri`, trusting the CA MLflow's client trusts for TLS; raises as urlopen."""
    ca = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH")
    context = ssl.create_default_context(cafile=ca) if ca and uri.startswith("https://") else None
    urllib.request.urlopen(request, timeout=timeout, context=context).close()


def server_fault(uri: str, timeout: float) -> str | None:
    """None when the HTTP tracking server answers /health within `timeout` (any HTTP status counts), else why not."""
    try:
        _get(uri, f"{uri.rstrip('/')}/health", timeout)
    except urllib.error.HTTPError:
        return None  # it answered (a basic-auth server's 401)
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        return f"no answer within {timeout:g} s" if isinstance(reason, TimeoutError) else str(reason)
    return None


def asks_login(uri: str, timeout: float, user: str | None = None, password: str | None = None) -> bool:
    """Whether the HTTP tracking server answers a run search with 401 to these basic-auth credentials (none: no
    header); /health is open on MLflow's basic-auth server. A server that does not answer counts as not asking
    (server_fault reports it)."""
    import base64

    request = urllib.request.Request(f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search?max_results=1")
    if user is not None:
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        _get(uri, request, timeout)
    except urllib.error.HTTPError as err:
        return err.code == 401
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return False


# MLflow's HTTP client waits 120 s per request and retries 7 times (about 4 min of backoff): a trial would hang
# for many minutes on a dead server. The study's trials wait 30 s and retry 4 times (2+4+8+16 s); a variable
# already set wins. The driver's watch (study/watchdog.py) stops the study within seconds of the server's silence.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "4"}


def http_env() -> dict[str, str]:
    """HTTP_DEFAULTS set in this process where unset; the values, for the trials' runtime_env."""
    return {k: os.environ.setdefault(k, v) for k, v in HTTP_DEFAULTS.items()}


TRIAL_USER_ENV = ("GAN_STUDY_TRIAL_USERNAME", "GAN_STUDY_TRIAL_PASSWORD")  # the non-admin MLflow user of trials


def trial_credentials(uri: str, exp_id: str) -> dict[str, str]:
    """On a basic-auth server, with GAN_STUDY_TRIAL_USERNAME/PASSWORD set (the user cluster/start_mlflow.sh
    creates): give that user EDIT on the study's experiment (the driver holds the admin credentials) and return
    the MLflow credentials the trials log with. Else {} (the trials use the driver's credentials)."""
    user, password = (os.environ.get(k) for k in TRIAL_USER_ENV)
    if not (user and password and uri.startswith(("http://", "https://"))):
        return {}
    from mlflow.exceptions import RestException
    from mlflow.server import get_app_client

    try:
        get_app_client("basic-auth", tracking_uri=uri).grant_user_permission(user, "experiment", exp_id, "EDIT")
    except RestException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":  # granted by an earlier run of the study
            raise
    return {"MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password}


def git_commit() -> str:
    """The checkout's commit (with '-dirty' when it has uncommitted changes), or 'unknown'."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True,
                               text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


KIND_TAG, KIND = "mlflow.experimentKind", "custom_model_development"  # MLflow 3's kind for model training


def experiment_id(client: MlflowClient, name: str) -> str:
    """The study's experiment, created on first use and tagged with MLflow 3's model-training kind (the UI's
    view is chosen by its `workflowType` URL parameter: ui_url)."""
    found = client.get_experiment_by_name(name)
    if found:
        if found.tags.get(KIND_TAG) != KIND:
            client.set_experiment_tag(found.experiment_id, KIND_TAG, KIND)
        return found.experiment_id
    return client.create_experiment(name, artifact_location=artifact_root(client.tracking_uri, name),
                                    tags={KIND_TAG: KIND})


ARTIFACTS_DIR = "mlartifacts"  # beside a local store: its experiments' artifacts (study/relocate.py reads it)


def artifact_root(uri: str, name: str) -> str | None:
    """A local SQLite store keeps a new experiment's artifacts beside the database: MLflow's default (./mlruns) follows
    the working directory, and a submitted Ray job's working directory is deleted after the job. A server
    (`mlflow server --artifacts-destination`) chooses its own."""
    if not uri.startswith("sqlite:///"):
        return None
    return str(Path(uri.removeprefix("sqlite:///")).parent / ARTIFACTS_DIR / name)


def start_parent(client: MlflowClient, exp_id: str, spec: Any, spec_path: Path, run_name: str,
                 search_keys: list[str], quick: bool) -> str:
    """Create the study's parent run with the spec file, its resolved config and the git commit."""
    commit = git_commit()
    tags = {names.ROLE: names.ROLE_STUDY, names.STUDY: spec.name, names.SEARCH_KEYS: json.dumps(search_keys),
            names.QUICK: str(quick), "mlflow.source.git.commit": commit, "git_commit": commit}
    run = client.create_run(exp_id, tags=tags, run_name=run_name)
    rid = run.info.run_id
    params = {"study.name": spec.name, "study.seeds": len(spec.seed_list), "study.trials": spec.trials,
              "study.scheduler": spec.scheduler.name, "train.epochs": spec.base.train.epochs,
              "objective.metric": spec.objective.metric, "objective.mode": spec.objective.mode}
    for k, v in params.items():
        client.log_param(rid, k, str(v))
    with tempfile.TemporaryDirectory() as tmp:
        resolved = Path(tmp) / "resolved.yaml"
        dumped = {**spec.model_dump(mode="json"), "fixed": spec.base.dump()}  # the trial config as resolved
        resolved.write_text(yaml.safe_dump(dumped, sort_keys=False))
        client.log_artifact(rid, str(spec_path), "spec")
        client.log_artifact(rid, str(resolved), "spec")
    return rid


def log_summary(client: MlflowClient, run_id: str, table_text: str, table_csv: str, table: Any = None) -> None:
    """Attach the study summary to the parent run: summary.txt and summary.csv, the table as the run's description
    (what the MLflow UI shows first) and, given the table itself, its numbers per arm as metrics
    (`arm/<configuration>/<column>`, e.g. arm/flip 0.05/collapse_incidence) to chart arms side by side."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in (("summary.txt", table_text), ("summary.csv", table_csv)):
            (Path(tmp) / name).write_text(text)
            client.log_artifact(run_id, str(Path(tmp) / name))
    client.set_tag(run_id, names.NOTE, description(table_text))
    metrics = arm_metrics(table) if table is not None else []
    for i in range(0, len(metrics), 500):
        client.log_batch(run_id, metrics=metrics[i : i + 500])


def description(table_text: str) -> str:
    """The parent run's description (markdown): the summary table as preformatted text."""
    return ("**Study summary**: one row per configuration (median collapse epoch by Kaplan-Meier; "
            "'N+' = no collapse within N epochs; docs/collapse.md)\n\n```\n" + table_text + "\n```\n")


ARM_COLUMNS = ("seeds", "collapsed", "never_diverse", "diverged", "collapse_incidence", "divergence_incidence",
               "final_diversity_mean", "median_collapse_epoch")


def arm_metrics(table: Any) -> list:
    """The summary table's numbers as parent-run metrics, one group per row; text cells ("n/a", "69+") left out."""
    import math
    import re
    import time

    from mlflow.entities import Metric

    from trainables.naming import compact, short_keys

    keys = list(table.attrs.get("search_keys") or [])
    short, now, out = short_keys(keys), int(time.time() * 1000), []
    for _, row in table.iterrows():
        label = " ".join(f"{short[k]} {compact(str(row[k]))}" for k in keys) or "all"
        label = re.sub(r"[^\w.\- ]", "_", label)[:150]  # the characters MLflow allows in a metric name
        for column in ARM_COLUMNS:
            try:
                value = float(row[column])
            except (KeyError, TypeError, ValueError):
                continue
            if math.isfinite(value):
                out.append(Metric(f"{names.ARM_METRIC}{label}/{column}", value, now, 0))
    return out


def shown(uri: str) -> str:
    """The URI as printed: a password in it (postgresql://user:PASSWORD@host/db) as ***."""
    return re.sub(r"(//[^:/@]+):[^@/]*@", r"\1:***@", uri)


def ui_command(uri: str) -> str:
    return f"mlflow ui --backend-store-uri {shown(uri)}"


def ui_url(uri: str, exp_id: str, port: int = 5000, view: str | None = None) -> str:
    """The experiment's runs table: a tracking server is its own UI, a local store's is `mlflow ui` on `port`;
    `workflowType=machine_learning`, else MLflow 3.17 opens an empty GenAI overview. With `view` (the key of a
    shared view, study_view) the runs tab opens on that view: MLflow applies `viewStateShareKey` on the runs
    route only."""
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else f"http://127.0.0.1:{port}"
    if view:
        return f"{base}/#/experiments/{exp_id}/runs?workflowType=machine_learning&viewStateShareKey={view}"
    return f"{base}/#/experiments/{exp_id}?workflowType=machine_learning"


VIEW_TAG = "mlflow.sharedViewState."  # MLflow 3's shared runs-table views: an experiment tag per view
VIEW_PREFIX = "gan-study-"
VIEW_METRICS = (names.COLLAPSE_EPOCH, names.CENSOR_EPOCH, names.EPOCHS_SURVIVED, names.DIVERSITY, names.HQ_FRACTION,
                names.OUTCOME_CODE)


def study_view(search_keys: list[str]) -> tuple[str, str]:
    """The runs-table view of a study -> (its key, its state as MLflow's UI reads it: plain JSON). Its columns,
    instead of the UI's default Source/Models/Dataset: the searched keys, the seed, the outcome, the collapse and
    censoring epochs, epochs survived, diversity and quality (a trial's latest value: its last epoch's). Column ids
    are the UI's: the kind, a dot and the name in backticks (metrics.`eval/diversity`)."""
    columns = ([f"params.`{names.SEARCH_PARAM}{k}`" for k in search_keys]
               + [f"params.`{names.SEED_PARAM}`", f"tags.`{names.OUTCOME}`"]
               + [f"metrics.`{m}`" for m in VIEW_METRICS])
    text = json.dumps({"selectedColumns": columns})
    return VIEW_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:10], text


def share_study_view(client: MlflowClient, exp_id: str, search_keys: list[str]) -> str:
    """Store the study's view on its experiment (what the UI's Share button does) -> its key for ui_url."""
    key, text = study_view(search_keys)
    client.set_experiment_tag(exp_id, VIEW_TAG + key, text)
    return key


def views_of(tags: dict[str, str]) -> list[str]:
    """The keys of the study views stored on an experiment (its tags), sorted."""
    return sorted(k.removeprefix(VIEW_TAG) for k in tags if k.startswith(VIEW_TAG + VIEW_PREFIX))


def quiet() -> None:
    """Keep MLflow's own start-up chatter (alembic migrations) off the study's output."""
    import logging

    for name in ("alembic", "mlflow.store.db.utils", "mlflow.tracking.fluent"):
        logging.getLogger(name).setLevel(logging.WARNING)
