"""Right-censored collapse times with divergence as a competing event (docs/collapse.md).

A trial that did not collapse is censored at the last epoch at which a collapse could still have been
confirmed ("69+" with patience 2 over 70 epochs), never counted as a collapse. A divergence before any
collapse is its own event: Kaplan-Meier gives the collapse-free survival with it censored (cause-specific),
and the Aalen-Johansen estimator gives the cumulative incidence of each event, collapse and divergence.
"""

from __future__ import annotations

import math

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
    trial; never-diverse trials left out. Collapses at their epoch, divergences at theirs, the rest censored at
    `censor_epoch` (the last confirmable collapse epoch), else at the epochs survived."""
    kept = df[df["outcome"] != EXCLUDED_OUTCOME]
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


def fmt_time(t: float | None, censor_at: float) -> str:
    """An epoch as text, or "N+" (right-censored at N) when the quantile is not reached."""
    value = censor_at if t is None else t
    text = f"{value:g}" if math.isfinite(value) else "?"
    return text + ("+" if t is None else "")
