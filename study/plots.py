"""Plots of a study from MLflow: Kaplan-Meier survival and Aalen-Johansen cumulative incidence per arm, the share
of trials in each collapse state per epoch, and per-epoch metric curves (docs/collapse.md). Imports no Ray."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
from mlflow.tracking import MlflowClient

from study.survival import cumulative_incidence, groups, kaplan_meier, km_fitter, survival_data
from trainables import names
from trainables.metrics.collapse import STATES

ENDED = "ended"  # a trial with no `state` at an epoch: it had stopped, diverged or failed before it
STATE_COLUMNS = (*STATES, ENDED)
STATE_COLOURS = {"not_learned": "#9e9e9e", "diverse": "#2ca02c", "collapsed": "#d62728", "degraded": "#ff7f0e",
                 ENDED: "#e8e8e8"}


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


def plot_survival(df: pd.DataFrame, ax=None, by=None, ci: bool = True, at_risk: bool = True):
    """Kaplan-Meier curves (Kaplan and Meier 1958; lifelines' KaplanMeierFitter, study.survival.kaplan_meier): the
    fraction of trials not yet collapsed vs epoch per arm, divergence censored, never-diverse trials left out;
    '+' = censored. `ci`: each curve's 95% band (exponential Greenwood, lifelines' default), shaded. `at_risk`: under
    the axes, lifelines' `add_at_risk_counts`: per arm, the trials still at risk after each epoch tick (time > t)."""
    from matplotlib.ticker import MaxNLocator

    ax = _axes(ax)
    keys = _plot_keys(df, by)
    fitters, labels = [], []
    for values, rows in groups(df, keys):
        surv = survival_data(rows)
        label = _label(keys, values)
        km = kaplan_meier(surv["time"], surv["event"])
        line, = ax.step(km["t"], km["survival"], where="post", label=label)
        if ci and len(km) > 1:
            ax.fill_between(km["t"], km["lower"], km["upper"], step="post", color=line.get_color(), alpha=0.15,
                            linewidth=0)
        cens = km[km["censored"] > 0]
        ax.plot(cens["t"], cens["survival"], "+", color=line.get_color(), markersize=10)
        fitter = km_fitter(surv["time"], surv["event"], label)
        if fitter is not None:
            fitters.append(fitter)
            labels.append(label)
    ax.set(xlabel="epoch", ylabel="fraction not yet collapsed", ylim=(-0.03, 1.05))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize="small")
    if at_risk and fitters:
        from lifelines.plotting import add_at_risk_counts

        ax.set_xlim(left=0)
        add_at_risk_counts(*fitters, ax=ax, fig=ax.figure, labels=labels, rows_to_show=["At risk"],
                           fontsize="small")
    return ax


def plot_cumulative_incidence(df: pd.DataFrame, ax=None, by=None):
    """Aalen-Johansen cumulative incidence (Aalen and Johansen 1978) of collapse (solid) and, in arms where a trial
    diverged before collapsing, of divergence (dashed, same colour) vs epoch: competing events, never-diverse trials
    left out (study.survival)."""
    ax = _axes(ax)
    keys = _plot_keys(df, by)
    for values, rows in groups(df, keys):
        surv = survival_data(rows)
        if surv.empty:
            continue
        cif = cumulative_incidence(surv["time"], surv["cause"])
        label = _label(keys, values)
        line, = ax.step(cif["t"], cif["collapse"], where="post", label=f"{label}: collapse")
        if cif["divergence"].iloc[-1] > 0:
            ax.step(cif["t"], cif["divergence"], where="post", ls="--", color=line.get_color(),
                    label=f"{label}: divergence")
    ax.set(xlabel="epoch", ylabel="cumulative incidence", ylim=(-0.03, 1.05))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no trial with a collapse time\n(none was ever diverse)", ha="center", va="center",
                transform=ax.transAxes)
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


def state_shares(histories: Iterable[pd.Series]) -> pd.DataFrame:
    """Share of trials in each state per epoch, from per-trial `state` histories (epoch -> index into STATES).

    Rows: epochs 1..the last one any trial logged; columns: STATES then "ended" (no state logged at that epoch:
    the trial had ended, or logged none); each row sums to 1 over all given trials. No trial logged a state:
    an empty frame."""
    histories = list(histories)
    last = max((int(h.index.max()) for h in histories if len(h)), default=0)
    tally = {state: [0] * last for state in STATES}
    for history in histories:
        for epoch, code in zip(history.index.tolist(), history.tolist()):
            if code != code or code != int(code) or not 0 <= int(code) < len(STATES) or int(epoch) < 1:
                raise ValueError(f"state {code!r} at epoch {epoch}: expected epochs >= 1 and indices into {STATES}")
            tally[STATES[int(code)]][int(epoch) - 1] += 1
    counts = pd.DataFrame(tally, index=pd.RangeIndex(1, last + 1, name="epoch"), dtype=float)
    counts[ENDED] = len(histories) - counts.sum(axis=1)
    return counts / len(histories) if len(histories) else counts


def states_by_arm(df: pd.DataFrame, by=None, tracking_uri: str | None = None) -> list[tuple[tuple, int, pd.DataFrame]]:
    """(arm key values, trials, `state_shares` of their MLflow `state` histories) per arm (`by` as plot_survival)."""
    client = MlflowClient(tracking_uri) if tracking_uri else MlflowClient()
    return [(values, len(rows), state_shares(metric_history(r, names.STATE, client) for r in rows["run_id"]))
            for values, rows in groups(df, _plot_keys(df, by))]


def _panels(ax, n: int) -> list:
    """n axes: a new row of panels (ax None), the given ones (a sequence), or `ax`'s slot split into n."""
    import matplotlib.pyplot as plt

    if ax is None:
        cols = min(n, 4)
        grid = plt.subplots(-(-n // cols), cols, figsize=(4 * cols, 3.2 * -(-n // cols)), squeeze=False,
                            layout="constrained")[1].flat
        for unused in grid[n:]:
            unused.remove()
        return list(grid[:n])
    if not hasattr(ax, "get_subplotspec"):
        axes = list(ax.flat if hasattr(ax, "flat") else ax)
        if len(axes) < n:
            raise ValueError(f"{n} arms need {n} axes, got {len(axes)}")
        return axes[:n]
    if n == 1:
        return [ax]
    if ax.get_subplotspec() is None:
        raise ValueError(f"{n} arms need {n} axes: pass a sequence, or axes made by plt.subplots")
    fig, spec = ax.figure, ax.get_subplotspec().subgridspec(1, n, wspace=0.08)
    ax.remove()
    return [fig.add_subplot(spec[i]) for i in range(n)]


def plot_states(df: pd.DataFrame, ax=None, by=None, tracking_uri: str | None = None) -> list:
    """Per arm (one panel each), stacked bars over epochs of the share of trials in each collapse state (per-epoch
    metric `state`; not_learned, diverse, collapsed, degraded, and "ended" once a trial has stopped). `ax`: None
    (a new figure), one Axes (its slot split into one panel per arm) or a sequence of Axes. -> the panels."""
    from matplotlib.ticker import MaxNLocator

    keys = _plot_keys(df, by)
    arms = states_by_arm(df, keys, tracking_uri)
    panels = _panels(ax, max(1, len(arms)))
    for panel, (values, n, shares) in zip(panels, arms):
        bottom = pd.Series(0.0, index=shares.index)
        for state in STATE_COLUMNS if len(shares) else ():
            panel.bar(shares.index, shares[state], bottom=bottom, width=0.9, color=STATE_COLOURS[state], label=state)
            bottom = bottom + shares[state]
        if shares.empty:
            panel.text(0.5, 0.5, "no state logged", ha="center", va="center", transform=panel.transAxes)
        panel.set(title=f"{_label(keys, values)} (n={n})", xlabel="epoch", ylim=(0, 1))
        panel.xaxis.set_major_locator(MaxNLocator(integer=True))
    for panel in panels:
        spec = panel.get_subplotspec()
        if spec is None or spec.is_first_col():
            panel.set_ylabel("share of trials")
        else:
            panel.tick_params(labelleft=False)
    drawn = next((p for p in panels if p.get_legend_handles_labels()[0]), None)
    if drawn is not None and ax is None:  # our figure (constrained layout): one legend beside the grid
        drawn.figure.legend(*drawn.get_legend_handles_labels(), fontsize="small", loc="outside right center")
    elif drawn is not None:
        panels[-1].legend(*drawn.get_legend_handles_labels(), fontsize="small", loc="center left",
                          bbox_to_anchor=(1.0, 0.5))
    return panels
