"""Right-censored collapse times: Kaplan-Meier estimates and quantiles, and grouping trials by configuration.

A trial that did not collapse is counted at the epochs it survived ("70+"), never as a collapse at 70.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from trainables import names

EVENT_OUTCOME = names.COLLAPSED_OUTCOME
EXCLUDED_OUTCOME = names.NEVER_DIVERSE_OUTCOME  # never reached the threshold: no collapse time to estimate


def groups(df: pd.DataFrame, keys: list[str]):
    """(key values, rows) per configuration; one group holding everything when there are no keys."""
    if df.empty:
        return []
    if not keys:
        return [((), df)]
    grouped = df.groupby(keys, dropna=False, sort=False)
    return [((k if isinstance(k, tuple) else (k,)), g) for k, g in grouped]


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


def fmt_time(t: float | None, censor_at: float) -> str:
    """An epoch as text, or "N+" (right-censored at N) when the quantile is not reached."""
    value = censor_at if t is None else t
    text = f"{value:g}" if math.isfinite(value) else "?"
    return text + ("+" if t is None else "")
