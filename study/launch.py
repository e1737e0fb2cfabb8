"""Start Ray, the MLflow parent run and the Tune experiment for a validated spec; resume; print the summary."""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")  # before Ray reads it
# Tune's automatic loggers: the CSV and JSON ones are passed explicitly (_run_config), TensorBoard's is not wanted
# (MLflow keeps the metrics), and without it Tune has no TensorBoard hint to print
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

import ray
import torch
from mlflow.tracking import MlflowClient
from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from study import seal, tracking
from study.console import StudyConsole, TrialNamer
from study.preflight import ray_address, spec_record, state_file, storage_root
from study.relocate import relocate_store
from study.schema import Spec
from study.searcher import searcher
from study.space import TrialBuilder
from study.spec import SpecError
from study.watchdog import FAULTS, StateSeal, StoreWatch, store_gone
from trainables import names
from trainables.config import deep_merge, resolve
from trainables.tune import GANTrainable


def prepare_data(spec: Spec) -> dict[str, Any]:
    """Fetch the dataset and train/cache its mode classifier once, on the driver, before any trial starts.
    A relative `data.root` becomes absolute in `spec.fixed` (trials run in their own directories)."""
    from trainables.data import load_dataset
    from trainables.evaluate import ModeScorer
    from trainables.step import build_context

    cfg = spec.base
    if cfg.data.root:
        spec.fixed = deep_merge(spec.fixed, {"data": {"root": str(Path(cfg.data.root).expanduser().resolve())}})
        spec._base = cfg = resolve(spec.fixed)
    data = load_dataset(cfg.data)
    try:  # build the nets once, so that a config that cannot be built fails here, not in every trial
        build_context(cfg, data.shape, torch.Generator(), torch.device("cpu"))
    except (ValueError, TypeError, KeyError) as err:
        raise SpecError(f"fixed: the trial config cannot be built: {err}") from None
    scorer = ModeScorer(data, cfg.data.root, torch.device("cpu"))
    return {"data": data.info or {}, "classifier": scorer.info}


def check_resources(spec: Spec, address: str | None = None) -> None:
    """Fail clearly when a trial asks for more CPUs or GPUs than any node has (Tune would wait forever).
    On a cluster started by `ray up`, node types the autoscaler can still start count as well."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    scalable = _autoscaling_node_types() if address or os.environ.get("RAY_ADDRESS") else []
    for key, want in (("CPU", spec.trial_resources["cpu"]), ("GPU", spec.trial_resources["gpu"])):
        best = max((n.get(key, 0.0) for n in nodes), default=0.0)
        if want > best and any(r.get(key, 0) >= want for r in scalable):
            print(f"resources.{key.lower()}: no node has {want:g} {key} yet; the autoscaler will start one", flush=True)
        elif want > best:
            raise SpecError(f"resources.{key.lower()}: a trial asks for {want:g} {key}, but the largest node has "
                            f"{best:g} (cluster total {ray.cluster_resources().get(key, 0):g})")


def _autoscaling_node_types(path: str = "~/ray_bootstrap_config.yaml", counts: bool = False) -> list[dict]:
    """Resources of the worker node types in the autoscaling config that `ray up` leaves on the head node;
    with `counts`, each type's resources once per worker the autoscaler may start of it (max_workers)."""
    import yaml

    try:
        config = yaml.safe_load(Path(path).expanduser().read_text()) or {}
    except (OSError, yaml.YAMLError):
        return []
    types = [(t.get("resources") or {}, int(t.get("max_workers", config.get("max_workers", 0)) or 0))
             for name, t in (config.get("available_node_types") or {}).items() if name != config.get("head_node_type")]
    return [resources for resources, workers in types if workers for _ in range(workers if counts else 1)]


def trial_slots(spec: Spec, address: str | None = None) -> int:
    """How many of the spec's trials fit on the cluster at once (per node: its CPUs and GPUs over the trial's);
    on a cluster started by `ray up`, the workers the autoscaler may still start count as well: a live worker
    is one of them already (it takes the place of a configured worker of its size), so none counts twice."""
    want = {"CPU": spec.trial_resources["cpu"], "GPU": spec.trial_resources["gpu"]}
    live = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    to_start = _autoscaling_node_types(counts=True) if address or os.environ.get("RAY_ADDRESS") else []
    for node in live:
        if to_start and "node:__internal_head__" not in node:
            same = [i for i, r in enumerate(to_start) if all(node.get(k, 0.0) == r.get(k, 0) for k in ("CPU", "GPU"))]
            to_start.pop(same[0] if same else 0)
    nodes = live + to_start
    # 1e-9: 1.0 GPU / 0.1 GPU is 10 trials, not 9 (Ray itself counts resources in units of 1e-4)
    return sum(min(int(node.get(k, 0.0) / w + 1e-9) for k, w in want.items() if w > 0) for node in nodes)


@contextlib.contextmanager
def pending_trials(spec: Spec, address: str | None = None) -> Iterator[None]:
    """Let Tune queue as many trials at once as the cluster has trial slots (issue #12), for this fit only.

    With a searcher of its own (OptunaSearch under the SeedRepeater) and no ConcurrencyLimiter, Tune queues a
    single pending trial at a time (ray/tune/execution/tune_controller.py, `_get_max_pending_trials`), so a study
    ran its trials one by one whatever the cluster had. TUNE_MAX_PENDING_TRIALS_PG, read when fit() builds its
    controller (a new run and a `--resume` alike, so a resumed study fills the cluster it resumes on), lifts that
    to the number of trial slots, never below Tune's 1. The searcher is left as it is: no ConcurrencyLimiter in
    front of the Repeater, nothing new in the pickled Tuner. A `max_concurrent` in the spec (the user's cap: Tune
    then wraps the searcher in a ConcurrencyLimiter and queues that many) and a TUNE_MAX_PENDING_TRIALS_PG set by
    the user are kept as they are."""
    key = "TUNE_MAX_PENDING_TRIALS_PG"
    if spec.max_concurrent is not None or key in os.environ:
        yield
        return
    os.environ[key] = str(max(1, trial_slots(spec, address)))
    try:
        yield
    finally:
        os.environ.pop(key, None)  # a later study of this process counts its own slots


def _read_text(path: str) -> str | None:
    if "://" not in path:
        return Path(path).read_text() if Path(path).is_file() else None
    import pyarrow.fs

    fs, fs_path = pyarrow.fs.FileSystem.from_uri(path)
    if fs.get_file_info(fs_path).type != pyarrow.fs.FileType.File:
        return None
    with fs.open_input_stream(fs_path) as f:
        return f.read().decode()


def _write_text(path: str, text: str) -> None:
    if "://" not in path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
        return
    import pyarrow.fs

    fs, fs_path = pyarrow.fs.FileSystem.from_uri(path)
    fs.create_dir(fs_path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(fs_path) as f:
        f.write(text.encode())


def _scheduler(spec: Spec):
    if spec.scheduler.name == "asha":
        return ASHAScheduler(time_attr="training_iteration", metric=spec.objective.metric, mode=spec.objective.mode,
                             max_t=spec.base.train.epochs, grace_period=spec.scheduler.grace_period,
                             reduction_factor=spec.scheduler.reduction_factor)
    return FIFOScheduler()


def _trainable(spec: Spec, uri: str, exp_id: str, parent: str):
    params = {"build": TrialBuilder(spec), "tracking_uri": uri, "experiment_id": exp_id, "parent_run_id": parent,
              "stop_on_collapse": spec.scheduler.name == "stop_on_collapse"}
    wrapped = tune.with_parameters(GANTrainable, **params)
    return tune.with_resources(wrapped, spec.trial_resources)  # per seed, times the seeds a trial trains together


def _run_config(spec: Spec, storage: str, name: str, uri: str) -> tune.RunConfig:
    """verbose=0 silences Tune's own reporter (it still reports errored trials): the study's console
    (study/console.py) shows the progress instead."""
    ckpt = tune.CheckpointConfig(checkpoint_frequency=spec.checkpoint.every, num_to_keep=spec.checkpoint.keep,
                                 checkpoint_at_end=True)
    callbacks = [StudyConsole(epochs=spec.base.train.epochs), CSVLoggerCallback(), JsonLoggerCallback(),
                 StateSeal(f"{storage}/{name}"), StoreWatch(uri)]  # the seal first: a probe may wait 10 s
    return tune.RunConfig(name=name, storage_path=str(storage), checkpoint_config=ckpt, callbacks=callbacks,
                          failure_config=tune.FailureConfig(max_failures=spec.max_failures), verbose=0)


class _TuneLines(logging.Filter):
    """Driver-side Tune lines that concern no study user: the result files written at the end, on Ctrl-C the
    advice to call `Tuner.restore(...)` (the study prints its own `--resume` command), and that a trial which
    reported no result yet (interrupted, or failed in setup) has no result file (MLflow has its record)."""

    DROP = ("Wrote the latest version of all result files", "Experiment has been interrupted",
            "Failed to fetch metrics for")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.DROP)


def quiet_tune() -> None:
    """Off the console: the lines of _TuneLines, and Optuna's notice that TPE's `group` option is experimental
    (docs/stack.md: chosen knowingly; it says nothing about the study)."""
    for name in ("ray.tune.tune", "ray.tune.analysis.experiment_analysis"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _TuneLines) for f in log.filters):
            log.addFilter(_TuneLines())
    warnings.filterwarnings("ignore", message="Argument ``group`` is an experimental feature")


def argv_is_ours() -> bool:
    """True when this process was started as the study CLI (so sys.argv holds its arguments)."""
    return any(a.endswith((".yaml", ".yml")) for a in sys.argv[1:]) and "--resume" not in sys.argv


def launch(spec: Spec, spec_path: Path, args: argparse.Namespace, n_cfg: int) -> int:
    """Run (or resume) the study; returns the process exit code."""
    tracking.quiet()
    quiet_tune()
    info = prepare_data(spec)
    print(f"data: {json.dumps(info['data'], default=str)}; "
          f"mode classifier: {json.dumps(info['classifier'], default=str)}")
    uri = tracking.resolve_uri(args.tracking_uri or spec.tracking.uri)
    key = spec.name + ("-quick" if args.quick else "")
    storage = storage_root(args, spec, key)
    relocate_store(uri)  # a moved study folder: its artifacts, before any run writes to the old path
    client = MlflowClient(uri)
    exp_id = tracking.experiment_id(client, spec.tracking.experiment or spec.name)
    view = tracking.share_study_view(client, exp_id, sorted(spec.search))
    print(f"MLflow tracking URI: {tracking.shown(uri)}  (open it: {tracking.ui_command(uri)})", flush=True)

    ray.init(address=ray_address(args), include_dashboard=False, ignore_reinit_error=True,
             runtime_env={"env_vars": {**tracking.http_env(), **tracking.trial_credentials(uri, exp_id),
                                       **{k: v for k, v in os.environ.items() if k.startswith("GAN_STUDY_")
                                          and k != tracking.TRIAL_USER_ENV[1]}}})
    check_resources(spec, args.address)
    if args.resume:
        tuner, parent, run_dir = _restore(spec, storage, client, uri, exp_id)
    else:
        run_name = time.strftime("%Y%m%d-%H%M%S")
        parent = tracking.start_parent(client, exp_id, spec, spec_path, f"{key}-{run_name}", sorted(spec.search),
                                       args.quick)
        run_dir = f"{storage}/{run_name}"
        _write_text(state_file(storage), json.dumps({"run_name": run_name, "parent_run_id": parent,
                                                     "spec": spec_record(spec)}))
        tune_cfg = tune.TuneConfig(search_alg=searcher(spec), scheduler=_scheduler(spec),
                                   num_samples=n_cfg * len(spec.seed_groups), max_concurrent_trials=spec.max_concurrent,
                                   trial_name_creator=TrialNamer(TrialBuilder(spec)),
                                   trial_dirname_creator=lambda t: t.trial_id, reuse_actors=True)
        tuner = tune.Tuner(_trainable(spec, uri, exp_id, parent), tune_config=tune_cfg,
                           run_config=_run_config(spec, storage, run_name, uri))
        seal.vouch_stored(run_dir, "tuner.pkl")  # written by the Tuner just now, straight to storage
    print(f"Ray results: {run_dir}  (parent MLflow run {parent})", flush=True)
    FAULTS.pop(uri, None)
    with pending_trials(spec, args.address):
        results = tuner.fit()
    resume = f"  python -m study.run {' '.join(sys.argv[1:] if argv_is_ours() else [str(spec_path)])} --resume"
    fault = FAULTS.get(uri) or store_gone(uri)
    if fault:  # Tune stopped on the watch's signal: every trial's state is saved, nothing more goes to the store
        print(f"\nerror: the MLflow store failed during the study: {fault}. The study stopped with every trial's "
              f"state saved; once the store is back (the file restored, the server answering), continue with:\n"
              f"{resume}", file=sys.stderr, flush=True)
        return 4
    done = [r for r in results if r.error or (r.metrics or {}).get(names.DONE)]
    if len(done) < n_cfg * len(spec.seed_groups):
        print(f"\nStudy interrupted: {len(done)} of {n_cfg * len(spec.seed_groups)} trials finished. Continue with:\n"
              f"{resume}", flush=True)
        return 130
    return _finish(client, uri, spec, parent, results, view)


def _restore(spec: Spec, storage: str, client: MlflowClient, uri: str, exp_id: str):
    state_text = _read_text(state_file(storage))
    if state_text is None:
        raise SpecError(f"--resume: no earlier run of study {storage.rsplit('/', 1)[-1]!r} under {storage}")
    state = json.loads(state_text)
    run_dir = f"{storage}/{state['run_name']}"
    if not tune.Tuner.can_restore(run_dir):
        raise SpecError(f"--resume: {run_dir} holds no restorable Tune experiment")
    seal.check(run_dir)  # before Tune unpickles anything of it
    client.update_run(state["parent_run_id"], status="RUNNING")
    tuner = tune.Tuner.restore(run_dir, trainable=_trainable(spec, uri, exp_id, state["parent_run_id"]),
                               resume_unfinished=True, resume_errored=True)
    print(f"resuming {run_dir}", flush=True)
    return tuner, state["parent_run_id"], run_dir


def _finish(client: MlflowClient, uri: str, spec: Spec, parent: str, results, view: str) -> int:
    from study.report import format_table, load_trials, summary_table

    trials = load_trials(spec.tracking.experiment or spec.name, tracking_uri=uri, parent_run_id=parent)
    table = summary_table(trials)
    text = format_table(table)
    print("\nStudy summary (median collapse epoch by Kaplan-Meier; 'N+' = no collapse within N epochs):")
    print(text)
    tracking.log_summary(client, parent, text, table.to_csv(index=False), table)
    errors = [r for r in results if r.error]
    client.set_terminated(parent, "FINISHED" if len(errors) < len(results) or not len(results) else "FAILED")
    exp_id = client.get_run(parent).info.experiment_id
    print(f"{len(results)} trials, {len(errors)} failed. MLflow: {tracking.shown(uri)}\n"
          f"Open the UI: {tracking.ui_command(uri)}, then {tracking.ui_url(uri, exp_id, view=view)}")
    if errors and len(errors) == len(results):
        return 1  # every trial failed
    return 3 if errors else 0  # 3: the study completed, but some trials failed (their runs hold the error)
