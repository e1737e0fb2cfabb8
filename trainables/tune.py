"""The Ray Tune Trainable: a thin wrapper around GANRun (or a SeedGroup of S seeds trained as one seed-batched
model) that logs each seed's epochs to its own MLflow child run."""
from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import torch
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray import tune

from trainables import names
from trainables.config import TrialConfig, flatten
from trainables.naming import run_name
from trainables.plots import save_samples
from trainables.run import GANRun
from trainables.seeds import SeedGroup

# What the study side hands every trial: (Tune's sampled config) -> its TrialConfig, `.configs(sampled)` -> the
# TrialConfig of each of its seeds (one, or S for a seed-batched trial), and `.values(sampled)` -> its searched
# values as text (study.space.TrialBuilder); trainables/ knows nothing of the search encoding.
BuildTrial = Callable[[Mapping[str, Any]], TrialConfig]

# Worker-side Ray lines that say nothing to a study's user: a line per saved checkpoint (they arrive late, even
# after the study summary) and the "setup was slow, consider reuse_actors" hint (the study reuses actors).
for _name in ("ray.train._internal.storage", "ray.tune.trainable.trainable"):
    logging.getLogger(_name).setLevel(logging.WARNING)

MIN_IMAGE_PX = 512  # sample grids smaller than this are enlarged (nearest neighbour) for the MLflow image view


def _retry(fn, *args, tries: int = 6, **kwargs):
    """Call an MLflow client method, retrying while a shared SQLite store is locked."""
    for attempt in range(tries):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            if "locked" not in str(err) or attempt == tries - 1:
                raise
            time.sleep(0.2 * 2**attempt)


def _store_present(uri: str) -> None:
    """FileNotFoundError when a sqlite:/// store's file is gone: MLflow (a new client, or a new connection of a
    client's pool) would create a new empty store there. The driver's watch (study/watchdog.py) then stops the
    study for a resume."""
    path = Path(uri.removeprefix("sqlite:///"))
    if uri.startswith("sqlite:///") and not path.is_file():
        raise FileNotFoundError(f"MLflow store {path} is gone; this trial does not start a new empty one")


@dataclass
class Child:
    """One seed of a trial: its config, its GANRun (None when it could not be built) and its MLflow child run."""

    cfg: TrialConfig
    run: GANRun | None = None
    run_id: str | None = None
    attached: bool = False
    finished: bool = False
    logged_upto: int = 0
    logged_collapse: bool = False
    last: Mapping[str, Any] | None = None  # its latest result


class GANTrainable(tune.Trainable):
    """setup builds a GANRun, or a SeedGroup for a seed-batched trial; step = one epoch, each seed logged to its
    own MLflow child run; checkpoints hold the state of every seed.

    The child runs are created (or, for a restored or retried trial, reattached by Ray trial id and seed) at the
    first step, not in setup: Tune may start an actor for a trial and then discard it for a reused one, and such
    an actor must leave no trace in MLflow.
    """

    # the only result keys Tune's own reporter prints (its box for an errored trial); the study's console:
    # study/console.py
    _progress_metrics = (names.EPOCH, names.HQ_FRACTION, names.SPREAD, names.STATE, names.OUTCOME_RESULT)

    def setup(  # type: ignore[override]  # tune.with_parameters passes the rest
        self, config: dict, build: Any, tracking_uri: str, experiment_id: str, parent_run_id: str,
        stop_on_collapse: bool = False,
    ) -> None:
        self.setup_kwargs = {"build": build, "tracking_uri": tracking_uri, "experiment_id": experiment_id,
                             "parent_run_id": parent_run_id, "stop_on_collapse": stop_on_collapse}
        configs: list[TrialConfig] = build.configs(config)
        self.trial_cfg = configs[0]  # resolved once per trial
        self.search_values: dict[str, str] = build.values(config)
        self.stop_on_collapse = stop_on_collapse
        _store_present(tracking_uri)
        self.client = MlflowClient(tracking_uri)
        self.children = [Child(c) for c in configs]
        self.group: SeedGroup | None = None
        resources = self.trial_resources.required_resources if self.trial_resources else {}
        threads = self.trial_cfg.train.threads or resources.get("CPU", 1)
        torch.set_num_threads(max(1, int(threads)))
        # a GPU only when Ray gave the trial one (CUDA_VISIBLE_DEVICES is then its share); never a CPU trial's
        device = "cuda" if resources.get("GPU", 0) > 0 and torch.cuda.is_available() else "cpu"
        self.device_name = "cpu" if device == "cpu" else f"cuda:0 ({torch.cuda.get_device_name(0)})"
        try:
            if len(configs) > 1:
                self.group = SeedGroup(configs, device=device)
                runs = self.group.members
            else:
                runs = [GANRun(self.trial_cfg, device=device)]
        except Exception as err:  # a trial that cannot even be built is a FAILED run per seed, with its error
            for child in self.children:
                self._attach(child)
                self._finish(child, "FAILED", names.FAILED, error="".join(traceback.format_exception(err))[-5000:])
            raise
        for child, run in zip(self.children, runs):
            child.run = run
        self.grid_every = self.trial_cfg.eval.grid_every

    def _attach(self, child: Child) -> None:
        """Create a seed's child run, or reattach to it (restore, retry): epochs already logged are recomputed
        identically after a restore, so they are not logged again."""
        if child.attached:
            return
        kw = self.setup_kwargs
        _store_present(kw["tracking_uri"])
        if child.run_id is None:
            seed = f" and tags.{names.SEED_TAG} = '{child.cfg.seed}'" if len(self.children) > 1 else ""
            found = _retry(self.client.search_runs, [kw["experiment_id"]], filter_string=(
                f"tags.`{names.TRIAL_ID}` = '{self.trial_id}' and tags.{names.PARENT} = '{kw['parent_run_id']}'"
                + seed))
            child.run_id = found[0].info.run_id if found else self._create_run(child)
        else:
            found = [_retry(self.client.get_run, child.run_id)]
        if found:
            _retry(self.client.update_run, child.run_id, status="RUNNING")
            self._log_params(child, set(found[0].data.params))
            history = _retry(self.client.get_metric_history, child.run_id, names.EPOCHS_SURVIVED)
            child.logged_upto = max((m.step for m in history), default=0)
            child.logged_collapse = names.COLLAPSE_EPOCH in found[0].data.metrics
        # the node this trial (or its retry after a node failure) runs on: placement across a cluster
        tags = {names.NODE_ID: ray.get_runtime_context().get_node_id(), names.DEVICE: self.device_name,
                names.MLFLOW_USER: os.environ.get("MLFLOW_TRACKING_USERNAME", ""),
                names.SEEDS_BATCHED: str(len(self.children))}
        _retry(self.client.log_batch, child.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        child.attached = True

    def _create_run(self, child: Child) -> str:
        tags = {names.PARENT: self.setup_kwargs["parent_run_id"], names.TRIAL_ID: self.trial_id,
                names.ROLE: names.ROLE_TRIAL, names.OUTCOME: names.RUNNING, names.SEED_TAG: str(child.cfg.seed),
                names.CONFIG_KEY: json.dumps(sorted(self.search_values.items()))}
        run = _retry(self.client.create_run, self.setup_kwargs["experiment_id"], tags=tags,
                     run_name=run_name(self.search_values, int(child.cfg.seed)))
        child.run_id = run.info.run_id
        self._log_params(child, set())
        return run.info.run_id

    def _log_params(self, child: Child, logged: set[str]) -> None:
        """A seed's config, search values, data and classifier info, except the params in `logged` (a run
        reattached after a fault between its creation and its params gets the rest)."""
        params = [Param(k, str(v)[:6000]) for k, v in flatten(child.cfg.dump()).items()]
        params += [Param(names.SEARCH_PARAM + k, v[:6000]) for k, v in self.search_values.items()]
        if child.run is not None:
            params += [Param(names.DATA_INFO_PARAM + k, str(v)) for k, v in (child.run.data.info or {}).items()]
            params += [Param(names.CLASSIFIER_PARAM + k, str(v)) for k, v in child.run.scorer.info.items()]
        params = [p for p in params if p.key not in logged]
        for i in range(0, len(params), 100):
            _retry(self.client.log_batch, child.run_id, params=params[i : i + 100])

    def step(self) -> dict[str, Any]:
        for child in self.children:
            self._attach(child)
        results: list[dict[str, Any] | None]
        try:
            results = self.group.step() if self.group else [self._run(self.children[0]).step()]
        except Exception as err:
            for child in self.children:
                self._finish(child, "FAILED", names.FAILED, error="".join(traceback.format_exception(err))[-5000:])
            raise
        for i, (child, result) in enumerate(zip(self.children, results)):
            if result is not None:
                child.last = result
                self._log_epoch(child, result)
                if self.group and self.stop_on_collapse and result.get(names.COLLAPSED):
                    self.group.stopped[i] = True
            if self.group and not self.group.active(i):  # this seed has ended while the others train on
                self._finish(child, "FINISHED", self._outcome(child), strict=True)
        out = self._result(results)
        if out[names.DONE]:  # ended before Tune hears of it: a run that cannot be ended errs the trial instead
            for child in self.children:
                self._finish(child, "FINISHED", self._outcome(child, ended=True), strict=True)
        return out

    @staticmethod
    def _run(child: Child) -> GANRun:
        assert child.run is not None, "the trial's runs are built in setup"
        return child.run

    def _result(self, results: list[dict[str, Any] | None]) -> dict[str, Any]:
        """What Tune sees: the run's result; for S seeds, the mean of each metric over the seeds' latest results
        (the objective Optuna gets is their mean, as the Repeater's over S trials), the outcomes counted."""
        if self.group is None:
            run, result = self._run(self.children[0]), dict(results[0] or {})
            result[names.OUTCOME_RESULT] = run.outcome
            result[names.EPOCHS_PLANNED] = run.epochs
            result[names.DONE] = run.done or (self.stop_on_collapse and bool(result[names.COLLAPSED]))
            return {k: v for k, v in result.items() if k != "error"}
        latest = [c.last or {} for c in self.children]
        keys = {k for r in latest for k, v in r.items() if isinstance(v, (int, float)) and k != names.STATE}
        out: dict[str, Any] = {}
        for k in keys:  # over the seeds that report it (a diverged seed's last result has no eval/ keys)
            values = [float(r[k]) for r in latest if k in r]
            out[k] = sum(values) / len(values)
        out[names.EPOCH] = max(int(r.get(names.EPOCH, 0)) for r in latest)
        planned = self._run(self.children[0]).epochs
        out[names.STOPPED_SEEDS] = sum(  # ended before their last epoch, not by diverging (stop-on-collapse)
            self.group.stopped[i] and int(r.get(names.EPOCH, 0)) < planned for i, r in enumerate(latest))
        outcomes = [self._outcome(c) for c in self.children]
        out[names.OUTCOME_RESULT] = ", ".join(f"{outcomes.count(o)} {o}" for o in sorted(set(outcomes)))
        out[names.EPOCHS_PLANNED] = planned
        out[names.DONE] = self.group.done
        return out

    def _outcome(self, child: Child, ended: bool = False) -> str:
        """A seed's outcome; one still running but `ended` (by Tune) or stopped (stop on collapse in a group) is
        collapsed when its collapse was confirmed, else stopped."""
        run = self._run(child)
        stopped = ended or (self.group is not None and self.group.stopped[self.children.index(child)])
        if run.outcome == names.RUNNING and stopped:
            return names.COLLAPSED_OUTCOME if run.status["collapsed"] else names.STOPPED
        return run.outcome

    def _log_epoch(self, child: Child, result: Mapping[str, Any]) -> None:
        epoch, now = int(result[names.EPOCH]), int(time.time() * 1000)
        if epoch <= child.logged_upto:
            return
        _store_present(self.setup_kwargs["tracking_uri"])
        metrics = [Metric(k, float(v), now, epoch) for k, v in result.items()
                   if isinstance(v, (int, float)) and k != names.EPOCH and math.isfinite(float(v))
                   and (k != names.COLLAPSE_EPOCH or not child.logged_collapse)]
        _retry(self.client.log_batch, child.run_id, metrics=metrics)
        at_collapse = bool(result.get("collapsed")) and not child.logged_collapse
        child.logged_collapse = child.logged_collapse or bool(result.get("collapsed"))
        if result.get("error"):
            _retry(self.client.set_tag, child.run_id, names.ERROR, str(result["error"])[:5000])
        if not result.get(names.DIVERGED) and (at_collapse or epoch % self.grid_every == 0 or self._run(child).done):
            self._log_samples(child, epoch, "collapse" if at_collapse else "epoch")

    def _log_samples(self, child: Child, epoch: int, why: str) -> None:
        run = self._run(child)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{why}_{epoch:04d}.png"
            save_samples(run.samples(), run.data, path, title=f"epoch {epoch}")
            _retry(self.client.log_artifact, child.run_id, str(path), names.SAMPLES_DIR)
            self._log_image(child, path, names.SAMPLES_DIR, epoch, enlarge=run.data.kind == "images")
            for name, samples in run.grids().items():  # a trial that runs rounds: each component's grid (AdaGAN)
                grid = save_samples(samples, run.data, Path(tmp) / f"{name}_{epoch:04d}.png",
                                    title=f"{name}, epoch {epoch}")
                _retry(self.client.log_artifact, child.run_id, str(grid), f"{names.SAMPLES_DIR}/{name}")
            surface = run.d_surface_png(Path(tmp) / f"d_surface_{epoch:04d}.png")  # 2D data only
            if surface is not None:
                _retry(self.client.log_artifact, child.run_id, str(surface), names.D_SURFACE_DIR)
                self._log_image(child, surface, names.D_SURFACE_DIR, epoch)

    def _log_image(self, child: Child, path: Path, key: str, epoch: int, enlarge: bool = False) -> None:
        """The PNG also as an MLflow image at its epoch (the run's image slider); a small image grid is enlarged
        by whole pixels so that repeated samples stay recognisable in the UI."""
        from PIL import Image

        with Image.open(path) as img:
            image = img.convert("RGB")
        scale = math.ceil(MIN_IMAGE_PX / max(image.size)) if enlarge else 1
        if scale > 1:
            image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
        _retry(self.client.log_image, child.run_id, image, key=key, step=epoch)

    def _finish(self, child: Child, status: str, outcome: str, error: str | None = None,
                strict: bool = False) -> None:
        """End a seed's MLflow run with its outcome. `strict` (a step that reports the trial done): a store that
        is gone raises (as a store locked past the retries always does), so Tune records an errored trial that
        `--resume` restores and ends, never a finished trial whose run stays RUNNING; otherwise (a trial failing
        or stopped by the study's watch) a gone store's run is left for the resume to reattach."""
        if child.finished or not child.attached:
            return
        try:
            _store_present(self.setup_kwargs["tracking_uri"])
        except FileNotFoundError:
            if strict:
                raise
            child.finished = True
            return  # nothing to end: the run's store is gone (the study stops; a resume reattaches the run)
        tags = [RunTag(names.OUTCOME, outcome)] + ([RunTag(names.ERROR, error)] if error else [])
        step = child.run.epoch if child.run is not None else 0
        code = Metric(names.OUTCOME_CODE, float(names.OUTCOMES.index(outcome)), int(time.time() * 1000), step)
        _retry(self.client.log_batch, child.run_id, metrics=[code], tags=tags)
        _retry(self.client.set_terminated, child.run_id, status)
        child.finished = True

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        state = self.group.state_dict() if self.group else self._run(self.children[0]).state_dict()
        torch.save({"run": state, "mlflow_run_ids": [c.run_id for c in self.children]},
                   os.path.join(checkpoint_dir, "state.pt"))
        return None

    def load_checkpoint(self, checkpoint: str) -> None:  # type: ignore[override]  # a directory, as saved
        state = torch.load(os.path.join(checkpoint, "state.pt"), weights_only=True)  # never executes code
        (self.group or self._run(self.children[0])).load_state_dict(state["run"])
        run_ids = state["mlflow_run_ids"] if "mlflow_run_ids" in state else [state["mlflow_run_id"]]  # before #12
        for child, run_id in zip(self.children, run_ids, strict=True):
            child.run_id, child.attached, child.finished = run_id, False, False  # reattached at the next step

    def reset_config(self, new_config: dict) -> bool:
        """Actor reuse (reuse_actors=True): end this trial's MLflow runs and set up the next trial in place."""
        self.cleanup()
        self.__dict__.pop("group", None)
        GANTrainable.setup(self, new_config, **self.setup_kwargs)  # not self.setup: tune.with_parameters wraps it
        return True

    def cleanup(self) -> None:
        """Ends the MLflow runs; also called when a scheduler or stopper ends the trial early."""
        for child in getattr(self, "children", []):
            if child.run is None:
                self._finish(child, "FAILED", names.FAILED)
                continue
            self._finish(child, "FINISHED", self._outcome(child, ended=True))
