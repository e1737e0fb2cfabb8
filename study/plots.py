"""Plots of a study from MLflow: Kaplan-Meier survival per configuration and per-epoch metric curves."""

from __future__ import annotations

import pandas as pd
from mlflow.tracking import MlflowClient

from study.survival import groups, kaplan_meier, survival_data


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
    for values, rows in groups(df, keys):
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
    for values, rows in groups(df, keys):
        curves = [metric_history(r, metric, client) for r in rows["run_id"]]
        curves = [c for c in curves if len(c)]
        if curves:
            mean = pd.concat(curves, axis=1).mean(axis=1)
            ax.plot(mean.index, mean.values, label=f"{_label(keys, values)} (n={len(curves)})")
    ax.set(xlabel="epoch", ylabel=f"mean {metric}")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    return ax
