"""The Ray Tune Trainable: a thin wrapper around GANRun that logs each epoch to an MLflow child run."""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ray
import torch
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray import tune

from trainables import names
from trainables.config import TrialConfig, flatten
from trainables.plots import save_samples
from trainables.run import GANRun

# What the study side hands every trial: (Tune's sampled config) -> its TrialConfig, and -> its searched
# values as text (study.space.TrialBuilder); trainables/ knows nothing of the search encoding.
BuildTrial = Callable[[Mapping[str, Any]], TrialConfig]


def _retry(fn, *args, tries: int = 6, **kwargs):
    """Call an MLflow client method, retrying while a shared SQLite store is locked."""
    for attempt in range(tries):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            if "locked" not in str(err) or attempt == tries - 1:
                raise
            time.sleep(0.2 * 2**attempt)


class GANTrainable(tune.Trainable):
    """setup builds a GANRun; step = one epoch, logged to the trial's MLflow child run; checkpoints hold the state.

    The child run is created (or, for a restored or retried trial, reattached by Ray trial id) at the first
    step, not in setup: Tune may start an actor for a trial and then discard it for a reused one, and such an
    actor must leave no trace in MLflow.
    """

    def setup(  # type: ignore[override]  # tune.with_parameters passes the rest
        self, config: dict, build: Any, tracking_uri: str, experiment_id: str, parent_run_id: str,
        stop_on_collapse: bool = False,
    ) -> None:
        self.setup_kwargs = {"build": build, "tracking_uri": tracking_uri, "experiment_id": experiment_id,
                             "parent_run_id": parent_run_id, "stop_on_collapse": stop_on_collapse}
        self.trial_cfg: TrialConfig = build(config)  # resolved once per trial
        self.search_values: dict[str, str] = build.values(config)
        self.stop_on_collapse = stop_on_collapse
        self.client = MlflowClient(tracking_uri)
        self.mlflow_run_id: str | None = None
        self.attached, self.finished = False, False
        self.logged_upto, self.logged_collapse = 0, False
        resources = self.trial_resources.required_resources if self.trial_resources else {}
        threads = self.trial_cfg.train.threads or resources.get("CPU", 1)
        torch.set_num_threads(max(1, int(threads)))
        device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.run = GANRun(self.trial_cfg, device=device)
        except Exception as err:  # a trial that cannot even be built is a FAILED run with its error
            self._attach()
            self._finish("FAILED", names.FAILED, error="".join(traceback.format_exception(err))[-5000:])
            raise
        self.grid_every = self.trial_cfg.eval.grid_every

    def _attach(self) -> None:
        """Create this trial's child run, or reattach to it (restore, retry): epochs already logged are
        recomputed identically after a restore, so they are not logged again."""
        if self.attached:
            return
        kw = self.setup_kwargs
        if self.mlflow_run_id is None:
            found = _retry(self.client.search_runs, [kw["experiment_id"]], filter_string=(
                f"tags.`{names.TRIAL_ID}` = '{self.trial_id}' and tags.{names.PARENT} = '{kw['parent_run_id']}'"))
            self.mlflow_run_id = found[0].info.run_id if found else self._create_run()
        else:
            found = [_retry(self.client.get_run, self.mlflow_run_id)]
        if found:
            _retry(self.client.update_run, self.mlflow_run_id, status="RUNNING")
            history = _retry(self.client.get_metric_history, self.mlflow_run_id, names.EPOCHS_SURVIVED)
            self.logged_upto = max((m.step for m in history), default=0)
            self.logged_collapse = names.COLLAPSE_EPOCH in found[0].data.metrics
        # the node this trial (or its retry after a node failure) runs on: placement across a cluster
        _retry(self.client.set_tag, self.mlflow_run_id, names.NODE_ID, ray.get_runtime_context().get_node_id())
        self.attached = True

    def _create_run(self) -> str:
        flat = flatten(self.trial_cfg.dump())
        tags = {names.PARENT: self.setup_kwargs["parent_run_id"], names.TRIAL_ID: self.trial_id,
                names.ROLE: names.ROLE_TRIAL, names.OUTCOME: names.RUNNING,
                names.CONFIG_KEY: json.dumps(sorted(self.search_values.items()))}
        run = _retry(self.client.create_run, self.setup_kwargs["experiment_id"], tags=tags,
                     run_name=f"{self.trial_id}-seed{flat['seed']}")
        params = [Param(k, str(v)[:6000]) for k, v in flat.items()]
        params += [Param(names.SEARCH_PARAM + k, v[:6000]) for k, v in self.search_values.items()]
        if hasattr(self, "run"):
            params += [Param(names.DATA_INFO_PARAM + k, str(v)) for k, v in (self.run.data.info or {}).items()]
            params += [Param(names.CLASSIFIER_PARAM + k, str(v)) for k, v in self.run.scorer.info.items()]
        for i in range(0, len(params), 100):
            _retry(self.client.log_batch, run.info.run_id, params=params[i : i + 100])
        return run.info.run_id

    def step(self) -> dict[str, Any]:
        self._attach()
        try:
            result = self.run.step()
        except Exception as err:
            self._finish("FAILED", names.FAILED, error="".join(traceback.format_exception(err))[-5000:])
            raise
        self._log_epoch(result)
        result["outcome"] = self.run.outcome
        result[names.EPOCHS_PLANNED] = self.run.epochs
        result["done"] = self.run.done or (self.stop_on_collapse and bool(result["collapsed"]))
        return {k: v for k, v in result.items() if k != "error"}

    def _log_epoch(self, result: Mapping[str, Any]) -> None:
        epoch, now = int(result["epoch"]), int(time.time() * 1000)
        if epoch <= self.logged_upto:
            return
        metrics = [Metric(k, float(v), now, epoch) for k, v in result.items()
                   if isinstance(v, (int, float)) and k != "epoch" and math.isfinite(float(v))
                   and (k != names.COLLAPSE_EPOCH or not self.logged_collapse)]
        _retry(self.client.log_batch, self.mlflow_run_id, metrics=metrics)
        at_collapse = bool(result.get("collapsed")) and not self.logged_collapse
        self.logged_collapse = self.logged_collapse or bool(result.get("collapsed"))
        if result.get("error"):
            _retry(self.client.set_tag, self.mlflow_run_id, names.ERROR, str(result["error"])[:5000])
        if at_collapse or epoch % self.grid_every == 0 or self.run.done:
            self._log_samples(epoch, "collapse" if at_collapse else "epoch")

    def _log_samples(self, epoch: int, why: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{why}_{epoch:04d}.png"
            save_samples(self.run.samples(), self.run.data, path, title=f"epoch {epoch}")
            _retry(self.client.log_artifact, self.mlflow_run_id, str(path), names.SAMPLES_DIR)
            surface = self.run.d_surface_png(Path(tmp) / f"d_surface_{epoch:04d}.png")  # 2D data only
            if surface is not None:
                _retry(self.client.log_artifact, self.mlflow_run_id, str(surface), names.D_SURFACE_DIR)

    def _finish(self, status: str, outcome: str, error: str | None = None) -> None:
        if self.finished or not self.attached:
            return
        self.finished = True
        tags = [RunTag(names.OUTCOME, outcome)] + ([RunTag(names.ERROR, error)] if error else [])
        _retry(self.client.log_batch, self.mlflow_run_id, tags=tags)
        _retry(self.client.set_terminated, self.mlflow_run_id, status)

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        torch.save({"run": self.run.state_dict(), "mlflow_run_id": self.mlflow_run_id,
                    "logged_collapse": self.logged_collapse}, os.path.join(checkpoint_dir, "state.pt"))
        return None

    def load_checkpoint(self, checkpoint: str) -> None:  # type: ignore[override]  # a directory, as saved
        state = torch.load(os.path.join(checkpoint, "state.pt"), weights_only=True)  # never executes code
        self.run.load_state_dict(state["run"])
        self.mlflow_run_id, self.attached = state["mlflow_run_id"], False  # reattached at the next step

    def reset_config(self, new_config: dict) -> bool:
        """Actor reuse (reuse_actors=True): end this trial's MLflow run and set up the next trial in place."""
        self.cleanup()
        self.__dict__.pop("run", None)
        GANTrainable.setup(self, new_config, **self.setup_kwargs)  # not self.setup: tune.with_parameters wraps it
        return True

    def cleanup(self) -> None:
        """Ends the MLflow run; also called when a scheduler or stopper ends the trial early."""
        if not hasattr(self, "run"):
            return self._finish("FAILED", names.FAILED)
        outcome = self.run.outcome
        if outcome == names.RUNNING:
            outcome = names.COLLAPSED_OUTCOME if self.run.status["collapsed"] else names.STOPPED
        self._finish("FINISHED", outcome)
