"""The Ray Tune Trainable: a thin wrapper around GANRun that logs each epoch to an MLflow child run."""
from __future__ import annotations

import math
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Mapping

import ray
import torch
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray import tune

from trainables.config import deep_merge, expand_remedy_choice, flatten, resolve, unflatten
from trainables.plots import save_samples
from trainables.run import GANRun

TRIAL_INDEX = "__trial_index__"  # set by ray.tune.search.Repeater: which seed of the configuration this is


def trial_config(base: Mapping[str, Any], sampled: Mapping[str, Any], seeds: list[int]) -> dict[str, Any]:
    """Base trial config <- sampled dotted keys; the Repeater's index picks the seed."""
    flat = expand_remedy_choice({k: v for k, v in sampled.items() if k != TRIAL_INDEX})
    config = deep_merge(base, unflatten(flat))
    config["seed"] = int(seeds[int(sampled.get(TRIAL_INDEX, 0)) % len(seeds)])
    return config


def _retry(fn, *args, tries: int = 6, **kwargs):
    """Call an MLflow client method, retrying while a shared SQLite store is locked."""
    for attempt in range(tries):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - MLflow wraps the driver's error
            if "locked" not in str(err) or attempt == tries - 1:
                raise
            time.sleep(0.2 * 2**attempt)


class GANTrainable(tune.Trainable):
    """setup builds a GANRun; step = one epoch, logged to the trial's MLflow child run; checkpoints hold the state.

    The child run is created (or, for a restored or retried trial, reattached by Ray trial id) at the first
    step, not in setup: Tune may start an actor for a trial and then discard it for a reused one, and such an
    actor must leave no trace in MLflow.
    """

    def setup(self, config: dict, base: dict, seeds: list[int], tracking_uri: str, experiment_id: str,
              parent_run_id: str, search_keys: list[str], stop_on_collapse: bool = False) -> None:
        self.setup_kwargs = {"base": base, "seeds": seeds, "tracking_uri": tracking_uri, "experiment_id": experiment_id,
                             "parent_run_id": parent_run_id, "search_keys": search_keys,
                             "stop_on_collapse": stop_on_collapse}
        self.trial_cfg = resolve(trial_config(base, config, seeds))
        self.stop_on_collapse, self.search_keys = stop_on_collapse, search_keys
        self.client = MlflowClient(tracking_uri)
        self.mlflow_run_id, self.attached, self.finished = None, False, False
        self.logged_upto, self.logged_collapse = 0, False
        threads = self.trial_cfg["train"].get("threads") or self.trial_resources.required_resources.get("CPU", 1)
        torch.set_num_threads(max(1, int(threads)))
        device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.run = GANRun(self.trial_cfg, device=device)
        except Exception as err:  # a trial that cannot even be built is a FAILED run with its error
            self._attach()
            self._finish("FAILED", "failed", error="".join(traceback.format_exception(err))[-5000:])
            raise
        self.grid_every = int(self.run.config["eval"]["grid_every"])

    def _attach(self) -> None:
        """Create this trial's child run, or reattach to it (restore, retry): epochs already logged are
        recomputed identically after a restore, so they are not logged again."""
        if self.attached:
            return
        kw = self.setup_kwargs
        if self.mlflow_run_id is None:
            found = _retry(self.client.search_runs, [kw["experiment_id"]], filter_string=(
                f"tags.`ray.trial_id` = '{self.trial_id}' and tags.mlflow.parentRunId = '{kw['parent_run_id']}'"))
            self.mlflow_run_id = found[0].info.run_id if found else self._create_run()
        else:
            found = [_retry(self.client.get_run, self.mlflow_run_id)]
        if found:
            _retry(self.client.update_run, self.mlflow_run_id, status="RUNNING")
            history = _retry(self.client.get_metric_history, self.mlflow_run_id, "epochs_survived")
            self.logged_upto = max((m.step for m in history), default=0)
            self.logged_collapse = "collapse_epoch" in found[0].data.metrics
        # the node this trial (or its retry after a node failure) runs on: placement across a cluster
        _retry(self.client.set_tag, self.mlflow_run_id, "ray.node_id", ray.get_runtime_context().get_node_id())
        self.attached = True

    def _create_run(self) -> str:
        flat = flatten(self.trial_cfg)
        key = {k: flat.get(k) for k in self.search_keys}
        tags = {"mlflow.parentRunId": self.setup_kwargs["parent_run_id"], "ray.trial_id": self.trial_id,
                "gan_study.role": "trial", "gan_study.outcome": "running", "gan_study.config_key": repr(sorted(key.items()))}
        run = _retry(self.client.create_run, self.setup_kwargs["experiment_id"], tags=tags,
                     run_name=f"{self.trial_id}-seed{flat['seed']}")
        params = [Param(k, str(v)[:6000]) for k, v in flat.items()]
        if hasattr(self, "run"):
            params += [Param(f"data_info.{k}", str(v)) for k, v in (self.run.data.info or {}).items()]
            params += [Param(f"classifier.{k}", str(v)) for k, v in self.run.scorer.info.items()]
        for i in range(0, len(params), 100):
            _retry(self.client.log_batch, run.info.run_id, params=params[i : i + 100])
        return run.info.run_id

    def step(self) -> dict[str, Any]:
        self._attach()
        try:
            result = self.run.step()
        except Exception as err:
            self._finish("FAILED", "failed", error="".join(traceback.format_exception(err))[-5000:])
            raise
        self._log_epoch(result)
        result["outcome"] = self.run.outcome
        result["done"] = self.run.done or (self.stop_on_collapse and bool(result["collapsed"]))
        return {k: v for k, v in result.items() if k != "error"}

    def _log_epoch(self, result: Mapping[str, Any]) -> None:
        epoch, now = int(result["epoch"]), int(time.time() * 1000)
        if epoch <= self.logged_upto:
            return
        metrics = [Metric(k, float(v), now, epoch) for k, v in result.items()
                   if isinstance(v, (int, float)) and k != "epoch" and math.isfinite(float(v))
                   and (k != "collapse_epoch" or not self.logged_collapse)]
        _retry(self.client.log_batch, self.mlflow_run_id, metrics=metrics)
        at_collapse = bool(result.get("collapsed")) and not self.logged_collapse
        self.logged_collapse = self.logged_collapse or bool(result.get("collapsed"))
        if result.get("error"):
            _retry(self.client.set_tag, self.mlflow_run_id, "gan_study.error", str(result["error"])[:5000])
        if at_collapse or epoch % self.grid_every == 0 or self.run.done:
            self._log_samples(epoch, "collapse" if at_collapse else "epoch")

    def _log_samples(self, epoch: int, why: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{why}_{epoch:04d}.png"
            save_samples(self.run.samples(), self.run.data, path, title=f"epoch {epoch}")
            _retry(self.client.log_artifact, self.mlflow_run_id, str(path), "samples")
            surface = self.run.d_surface_png(Path(tmp) / f"d_surface_{epoch:04d}.png")  # 2D data only
            if surface is not None:
                _retry(self.client.log_artifact, self.mlflow_run_id, str(surface), "d_surface")

    def _finish(self, status: str, outcome: str, error: str | None = None) -> None:
        if self.finished or not self.attached:
            return
        self.finished = True
        tags = [RunTag("gan_study.outcome", outcome)] + ([RunTag("gan_study.error", error)] if error else [])
        _retry(self.client.log_batch, self.mlflow_run_id, tags=tags)
        _retry(self.client.set_terminated, self.mlflow_run_id, status)

    def save_checkpoint(self, checkpoint_dir: str) -> dict:
        torch.save({"run": self.run.state_dict(), "mlflow_run_id": self.mlflow_run_id,
                    "logged_collapse": self.logged_collapse}, os.path.join(checkpoint_dir, "state.pt"))
        return None

    def load_checkpoint(self, checkpoint: str | dict) -> None:
        state = torch.load(os.path.join(checkpoint, "state.pt"), weights_only=False)
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
            return self._finish("FAILED", "failed")
        outcome = self.run.outcome
        if outcome == "running":
            outcome = "collapsed" if self.run.status["collapsed"] else "stopped"
        self._finish("FINISHED", outcome)
