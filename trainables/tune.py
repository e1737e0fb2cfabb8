"""The Ray Tune Trainable: a thin wrapper around GANRun that logs each epoch to an MLflow child run."""
from __future__ import annotations

import json
import logging
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

# Worker-side Ray lines that say nothing to a study's user: a line per saved checkpoint (they arrive late, even
# after the study summary) and the "setup was slow, consider reuse_actors" hint (the study reuses actors).
for _name in ("ray.train._internal.storage", "ray.tune.trainable.trainable"):
    logging.getLogger(_name).setLevel(logging.WARNING)

MIN_IMAGE_PX = 512  # sample grids smaller than this are enlarged (nearest neighbour) for the MLflow image view


def compact(value: str, digits: int = 3) -> str:
    """A searched value as short text: numbers to `digits` significant digits, long text cut to 40 characters."""
    try:
        number = float(value)
    except ValueError:
        return value if len(value) <= 40 else value[:37] + "..."
    if number.is_integer() and abs(number) < 1e6:
        return str(int(number))
    return f"{number:.{digits}g}"


def short_keys(keys: list[str]) -> dict[str, str]:
    """Short names of search keys: `remedies.label_flip.rate` -> flip (the remedy's last word, with the parameter
    when the study searches two of that remedy), `train.lr` -> lr; a short name two keys share stays the full key."""
    def short(key: str) -> str:
        parts = key.split(".")
        if parts[0] == "remedies" and len(parts) == 3:
            siblings = [k for k in keys if k.startswith(f"remedies.{parts[1]}.")]
            base = parts[1].split("_")[-1]
            return base if len(siblings) == 1 else f"{base}.{parts[2]}"
        return parts[-1]

    out = {k: short(k) for k in keys}
    clash = {s for s in out.values() if list(out.values()).count(s) > 1}
    return {k: (k if s in clash else s) for k, s in out.items()}


def trial_label(values: Mapping[str, str], seed: int) -> str:
    """The console name of a trial: its searched values, short, and its seed (`flip=0.05 lr=0.00125 s1`)."""
    keys = short_keys(list(values))
    return " ".join([f"{keys[k]}={compact(v)}" for k, v in values.items()] + [f"s{seed}" if values else f"seed {seed}"])


def run_name(values: Mapping[str, str], seed: int, limit: int = 120) -> str:
    """The MLflow name of a trial's run: `remedies.label_flip.rate=0.05 train.lr=0.001252 seed=1`; short keys
    where the full ones would make it longer than `limit` characters."""
    full = " ".join([f"{k}={compact(v, 4)}" for k, v in values.items()] + [f"seed={seed}"])
    if len(full) <= limit:
        return full
    keys = short_keys(list(values))
    return " ".join([f"{keys[k]}={compact(v, 4)}" for k, v in values.items()] + [f"seed={seed}"])


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


class GANTrainable(tune.Trainable):
    """setup builds a GANRun; step = one epoch, logged to the trial's MLflow child run; checkpoints hold the state.

    The child run is created (or, for a restored or retried trial, reattached by Ray trial id) at the first
    step, not in setup: Tune may start an actor for a trial and then discard it for a reused one, and such an
    actor must leave no trace in MLflow.
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
        self.trial_cfg: TrialConfig = build(config)  # resolved once per trial
        self.search_values: dict[str, str] = build.values(config)
        self.stop_on_collapse = stop_on_collapse
        _store_present(tracking_uri)
        self.client = MlflowClient(tracking_uri)
        self.mlflow_run_id: str | None = None
        self.attached, self.finished = False, False
        self.logged_upto, self.logged_collapse = 0, False
        resources = self.trial_resources.required_resources if self.trial_resources else {}
        threads = self.trial_cfg.train.threads or resources.get("CPU", 1)
        torch.set_num_threads(max(1, int(threads)))
        # a GPU only when Ray gave the trial one (CUDA_VISIBLE_DEVICES is then its share); never a CPU trial's
        device = "cuda" if resources.get("GPU", 0) > 0 and torch.cuda.is_available() else "cpu"
        self.device_name = "cpu" if device == "cpu" else f"cuda:0 ({torch.cuda.get_device_name(0)})"
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
        _store_present(kw["tracking_uri"])
        if self.mlflow_run_id is None:
            found = _retry(self.client.search_runs, [kw["experiment_id"]], filter_string=(
                f"tags.`{names.TRIAL_ID}` = '{self.trial_id}' and tags.{names.PARENT} = '{kw['parent_run_id']}'"))
            self.mlflow_run_id = found[0].info.run_id if found else self._create_run()
        else:
            found = [_retry(self.client.get_run, self.mlflow_run_id)]
        if found:
            _retry(self.client.update_run, self.mlflow_run_id, status="RUNNING")
            self._log_params(self.mlflow_run_id, set(found[0].data.params))
            history = _retry(self.client.get_metric_history, self.mlflow_run_id, names.EPOCHS_SURVIVED)
            self.logged_upto = max((m.step for m in history), default=0)
            self.logged_collapse = names.COLLAPSE_EPOCH in found[0].data.metrics
        # the node this trial (or its retry after a node failure) runs on: placement across a cluster
        tags = {names.NODE_ID: ray.get_runtime_context().get_node_id(), names.DEVICE: self.device_name,
                names.MLFLOW_USER: os.environ.get("MLFLOW_TRACKING_USERNAME", "")}
        _retry(self.client.log_batch, self.mlflow_run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        self.attached = True

    def _create_run(self) -> str:
        tags = {names.PARENT: self.setup_kwargs["parent_run_id"], names.TRIAL_ID: self.trial_id,
                names.ROLE: names.ROLE_TRIAL, names.OUTCOME: names.RUNNING,
                names.CONFIG_KEY: json.dumps(sorted(self.search_values.items()))}
        run = _retry(self.client.create_run, self.setup_kwargs["experiment_id"], tags=tags,
                     run_name=run_name(self.search_values, int(self.trial_cfg.seed)))
        self._log_params(run.info.run_id, set())
        return run.info.run_id

    def _log_params(self, run_id: str, logged: set[str]) -> None:
        """The trial's config, search values, data and classifier info, except the params in `logged` (a run
        reattached after a fault between its creation and its params gets the rest)."""
        params = [Param(k, str(v)[:6000]) for k, v in flatten(self.trial_cfg.dump()).items()]
        params += [Param(names.SEARCH_PARAM + k, v[:6000]) for k, v in self.search_values.items()]
        if hasattr(self, "run"):
            params += [Param(names.DATA_INFO_PARAM + k, str(v)) for k, v in (self.run.data.info or {}).items()]
            params += [Param(names.CLASSIFIER_PARAM + k, str(v)) for k, v in self.run.scorer.info.items()]
        params = [p for p in params if p.key not in logged]
        for i in range(0, len(params), 100):
            _retry(self.client.log_batch, run_id, params=params[i : i + 100])

    def step(self) -> dict[str, Any]:
        self._attach()
        try:
            result = self.run.step()
        except Exception as err:
            self._finish("FAILED", names.FAILED, error="".join(traceback.format_exception(err))[-5000:])
            raise
        self._log_epoch(result)
        result[names.OUTCOME_RESULT] = self.run.outcome
        result[names.EPOCHS_PLANNED] = self.run.epochs
        result[names.DONE] = self.run.done or (self.stop_on_collapse and bool(result[names.COLLAPSED]))
        return {k: v for k, v in result.items() if k != "error"}

    def _log_epoch(self, result: Mapping[str, Any]) -> None:
        epoch, now = int(result[names.EPOCH]), int(time.time() * 1000)
        if epoch <= self.logged_upto:
            return
        _store_present(self.setup_kwargs["tracking_uri"])
        metrics = [Metric(k, float(v), now, epoch) for k, v in result.items()
                   if isinstance(v, (int, float)) and k != names.EPOCH and math.isfinite(float(v))
                   and (k != names.COLLAPSE_EPOCH or not self.logged_collapse)]
        _retry(self.client.log_batch, self.mlflow_run_id, metrics=metrics)
        at_collapse = bool(result.get("collapsed")) and not self.logged_collapse
        self.logged_collapse = self.logged_collapse or bool(result.get("collapsed"))
        if result.get("error"):
            _retry(self.client.set_tag, self.mlflow_run_id, names.ERROR, str(result["error"])[:5000])
        if not result.get(names.DIVERGED) and (at_collapse or epoch % self.grid_every == 0 or self.run.done):
            self._log_samples(epoch, "collapse" if at_collapse else "epoch")

    def _log_samples(self, epoch: int, why: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{why}_{epoch:04d}.png"
            save_samples(self.run.samples(), self.run.data, path, title=f"epoch {epoch}")
            _retry(self.client.log_artifact, self.mlflow_run_id, str(path), names.SAMPLES_DIR)
            self._log_image(path, names.SAMPLES_DIR, epoch, enlarge=self.run.data.kind == "images")
            surface = self.run.d_surface_png(Path(tmp) / f"d_surface_{epoch:04d}.png")  # 2D data only
            if surface is not None:
                _retry(self.client.log_artifact, self.mlflow_run_id, str(surface), names.D_SURFACE_DIR)
                self._log_image(surface, names.D_SURFACE_DIR, epoch)

    def _log_image(self, path: Path, key: str, epoch: int, enlarge: bool = False) -> None:
        """The PNG also as an MLflow image at its epoch (the run's image slider); a small image grid is enlarged
        by whole pixels so that repeated samples stay recognisable in the UI."""
        from PIL import Image

        with Image.open(path) as img:
            image = img.convert("RGB")
        scale = math.ceil(MIN_IMAGE_PX / max(image.size)) if enlarge else 1
        if scale > 1:
            image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
        _retry(self.client.log_image, self.mlflow_run_id, image, key=key, step=epoch)

    def _finish(self, status: str, outcome: str, error: str | None = None) -> None:
        if self.finished or not self.attached:
            return
        self.finished = True
        try:
            _store_present(self.setup_kwargs["tracking_uri"])
        except FileNotFoundError:
            return  # nothing to end: the run's store is gone (the study stops; a resume reattaches the run)
        tags = [RunTag(names.OUTCOME, outcome)] + ([RunTag(names.ERROR, error)] if error else [])
        step = self.run.epoch if hasattr(self, "run") else 0
        code = Metric(names.OUTCOME_CODE, float(names.OUTCOMES.index(outcome)), int(time.time() * 1000), step)
        _retry(self.client.log_batch, self.mlflow_run_id, metrics=[code], tags=tags)
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
