"""Right-censored collapse times with divergence as a competing event (docs/collapse.md).

A trial that did not collapse is censored at the last epoch at which a collapse could still have been
confirmed ("69+" with patience 2 over 70 epochs), never counted as a collapse. A divergence before any
collapse is its own event: Kaplan-Meier (lifelines' `KaplanMeierFitter`, with its 95% exponential-Greenwood
band) gives the collapse-free survival with it censored (cause-specific), the log-rank test (lifelines'
`multivariate_logrank_test`) compares those curves between arms, and the Aalen-Johansen estimator (written
here, cross-checked against lifelines' `AalenJohansenFitter` in the tests) gives the cumulative incidence of
each event, collapse and divergence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trainables import names

EVENT_OUTCOME = names.COLLAPSED_OUTCOME
EXCLUDED_OUTCOME = names.NEVER_DIVERSE_OUTCOME  # never diverse: no collapse time to estimate
CENSORED, COLLAPSE, DIVERGENCE = 0, 1, 2  # the event codes of `survival_data`


def groups(df: pd.DataFrame, keys: list[str]):
    """(key values, rows) per configuration; one group holding everything when there are no keys."""
    if df.empty:
        return []
    if not keys:
        return [((), df)]
    grouped = df.groupby(keys, dropna=False, sort=False)
    return [((k if isinstance(k, tuple) else (k,)), g) for k, g in grouped]


def _column(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name] if name in df else pd.Series(np.nan, index=df.index)


def survival_data(df: pd.DataFrame) -> pd.DataFrame:
    """Time, event (collapse, True/False) and cause (0 censored, 1 collapse, 2 divergence before collapse) per
    trial; never-diverse and failed trials left out (a crash says nothing about collapse: it is neither an event
    nor a censoring). Collapses at their epoch, divergences at theirs, the rest censored at `censor_epoch` (the
    last confirmable collapse epoch), else at the epochs survived."""
    kept = df[~df["outcome"].isin([EXCLUDED_OUTCOME, names.FAILED])]
    collapse = (kept["outcome"] == EVENT_OUTCOME) & kept["collapse_epoch"].notna()
    diverged = ~collapse & (_column(kept, "diverge_epoch").notna() | (kept["outcome"] == names.DIVERGED_OUTCOME))
    diverge_at = _column(kept, "diverge_epoch").fillna(kept["epochs_survived"])
    censored_at = _column(kept, "censor_epoch").fillna(kept["epochs_survived"])
    time = kept["collapse_epoch"].where(collapse, diverge_at.where(diverged, censored_at))
    cause = np.where(collapse, COLLAPSE, np.where(diverged, DIVERGENCE, CENSORED))
    return pd.DataFrame({"time": time.astype(float), "event": collapse.astype(bool), "cause": cause},
                        index=kept.index)


def cumulative_incidence(times, causes) -> pd.DataFrame:
    """Aalen-Johansen cumulative incidence of collapse and of divergence (competing events; Aalen and Johansen
    1978): rows t = 0 and every distinct event or censoring time; `collapse` and `divergence` hold each event's
    incidence just after t, `free` the probability of neither (the all-cause Kaplan-Meier)."""
    t_all, c_all = np.asarray(times, dtype=float), np.asarray(causes, dtype=int)
    rows, free, inc = [(0.0, int(len(t_all)), 0.0, 0.0, 1.0)], 1.0, {COLLAPSE: 0.0, DIVERGENCE: 0.0}
    for t in np.unique(t_all[t_all > 0]):
        at_risk = int((t_all >= t).sum())
        for cause in (COLLAPSE, DIVERGENCE):
            inc[cause] += free * int(((t_all == t) & (c_all == cause)).sum()) / at_risk
        free *= 1.0 - int(((t_all == t) & (c_all != CENSORED)).sum()) / at_risk
        rows.append((float(t), at_risk, inc[COLLAPSE], inc[DIVERGENCE], free))
    return pd.DataFrame(rows, columns=["t", "at_risk", "collapse", "divergence", "free"])


def _clean(times, events) -> tuple[np.ndarray, np.ndarray]:
    """Times and event flags as arrays, rows without a time (NaN) or with a negative one left out."""
    t_all, e_all = np.asarray(times, dtype=float), np.asarray(events, dtype=bool)
    keep = np.isfinite(t_all) & (t_all >= 0)
    return t_all[keep], e_all[keep]


def km_fitter(times, events, label: str | None = None):
    """lifelines' KaplanMeierFitter fitted to `times`, `events` (95% exponential-Greenwood band); None without
    data. numpy's error state is restored after the fit (lifelines sets divide and invalid to "ignore")."""
    from lifelines import KaplanMeierFitter

    t_all, e_all = _clean(times, events)
    if not len(t_all):
        return None
    with np.errstate():
        return KaplanMeierFitter(alpha=0.05).fit(t_all, event_observed=e_all, label=label or "KM_estimate")


def kaplan_meier(times, events) -> pd.DataFrame:
    """Kaplan-Meier product-limit survival estimate (Kaplan and Meier 1958), S(0) = 1, by lifelines'
    KaplanMeierFitter.

    Rows: t = 0, then every distinct positive time; `survival` holds S(t) just after t (step function,
    right-continuous); `lower` and `upper` its 95% confidence band (exponential Greenwood, lifelines' default).
    `at_risk`: trials with time >= t (a censoring tied with an event counts as still at risk at t); `events`,
    `censored`: collapses and censorings at t. Without data: the one row t = 0, S = 1.
    """
    columns = ["t", "at_risk", "events", "censored", "survival", "lower", "upper"]
    kmf = km_fitter(times, events)
    if kmf is None:
        return pd.DataFrame([(0.0, 0, 0, 0, 1.0, 1.0, 1.0)], columns=columns)
    table = kmf.event_table
    band = kmf.confidence_interval_survival_function_
    return pd.DataFrame({"t": table.index.to_numpy(dtype=float), "at_risk": table["at_risk"].to_numpy(dtype=int),
                         "events": table["observed"].to_numpy(dtype=int),
                         "censored": table["censored"].to_numpy(dtype=int),
                         "survival": kmf.survival_function_.iloc[:, 0].to_numpy(dtype=float),
                         "lower": band.iloc[:, 0].to_numpy(dtype=float),
                         "upper": band.iloc[:, 1].to_numpy(dtype=float)}, columns=columns)


def km_quantile(times, events, q: float) -> float | None:
    """Smallest t with S(t) <= 1 - q on the Kaplan-Meier curve (Brookmeyer and Crowley 1982); None if never.

    Not lifelines' `qth_survival_time`: lifelines computes S(t) as exp(sum log(1 - d/n)), so a level the curve
    hits exactly comes out a rounding above it (3/4 as 0.7500000000000001) and its exact search skips that time
    (one collapse among 4 trials at epoch 1: the 25% quantile is 1, lifelines says a later epoch or never).
    Here the comparison allows 1e-12."""
    km = kaplan_meier(times, events)
    hit = km[(km["events"] > 0) & (km["survival"] <= 1.0 - q + 1e-12)]
    return None if hit.empty else float(hit["t"].iloc[0])


@dataclass(frozen=True)
class LogRank:
    """A log-rank test of the collapse-free survival between arms (lifelines' `multivariate_logrank_test`):
    chi-squared `statistic` with `dof` = arms - 1 degrees of freedom, its `p_value`, over `trials` trials (never
    diverse ones left out) holding `events` collapses."""

    statistic: float
    dof: int
    p_value: float
    arms: int
    trials: int
    events: int

    def __str__(self) -> str:
        return (f"log-rank test of collapse between {self.arms} arms ({self.trials} trials, {self.events} "
                f"collapses; divergence censored): chi2 = {self.statistic:.3g}, df = {self.dof}, "
                f"p = {fmt_p(self.p_value)}")


NO_LOGRANK = "log-rank test of collapse between arms: n/a (fewer than two arms with a collapse time, or no collapse)"


def logrank(df: pd.DataFrame, keys: list[str]) -> LogRank | None:
    """Log-rank test (Mantel 1966; Peto and Peto 1972) of the null hypothesis that every arm of `df` (one per
    combination of `keys`, as `groups`) has the same collapse-free survival: event = collapse, a divergence
    before it censored (cause-specific), never-diverse trials left out (`survival_data`). None (shown "n/a")
    with fewer than two arms holding a collapse time, or without any collapse."""
    from lifelines.statistics import multivariate_logrank_test

    arms = [surv for _, rows in groups(df, keys) if len(surv := survival_data(rows).dropna(subset=["time"]))]
    if len(arms) < 2 or not any(surv["event"].any() for surv in arms):
        return None
    data = pd.concat([surv.assign(arm=i) for i, surv in enumerate(arms)], ignore_index=True)
    with np.errstate():
        result = multivariate_logrank_test(data["time"], data["arm"], data["event"].astype(int))
    return LogRank(float(result.test_statistic), int(result.degrees_of_freedom), float(result.p_value),
                   len(arms), len(data), int(data["event"].sum()))


def fmt_p(p: float | None) -> str:
    """A p-value as text: three significant digits, "n/a" when there is none."""
    return "n/a" if p is None or not math.isfinite(p) else f"{p:.3g}"


def fmt_time(t: float | None, censor_at: float) -> str:
    """An epoch as text, or "N+" (right-censored at N) when the quantile is not reached."""
    value = censor_at if t is None else t
    text = f"{value:g}" if math.isfinite(value) else "?"
    return text + ("+" if t is None else "")
