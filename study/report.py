"""Study reports from MLflow only: trial table, Kaplan-Meier collapse statistics, plots.

Reads what the runner logged (one parent run per study, one child run per trial) and never imports
Ray or training code. Collapse times are right-censored data: a trial that did not collapse is
counted at the epochs it survived, so summaries use the Kaplan-Meier estimator, never a plain mean.
"""

from __future__ import annotations

import json
import math

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

EVENT_OUTCOME = "collapsed"
EXCLUDED_OUTCOME = "never_diverse"  # never reached the threshold: no collapse time to estimate
TRIAL_COLUMNS = ["run_id", "outcome", "seed"]
TAIL_COLUMNS = ["train.epochs", "collapse_epoch", "epochs_survived", "collapsed",
                "final_diversity", "final_modes_covered"]
METRIC_COLUMNS = {"collapse_epoch": "collapse_epoch", "epochs_survived": "epochs_survived",
                  "collapsed": "collapsed", "final_diversity": "eval/diversity",
                  "final_modes_covered": "eval/modes_covered"}


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
    runs = mlflow.search_runs(experiment_names=[experiment], filter_string="tags.gan_study.role = 'study'",
                              order_by=["attribute.start_time DESC"], max_results=1)
    if runs.empty:
        raise LookupError(f"experiment {experiment!r} at {mlflow.get_tracking_uri()} has no study run "
                          "(tag gan_study.role = 'study'); run `python -m study.run SPEC` first")
    return str(runs["run_id"].iloc[0])


def _search_keys(parent_run_id: str) -> list[str]:
    """The dotted config keys that vary between configurations, from the parent's tag."""
    raw = MlflowClient().get_run(parent_run_id).data.tags.get("gan_study.search_keys", "[]")
    return list(json.loads(raw or "[]"))


def load_trials(experiment: str, tracking_uri: str | None = None,
                parent_run_id: str | None = None) -> pd.DataFrame:
    """One row per trial (child) run of the latest study parent run, or of `parent_run_id`."""
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    if MlflowClient().get_experiment_by_name(experiment) is None:
        raise LookupError(f"no MLflow experiment {experiment!r} at {mlflow.get_tracking_uri()}")
    parent = parent_run_id or _latest_parent(experiment)
    keys = _search_keys(parent)
    runs = mlflow.search_runs(experiment_names=[experiment],
                              filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    role = runs.get("tags.gan_study.role", pd.Series(index=runs.index, dtype=object))
    runs = runs[role.isna() | (role == "trial")]
    df = _trial_frame(runs, keys)
    df.attrs["search_keys"] = keys
    df.attrs["parent_run_id"] = parent
    return df


def _trial_frame(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Select and parse the report columns from a `mlflow.search_runs` frame."""
    def col(name: str) -> pd.Series:
        return runs[name] if name in runs else pd.Series([None] * len(runs), index=runs.index, dtype=object)

    out = pd.DataFrame({"run_id": col("run_id"), "outcome": col("tags.gan_study.outcome"),
                        "seed": _numeric(col("params.seed"))})
    for key in keys:
        if key not in out:
            out[key] = _numeric(col(f"params.{key}"))
    out["train.epochs"] = _numeric(col("params.train.epochs"))
    for name, metric in METRIC_COLUMNS.items():
        out[name] = pd.to_numeric(col(f"metrics.{metric}"), errors="coerce")
    out["collapsed"] = out["collapsed"].fillna((out["outcome"] == EVENT_OUTCOME).astype(float)).astype(int)
    survived = out["epochs_survived"].fillna(out["collapse_epoch"])
    out["epochs_survived"] = survived.fillna(0.0)
    order = list(dict.fromkeys(keys + ["seed"]))
    return out.sort_values(order, na_position="last").reset_index(drop=True)


# ---------------------------------------------------------------- survival statistics


def survival_data(df: pd.DataFrame) -> pd.DataFrame:
    """Time and event per trial, never_diverse trials left out; censored trials at epochs_survived."""
    kept = df[df["outcome"] != EXCLUDED_OUTCOME]
    event = (kept["outcome"] == EVENT_OUTCOME) & kept["collapse_epoch"].notna()
    time = kept["collapse_epoch"].where(event, kept["epochs_survived"])
    return pd.DataFrame({"time": time.astype(float), "event": event.astype(bool)}, index=kept.index)


def kaplan_meier(times, events) -> pd.DataFrame:
    """Kaplan-Meier product-limit survival estimate (Kaplan and Meier 1958), S(0) = 1.

    Rows: t = 0, then every distinct positive time; `survival` holds S(t) just after t (step
    function, right-continuous). A censoring tied with an event counts as still at risk at t.
    """
    t_all = np.asarray(times, dtype=float)
    e_all = np.asarray(events, dtype=bool)
    rows = [(0.0, int((t_all >= 0).sum()), 0, 0, 1.0)]
    surv = 1.0
    for t in np.unique(t_all[t_all > 0]):
        at_risk = int((t_all >= t).sum())
        d = int(((t_all == t) & e_all).sum())
        c = int(((t_all == t) & ~e_all).sum())
        surv *= 1.0 - d / at_risk
        rows.append((float(t), at_risk, d, c, surv))
    return pd.DataFrame(rows, columns=["t", "at_risk", "events", "censored", "survival"])


def km_quantile(times, events, q: float) -> float | None:
    """Smallest t with S(t) <= 1 - q on the Kaplan-Meier curve (Brookmeyer and Crowley 1982); None if never."""
    km = kaplan_meier(times, events)
    hit = km[(km["events"] > 0) & (km["survival"] <= 1.0 - q + 1e-12)]
    return None if hit.empty else float(hit["t"].iloc[0])


def _fmt_time(t: float | None, censor_at: float) -> str:
    """An epoch as text, or "N+" (right-censored at N) when the quantile is not reached."""
    value = censor_at if t is None else t
    text = f"{value:g}" if math.isfinite(value) else "?"
    return text + ("+" if t is None else "")


# ---------------------------------------------------------------- summary table


def _groups(df: pd.DataFrame, keys: list[str]):
    """(key values, rows) per configuration; one group holding everything when there are no keys."""
    if df.empty:
        return []
    if not keys:
        return [((), df)]
    grouped = df.groupby(keys, dropna=False, sort=False)
    return [((k if isinstance(k, tuple) else (k,)), g) for k, g in grouped]


def _summary_row(rows: pd.DataFrame) -> dict:
    """Counts, Kaplan-Meier median and quartiles of collapse epoch, final diversity of one configuration."""
    surv = survival_data(rows)
    censor_at = float(surv["time"].max()) if len(surv) else float("nan")
    quant = {q: km_quantile(surv["time"], surv["event"], q) for q in (0.25, 0.5, 0.75)}
    div = rows["final_diversity"].dropna()
    mean = float(div.mean()) if len(div) else float("nan")
    sd = float(div.std(ddof=1)) if len(div) > 1 else (0.0 if len(div) else float("nan"))
    no_data = surv.empty
    return {
        "seeds": len(rows),
        "collapsed": int(surv["event"].sum()),
        "never_diverse": int((rows["outcome"] == EXCLUDED_OUTCOME).sum()),
        "diverged": int((rows["outcome"] == "diverged").sum()),
        "median_collapse_epoch": "n/a" if no_data else _fmt_time(quant[0.5], censor_at),
        "spread": "n/a" if no_data else
        f"{_fmt_time(quant[0.25], censor_at)}-{_fmt_time(quant[0.75], censor_at)}",
        "mean_final_diversity": "n/a" if math.isnan(mean) else f"{mean:.3f} ± {sd:.3f}",
        "final_diversity_mean": mean,
        "final_diversity_sd": sd,
    }


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration (search keys): seeds, outcome counts, KM median and quartiles, diversity."""
    keys = [k for k in df.attrs.get("search_keys", []) if k in df.columns]
    rows = [dict(zip(keys, values)) | _summary_row(group) for values, group in _groups(df, keys)]
    table = pd.DataFrame(rows, columns=keys + ["seeds", "collapsed", "never_diverse", "diverged",
                                               "median_collapse_epoch", "spread", "mean_final_diversity",
                                               "final_diversity_mean", "final_diversity_sd"])
    if keys and len(table):
        table = table.sort_values(keys, na_position="last", kind="stable")
    table.attrs["search_keys"] = keys
    return table.reset_index(drop=True)


def format_table(table: pd.DataFrame, title: str | None = None) -> str:
    """The summary table as fixed-width plain text (numeric helper columns left out)."""
    shown = table.drop(columns=["final_diversity_mean", "final_diversity_sd"], errors="ignore")
    if shown.empty:
        body = "(no trials)"
    else:
        body = shown.astype(object).where(shown.notna(), "-").to_string(index=False)
    return f"{title}\n{body}" if title else body


# ---------------------------------------------------------------- plots


def _label(keys: list[str], values: tuple) -> str:
    """Legend text for one configuration."""
    return ", ".join(f"{k.rsplit('.', 1)[-1] if len(keys) > 1 else k}={v}"
                     for k, v in zip(keys, values)) or "all trials"


def _axes(ax):
    """The given axes, or a new figure's."""
    if ax is None:
        import matplotlib.pyplot as plt
        _, ax = plt.subplots(figsize=(6, 4))
    return ax


def _plot_keys(df: pd.DataFrame, by) -> list[str]:
    """Grouping columns for a plot: `by` (str or list) or the study's search keys."""
    if by is None:
        return [k for k in df.attrs.get("search_keys", []) if k in df.columns]
    return [by] if isinstance(by, str) else list(by)


def plot_survival(df: pd.DataFrame, ax=None, by=None):
    """Kaplan-Meier curves (Kaplan and Meier 1958): fraction of seeds not yet collapsed vs epoch, '+' = censored."""
    ax = _axes(ax)
    keys = _plot_keys(df, by)
    for values, rows in _groups(df, keys):
        surv = survival_data(rows)
        km = kaplan_meier(surv["time"], surv["event"])
        line, = ax.step(km["t"], km["survival"], where="post", label=_label(keys, values))
        cens = km[km["censored"] > 0]
        ax.plot(cens["t"], cens["survival"], "+", color=line.get_color(), markersize=10)
    ax.set(xlabel="epoch", ylabel="fraction not yet collapsed", ylim=(-0.03, 1.05))
    ax.legend(fontsize="small")
    return ax


def metric_history(run_id: str, metric: str, client: MlflowClient | None = None) -> pd.Series:
    """Per-epoch values of one metric of one run (step = epoch; the last value logged per step)."""
    history = (client or MlflowClient()).get_metric_history(run_id, metric)
    ordered = sorted(history, key=lambda m: (m.step, m.timestamp))
    return pd.Series({m.step: m.value for m in ordered}, dtype=float).sort_index()


def plot_metric_curves(df: pd.DataFrame, metric: str = "eval/diversity", tracking_uri: str | None = None,
                       ax=None, by=None):
    """Mean of a per-epoch metric across the seeds of each configuration vs epoch."""
    ax = _axes(ax)
    client = MlflowClient(tracking_uri) if tracking_uri else MlflowClient()
    keys = _plot_keys(df, by)
    for values, rows in _groups(df, keys):
        curves = [metric_history(r, metric, client) for r in rows["run_id"]]
        curves = [c for c in curves if len(c)]
        if curves:
            mean = pd.concat(curves, axis=1).mean(axis=1)
            ax.plot(mean.index, mean.values, label=f"{_label(keys, values)} (n={len(curves)})")
    ax.set(xlabel="epoch", ylabel=f"mean {metric}")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    return ax
