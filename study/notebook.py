"""The report notebooks' shared setup: which MLflow store and experiment to read, headless figures.

Each notebook in `reports/` (built from its jupytext source `reports/<name>.py`) calls `setup()` once and
`show(fig)` for each figure; everything it prints or plots comes from `study.report` and `study.plots`, the
sections below included (each skips, saying why, what the runs did not log). Reads MLflow only.

Tracking URI, first that applies: the notebook's `TRACKING_URI` parameter; `$GAN_STUDY_TRACKING_URI` (the
notebooks' own variable, set by the tests); `$MLFLOW_TRACKING_URI`; `sqlite:///$GAN_STUDY_HOME/mlflow.db`;
else `sqlite:///<cwd>/.studies/mlflow.db`, the study runner's default (`study.tracking.default_home()` and
`resolve_uri()`). Notebooks run with cwd `reports/`, so when that default store does not exist the store of
a study started from the checkout root (`<checkout>/.studies/mlflow.db`) is read instead. A local SQLite
store that does not exist is an error: MLflow would silently create an empty one.

Experiment, first that applies: the `EXPERIMENT` parameter; `$GAN_STUDY_EXPERIMENT`; the notebook's default
name, or `<default>_quick` when only the quick study (`--quick`) was run.
"""
from __future__ import annotations

import io
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")  # before pyplot: figures are rendered to PNG by `show`, never opened in a window
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm, imported by mlflow: before study.report

TRACKING_ENV = "GAN_STUDY_TRACKING_URI"
EXPERIMENT_ENV = "GAN_STUDY_EXPERIMENT"
CHECKOUT = Path(__file__).resolve().parent.parent  # the editable install's checkout (pyproject.toml, study/)

# Model-free diversity in the classifier's feature space and D's forgetting (docs/metrics.md)
DIVERSITY_METRICS = ["eval/coverage", "eval/precision", "eval/recall", "eval/ndb", "eval/duplicate_rate",
                     "eval/forgetting"]
# The collapse rule's params, loaded as columns by `load_trials(..., params=RULE_PARAMS)` for `verdict_section`
RULE_PARAMS = ["collapse.metric", "collapse.threshold", "collapse.quality_floor"]


class Target(NamedTuple):
    """What a notebook reads: an MLflow experiment at a tracking URI."""

    experiment: str
    tracking_uri: str


class NotebookSetupError(LookupError):
    """The store or the experiment a notebook should read does not exist."""


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a local `sqlite:///` URI (relative paths against the cwd); None for other URIs."""
    return Path(uri.removeprefix("sqlite:///")).resolve() if uri.startswith("sqlite:///") else None


def _default_candidates() -> list[str]:
    """The runner's default store (`default_home()`), then, unless $GAN_STUDY_HOME is set, the checkout's."""
    from study.tracking import default_home

    homes = [default_home()]
    if not os.environ.get("GAN_STUDY_HOME") and (CHECKOUT / "pyproject.toml").is_file():
        homes.append((CHECKOUT / ".studies").resolve())
    return [f"sqlite:///{home / 'mlflow.db'}" for home in dict.fromkeys(homes)]


def _shown(uri: str) -> str:
    """A URI for an error message: a local SQLite store as its absolute path."""
    path = _sqlite_path(uri)
    return uri if path is None else f"sqlite:///{path}"


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """The absolute tracking URI a notebook reads (module docstring); raises when a local store is missing."""
    from study.tracking import resolve_uri

    given = tracking_uri or os.environ.get(TRACKING_ENV) or os.environ.get("MLFLOW_TRACKING_URI")
    candidates = [given] if given else _default_candidates()
    for uri in candidates:
        path = _sqlite_path(uri)
        if path is None or path.is_file():
            return resolve_uri(uri)  # checked first: resolve_uri would create the directory of a missing store
    source = ("the TRACKING_URI parameter" if tracking_uri else f"${TRACKING_ENV}" if os.environ.get(TRACKING_ENV)
              else "$MLFLOW_TRACKING_URI" if given else "the default")
    raise NotebookSetupError(
        f"no MLflow store at {' nor '.join(_shown(uri) for uri in candidates)} ({source}). Run a study first "
        "(`python -m study.run SPEC`, e.g. `make study`), or point the notebook at its store: the TRACKING_URI "
        f"parameter, ${TRACKING_ENV}, $MLFLOW_TRACKING_URI, or $GAN_STUDY_HOME (the directory holding mlflow.db)")


def resolve_experiment(tracking_uri: str, experiment: str | None = None, default: str | None = None) -> str:
    """The experiment name to read (module docstring); raises, listing the store's experiments, when missing."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    wanted = experiment or os.environ.get(EXPERIMENT_ENV) or default
    if not wanted:
        raise NotebookSetupError(f"no experiment named: set EXPERIMENT or ${EXPERIMENT_ENV}")
    for name in (wanted, f"{wanted}_quick"):
        if client.get_experiment_by_name(name) is not None:
            return name
    names = sorted(e.name for e in client.search_experiments())
    raise NotebookSetupError(
        f"no MLflow experiment {wanted!r} (nor {wanted + '_quick'!r}) at {tracking_uri}; it holds: "
        f"{', '.join(names) or 'no experiments'}. Set EXPERIMENT or ${EXPERIMENT_ENV} to one of them.")


def setup(experiment: str | None = None, tracking_uri: str | None = None, default: str | None = None) -> Target:
    """Resolve the store and experiment, point MLflow at them, keep progress bars and start-up chatter off the
    notebook's output, and print what is read. -> (experiment, tracking_uri)"""
    import mlflow

    from study.tracking import quiet

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    quiet()
    uri = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    target = Target(resolve_experiment(uri, experiment, default), uri)
    print(f"experiment {target.experiment!r} at {target.tracking_uri}")
    return target


def show(fig) -> None:
    """Display a figure as PNG output and close it (headless: the Agg backend, no window, no duplicate)."""
    import matplotlib.pyplot as plt
    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    display(Image(data=buf.getvalue()))


def curves_section(trials, metrics: Sequence[str], by, tracking_uri: str | None = None, skipped: str = "",
                   guides: Mapping[str, tuple[float, str]] | None = None) -> list[str]:
    """Per-epoch means over trials of the `metrics` the runs logged, one panel each (three a row), grouped `by`;
    `guides`: metric -> (value, label) drawn as a dashed line on its panel. Prints `skipped` when none was logged
    and which are left out otherwise. -> the metrics drawn."""
    import matplotlib.pyplot as plt

    from study import report

    present = report.available_metrics(trials, metrics, tracking_uri=tracking_uri)
    if not present:
        print(skipped or f"none of {', '.join(metrics)} in these runs: section skipped")
        return []
    missing = [m for m in metrics if m not in present]
    if missing:
        print(f"not logged, left out: {', '.join(missing)}")
    ncols = min(3, len(present))
    nrows = -(-len(present) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, 4 * nrows), squeeze=False)
    for ax, metric in zip(axes.flat, present):
        report.plot_metric_curves(trials, metric, tracking_uri=tracking_uri, ax=ax, by=by)
        if metric in (guides or {}):
            value, label = (guides or {})[metric]
            ax.axhline(value, color="grey", lw=0.8, ls="--", label=label)
            ax.legend(fontsize="small")
        ax.set_title(f"{metric} per epoch, mean over trials")
    for ax in list(axes.flat)[len(present):]:
        ax.set_visible(False)
    fig.tight_layout()
    show(fig)
    return present


def diversity_section(trials, by, tracking_uri: str | None = None,
                      metrics: Sequence[str] = DIVERSITY_METRICS) -> None:
    """Per-epoch means of the model-free diversity metrics the runs logged, one panel each, grouped `by`;
    prints why the section is skipped (none logged) or which metrics are left out."""
    curves_section(trials, metrics, by, tracking_uri,
                   skipped="no model-free diversity metrics in these runs (prdc, ndb, duplicates and probes not in "
                           "their eval.metrics, or logged before they existed): section skipped")


def _unique(trials, column: str):
    """The one value a column holds across the trials (None when absent, unset or varying)."""
    if column not in trials:
        return None
    values = set(trials[column].dropna().astype(str)) - {"None"}
    return trials[column].dropna().iloc[0] if len(values) == 1 else None


def verdict_section(trials, by, tracking_uri: str | None = None) -> None:
    """The collapse verdict's two inputs per epoch beside the published diversity (docs/collapse.md): the collapse
    metric (default eval/spread) with its threshold, eval/diversity, and the quality eval/hq_fraction with the
    quality floor (rule from the `RULE_PARAMS` columns when loaded and one value across the trials; the floor
    applies to a mode metric only)."""
    from trainables import names
    from trainables.metrics.registry import MODE_KEYS

    metric = str(_unique(trials, "collapse.metric") or names.SPREAD)
    threshold, floor = _unique(trials, "collapse.threshold"), _unique(trials, "collapse.quality_floor")
    guides = {}
    if threshold is not None:
        guides[metric] = (float(threshold), f"collapse.threshold = {float(threshold):g}")
    if floor is not None and float(floor) > 0 and metric in MODE_KEYS:
        guides[names.HQ_FRACTION] = (float(floor), f"collapse.quality_floor = {float(floor):g}")
    curves_section(trials, list(dict.fromkeys([metric, names.DIVERSITY, names.HQ_FRACTION])), by, tracking_uri,
                   guides=guides)


def states_section(trials, by, tracking_uri: str | None = None) -> None:
    """Per arm, the share of trials in each collapse state per epoch (study.plots.plot_states); skipped, saying so,
    when the runs logged no per-epoch `state` (runs from before the states existed)."""
    from study import plots, report
    from trainables import names

    if not report.available_metrics(trials, [names.STATE], tracking_uri=tracking_uri):
        print("no per-epoch `state` in these runs (logged before the collapse states existed): section skipped")
        return
    panels = plots.plot_states(trials, by=by, tracking_uri=tracking_uri)
    panels[0].figure.suptitle("collapse state per epoch: share of trials (docs/collapse.md)")
    show(panels[0].figure)


def survival_section(trials, by, keys, title: str) -> None:
    """The log-rank test between the arms of `keys`, then Kaplan-Meier (95% bands, at-risk counts) per arm of
    `by` beside the cumulative incidence of collapse and divergence (docs/collapse.md)."""
    import matplotlib.pyplot as plt

    from study import plots, report

    print(report.logrank(trials, keys) or report.NO_LOGRANK)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    report.plot_survival(trials, ax=axes[0], by=by)
    axes[0].set_title(title)
    plots.plot_cumulative_incidence(trials, ax=axes[1], by=by)
    axes[1].set_title("cumulative incidence of collapse and divergence")
    fig.tight_layout()
    show(fig)
