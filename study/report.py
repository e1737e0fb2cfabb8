"""Study reports from MLflow only: trial table, Kaplan-Meier collapse statistics and a log-rank test, plots.

Reads what the runner logged (one parent run per study, one child run per trial) and never imports
Ray or training code. Collapse times are right-censored data: a trial that did not collapse is
counted at the epochs it survived, so summaries use the Kaplan-Meier estimator, never a plain mean.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pandas as pd
import yaml
from mlflow.tracking import MlflowClient

from study.plots import metric_history, plot_metric_curves, plot_survival  # noqa: F401  (the report API)
from study.survival import (  # noqa: F401
    COLLAPSE,
    DIVERGENCE,
    EVENT_OUTCOME,
    EXCLUDED_OUTCOME,
    NO_LOGRANK,
    LogRank,
    cumulative_incidence,
    fmt_p,
    fmt_time,
    groups,
    kaplan_meier,
    km_quantile,
    logrank,
    survival_data,
)
from study.tables import (  # noqa: F401  (the report API)
    HELPER_COLUMNS,
    format_table,
    mean_sd,
    mode_table,
    settings_table,
    trial_table,
)
from trainables import names

TRIAL_COLUMNS = ["run_id", "outcome", "seed"]
TAIL_COLUMNS = ["train.epochs", "collapse_epoch", "epochs_survived", "collapsed",
                "final_diversity", "final_modes_covered"]
METRIC_COLUMNS = {"collapse_epoch": names.COLLAPSE_EPOCH, "epochs_survived": names.EPOCHS_SURVIVED,
                  "censor_epoch": names.CENSOR_EPOCH, "diverge_epoch": names.DIVERGE_EPOCH,
                  "collapse_g_step": names.COLLAPSE_G_STEP,
                  "collapsed": names.COLLAPSED, "final_diversity": names.DIVERSITY,
                  "final_quality": names.HQ_FRACTION, "final_modes_covered": names.MODES_COVERED}


# ---------------------------------------------------------------- loading


def _numeric(col: pd.Series) -> pd.Series:
    """Parse a column of MLflow string params to numbers when every present value parses."""
    present = col.dropna()
    converted = pd.to_numeric(present, errors="coerce")
    if len(present) and converted.notna().all():
        return pd.to_numeric(col, errors="coerce")
    return col.astype(object).where(col.notna(), None)


def _latest_parent(experiment: str) -> str:
    """Id of the most recently started study parent run of an experiment."""
    runs = mlflow.search_runs(experiment_names=[experiment], filter_string=f"tags.{names.ROLE} = '{names.ROLE_STUDY}'",
                              order_by=["attribute.start_time DESC"], max_results=1)
    if runs.empty:
        raise LookupError(f"experiment {experiment!r} at {mlflow.get_tracking_uri()} has no study run "
                          "(tag {names.ROLE} = '{names.ROLE_STUDY}'); run `python -m study.run SPEC` first")
    return str(runs["run_id"].iloc[0])


def _search_keys(parent_run_id: str) -> list[str]:
    """The dotted config keys that vary between configurations, from the parent's tag."""
    raw = MlflowClient().get_run(parent_run_id).data.tags.get(names.SEARCH_KEYS, "[]")
    return list(json.loads(raw or "[]"))


@contextmanager
def using_store(uri: str | None) -> Iterator[None]:
    """MLflow's global tracking URI (and $MLFLOW_TRACKING_URI, which it sets) is `uri` inside, as before after."""
    if not uri:
        yield
        return
    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)  # type: ignore[arg-type]  # None unsets it (the annotation omits None)


def load_trials(experiment: str, tracking_uri: str | None = None,
                parent_run_id: str | None = None, params: Sequence[str] = (),
                metrics: Sequence[str] = ()) -> pd.DataFrame:
    """One row per trial (child) run of the latest study parent run, or of `parent_run_id`.

    `params`: further logged params to load as columns (e.g. "loss"), beside the search keys. A search key's
    column holds the value as the spec wrote it (param `search.<key>`; a remedy set as "a+b", names sorted,
    or "none"), as a number where every value is one.
    `metrics`: further metrics to load as columns named by the metric (e.g. "eval/kl_to_uniform"), each the
    value at the run's last logged epoch (MLflow's latest value: highest step); NaN where never logged.
    """
    with using_store(tracking_uri):
        if MlflowClient().get_experiment_by_name(experiment) is None:
            raise LookupError(f"no MLflow experiment {experiment!r} at {mlflow.get_tracking_uri()}")
        parent = parent_run_id or _latest_parent(experiment)
        keys = _search_keys(parent)
        runs = mlflow.search_runs(experiment_names=[experiment],
                                  filter_string=f"tags.{names.PARENT} = '{parent}'")
        store = mlflow.get_tracking_uri()
    role = runs.get(f"tags.{names.ROLE}", pd.Series(index=runs.index, dtype=object))
    runs = runs[role.isna() | (role == names.ROLE_TRIAL)]
    df = _trial_frame(runs, keys, params)
    for name in metrics:
        column = f"metrics.{name}"
        values = runs[column] if column in runs else pd.Series(math.nan, index=runs.index)
        df[name] = pd.to_numeric(df["run_id"].map(dict(zip(runs["run_id"], values))), errors="coerce")
    df.attrs["search_keys"] = keys
    df.attrs["parent_run_id"] = parent
    df.attrs["tracking_uri"] = store  # where the parent's spec is read (comparison_keys)
    return df


def _trial_frame(runs: pd.DataFrame, keys: list[str], params: Sequence[str] = ()) -> pd.DataFrame:
    """Select and parse the report columns from a `mlflow.search_runs` frame."""
    def col(name: str) -> pd.Series:
        return runs[name] if name in runs else pd.Series([None] * len(runs), index=runs.index, dtype=object)

    out = pd.DataFrame({"run_id": col("run_id"), "outcome": col(f"tags.{names.OUTCOME}"),
                        "seed": _numeric(col(f"params.{names.SEED_PARAM}"))})
    for key in keys:
        if key not in out:
            out[key] = _numeric(col(f"params.{names.SEARCH_PARAM}{key}"))
    out["train.epochs"] = _numeric(col(f"params.{names.EPOCHS_PARAM}"))
    for name, metric in METRIC_COLUMNS.items():
        out[name] = pd.to_numeric(col(f"metrics.{metric}"), errors="coerce")
    out["collapsed"] = out["collapsed"].fillna((out["outcome"] == EVENT_OUTCOME).astype(float)).astype(int)
    survived = out["epochs_survived"].fillna(out["collapse_epoch"])
    out["epochs_survived"] = survived.fillna(0.0)
    for name in params:
        if name not in out:
            out[name] = _numeric(col(f"params.{name}"))
    order = list(dict.fromkeys(keys + ["seed"]))
    return out.sort_values(order, na_position="last").reset_index(drop=True)


# ---------------------------------------------------------------- survival statistics


# ---------------------------------------------------------------- summary table


def _summary_row(rows: pd.DataFrame) -> dict:
    """Counts, Kaplan-Meier median and quartiles of the collapse epoch, the cumulative incidence of collapse and
    of divergence (competing events), final diversity and quality of one configuration."""
    surv = survival_data(rows)
    censor_at = float(surv["time"].max()) if len(surv) else float("nan")
    quant = {q: km_quantile(surv["time"], surv["event"], q) for q in (0.25, 0.5, 0.75)}
    cif = cumulative_incidence(surv["time"], surv["cause"]).iloc[-1]
    quality = rows["final_quality"].dropna() if "final_quality" in rows else pd.Series(dtype=float)
    div = rows["final_diversity"].dropna()
    mean = float(div.mean()) if len(div) else float("nan")
    sd = float(div.std(ddof=1)) if len(div) > 1 else (0.0 if len(div) else float("nan"))
    no_data = surv.empty
    return {
        "seeds": len(rows),
        "collapsed": int((surv["cause"] == COLLAPSE).sum()),
        "never_diverse": int((rows["outcome"] == EXCLUDED_OUTCOME).sum()),
        "diverged": int((surv["cause"] == DIVERGENCE).sum()),  # before any collapse: a competing event
        "failed": int((rows["outcome"] == names.FAILED).sum()),  # crashed: left out of the survival estimates
        "median_collapse_epoch": "n/a" if no_data else fmt_time(quant[0.5], censor_at),
        "quartiles": "n/a" if no_data else
        f"{fmt_time(quant[0.25], censor_at)}-{fmt_time(quant[0.75], censor_at)}",
        "collapse_incidence": "n/a" if no_data else f"{cif['collapse']:.2f}",
        "divergence_incidence": "n/a" if no_data else f"{cif['divergence']:.2f}",
        "mean_final_diversity": "n/a" if math.isnan(mean) else f"{mean:.3f} ± {sd:.3f}",
        "mean_final_quality": f"{quality.mean():.3f}" if len(quality) else "n/a",
        "final_diversity_mean": mean,
        "final_diversity_sd": sd,
    }


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration (search keys): seeds, outcome counts, KM median and quartiles, diversity, and
    `logrank_p`, the p-value of the log-rank test of collapse between the configurations (`logrank`; the same
    on every row, "n/a" with one configuration or no collapse)."""
    keys = [k for k in df.attrs.get("search_keys", []) if k in df.columns]
    p_text = fmt_p(result.p_value if (result := logrank(df, keys)) else None)
    rows = [dict(zip(keys, values)) | _summary_row(group) | {"logrank_p": p_text} for values, group in groups(df, keys)]
    table = pd.DataFrame(rows, columns=keys + ["seeds", "collapsed", "never_diverse", "diverged", "failed",
                                               "median_collapse_epoch", "quartiles", "collapse_incidence",
                                               "divergence_incidence", "mean_final_diversity", "mean_final_quality",
                                               "logrank_p", "final_diversity_mean", "final_diversity_sd"])
    if keys and len(table):
        table = table.sort_values(keys, na_position="last", kind="stable")
    table.attrs["search_keys"] = keys
    return table.reset_index(drop=True)


# ---------------------------------------------------------------- comparison of arms (remedy sets, variants)

CATEGORICAL_KINDS = ("grid", "choice")


def study_spec(parent_run_id: str, client: MlflowClient | None = None) -> dict | None:
    """The resolved spec the runner attached to a study's parent run (`spec/resolved.yaml`); None if unreadable."""
    client = client or MlflowClient()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm bar in notebook output
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(parent_run_id, names.RESOLVED_SPEC, tmp)
            spec = yaml.safe_load(Path(path).read_text())
    except Exception:
        return None
    return spec if isinstance(spec, dict) else None


def comparison_keys(df: pd.DataFrame, spec: dict | None = None) -> list[str]:
    """The search keys that name the arms of a study: one report row per combination of their values.

    Grid and choice entries of the study's spec (read from its parent run unless `spec` is given), without
    the conditional `remedies.<name>.<param>` entries of a searched `remedies` set and without continuous
    entries (uniform, loguniform, int: Optuna's values, nearly one per configuration). Without a readable spec:
    the non-numeric search keys and numeric ones with at most 10 distinct values. When no key qualifies, all
    search keys (one row per configuration).
    """
    keys = [k for k in df.attrs.get("search_keys", []) if k in df.columns]
    if spec is None and df.attrs.get("parent_run_id"):
        store = df.attrs.get("tracking_uri")
        spec = study_spec(df.attrs["parent_run_id"], MlflowClient(store) if store else None)
    kinds = {k: next((kind for kind in CATEGORICAL_KINDS + ("uniform", "loguniform", "int") if v.get(kind) is not None),
                     None) for k, v in ((spec or {}).get("search") or {}).items() if isinstance(v, dict)}

    def arm(key: str) -> bool:
        parts = key.split(".")
        if "remedies" in keys and parts[0] == "remedies" and len(parts) == 3:
            return False  # a parameter of one option of the searched remedy set
        if key in kinds:
            return kinds[key] in CATEGORICAL_KINDS
        values = df[key].dropna()
        return not pd.api.types.is_numeric_dtype(values) or values.nunique() <= 10

    return [k for k in keys if arm(k)] or keys


def comparison_table(df: pd.DataFrame, keys: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per arm (`keys`, default `comparison_keys(df)`): configurations and trials, collapses and the
    collapse rate across seeds, never-diverse and diverged counts, Kaplan-Meier median epochs survived before
    collapse and quartiles ("N+": not reached within N epochs, censored), final diversity and final modes
    covered as mean ± sd over the trials; `logrank_p`: the p-value of the log-rank test of collapse between the arms
    (`logrank`; the same on every row, "n/a" with one arm or no collapse)."""
    keys = list(comparison_keys(df) if keys is None else keys)
    search = [k for k in df.attrs.get("search_keys", []) if k in df.columns]
    p_text = fmt_p(result.p_value if (result := logrank(df, keys)) else None)
    rows = []
    for values, group in groups(df, keys):
        base = _summary_row(group)
        kept = int((group["outcome"] != EXCLUDED_OUTCOME).sum())
        configs = len(group[search].astype(str).drop_duplicates()) if search else 1
        div_text, div_mean, div_sd = mean_sd(group["final_diversity"], ".3f")
        modes_text, modes_mean, modes_sd = mean_sd(group["final_modes_covered"], ".1f")
        g_steps = group["collapse_g_step"].dropna() if "collapse_g_step" in group else pd.Series(dtype=float)
        rows.append(dict(zip(keys, values)) | {
            "configs": configs, "trials": base["seeds"], "collapsed": base["collapsed"],
            "collapse_rate": f"{base['collapsed']}/{kept}" + (f" ({base['collapsed'] / kept:.0%})" if kept else ""),
            "never_diverse": base["never_diverse"], "diverged": base["diverged"],
            "median_collapse_epoch": base["median_collapse_epoch"], "quartiles": base["quartiles"],
            # the same collapses counted in G steps (n_critic arms make 1/n as many G steps an epoch)
            "collapse_g_step": f"{g_steps.median():g}" if len(g_steps) else "n/a",
            "collapse_incidence": base["collapse_incidence"], "divergence_incidence": base["divergence_incidence"],
            "final_quality": base["mean_final_quality"],
            "final_diversity": div_text, "final_modes_covered": modes_text, "logrank_p": p_text,
            "collapse_fraction": base["collapsed"] / kept if kept else math.nan,
            "final_diversity_mean": div_mean, "final_diversity_sd": div_sd,
            "final_modes_covered_mean": modes_mean, "final_modes_covered_sd": modes_sd})
    columns = keys + ["configs", "trials", "collapsed", "collapse_rate", "never_diverse", "diverged",
                      "median_collapse_epoch", "quartiles", "collapse_g_step", "collapse_incidence",
                      "divergence_incidence", "final_diversity", "final_quality", "final_modes_covered",
                      "logrank_p"] + HELPER_COLUMNS
    table = pd.DataFrame(rows, columns=columns)
    if keys and len(table):
        table = table.sort_values(keys, na_position="last", kind="stable")
    table.attrs["search_keys"] = keys
    return table.reset_index(drop=True)


def available_metrics(df: pd.DataFrame, names: Sequence[str], tracking_uri: str | None = None) -> list[str]:
    """The metrics among `names` that at least one trial of `df` logged, in the order of `names`."""
    client = MlflowClient(tracking_uri) if tracking_uri else MlflowClient()
    logged: set[str] = set()
    for run_id in df["run_id"].dropna():
        logged |= set(client.get_run(run_id).data.metrics)
        if logged.issuperset(names):
            break
    return [n for n in names if n in logged]
