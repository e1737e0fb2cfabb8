"""Tables of a study's trial frame (`study.report.load_trials`): plain text, settings per arm, mode coverage.

Pure pandas: no MLflow, no Ray. `study.report` re-exports these as part of the report API.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from study.survival import groups
from trainables import names

# numeric companions of the text columns: kept in the frames for computation, left out of format_table
HELPER_COLUMNS = ["final_diversity_mean", "final_diversity_sd", "collapse_fraction",
                  "final_modes_covered_mean", "final_modes_covered_sd",
                  "modes_covered_mean", "modes_covered_sd", "kl_mean", "kl_sd"]


def format_table(table: pd.DataFrame, title: str | None = None) -> str:
    """The summary table as fixed-width plain text (numeric helper columns left out)."""
    shown = table.drop(columns=HELPER_COLUMNS, errors="ignore")
    if shown.empty:
        body = "(no trials)"
    else:
        body = shown.astype(object).where(shown.notna(), "-").to_string(index=False)
    return f"{title}\n{body}" if title else body


def mean_sd(values: pd.Series, fmt: str) -> tuple[str, float, float]:
    """"mean ± sd" of the present values in `fmt`, with the mean and sd as numbers (sd 0 for one value)."""
    values = values.dropna()
    if values.empty:
        return "n/a", math.nan, math.nan
    mean, sd = float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return f"{mean:{fmt}} ± {sd:{fmt}}", mean, sd


def settings_table(df: pd.DataFrame, keys: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """What else each arm ran with: per `keys` group, the values of `columns` (a range when numbers vary)."""
    def describe(values: pd.Series) -> str:
        values = values[values.notna() & (values.astype(str) != "None")]  # params log an unset key as "None"
        if values.empty:
            return "-"
        if pd.api.types.is_numeric_dtype(values) and values.nunique() > 1:
            return f"{values.min():.3g}..{values.max():.3g}"
        return "/".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in dict.fromkeys(values))

    present = [c for c in columns if c in df.columns and c not in keys]
    rows = [dict(zip(keys, values)) | {c: describe(group[c]) for c in present}
            for values, group in groups(df, list(keys))]
    table = pd.DataFrame(rows, columns=list(keys) + present)
    return table.sort_values(list(keys), kind="stable").reset_index(drop=True) if keys and len(table) else table


# ---------------------------------------------------------------- mode coverage (stacked MNIST: 1,000 modes)

KL = names.KL_TO_UNIFORM


def _out_of(value: float, n_modes: int | None) -> str:
    """A mode count as text: "k / K" when the number of modes K is known."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:g} / {n_modes}" if n_modes else f"{value:g}"


def trial_table(df: pd.DataFrame, keys: Sequence[str], n_modes: int | None = None) -> pd.DataFrame:
    """One row per trial: the arm `keys` (`study.report.comparison_keys` gives a study's), seed, outcome, final
    modes covered ("k / K" with `n_modes`), final KL to uniform over the modes (column "eval/kl_to_uniform" of
    `load_trials(..., metrics=[...])`; "n/a" when not loaded) and final diversity."""
    keys = list(keys)
    kl = df[KL] if KL in df.columns else pd.Series(math.nan, index=df.index)
    table = pd.DataFrame({**{k: df[k] for k in keys if k != "seed"}, "seed": df["seed"], "outcome": df["outcome"],
                          "modes_covered": [_out_of(v, n_modes) for v in df["final_modes_covered"]],
                          "kl_to_uniform": [f"{v:.3f}" if math.isfinite(v) else "n/a" for v in kl.astype(float)],
                          "diversity": [f"{v:.4f}" if math.isfinite(v) else "n/a"
                                        for v in df["final_diversity"].astype(float)]})
    order = [k for k in keys if k != "seed"] + ["seed"]
    return table.sort_values(order, na_position="last", kind="stable").reset_index(drop=True)


def mode_table(df: pd.DataFrame, keys: Sequence[str], n_modes: int | None = None) -> pd.DataFrame:
    """One row per arm (`keys`): trials, final modes covered and final KL to
    uniform as mean ± sd over the trials, and the range of modes covered ("min-max / K")."""
    keys = list(keys)
    rows = []
    for values, group in groups(df, keys):
        modes_text, modes_mean, modes_sd = mean_sd(group["final_modes_covered"], ".1f")
        kl_col = group[KL] if KL in group.columns else pd.Series(dtype=float)
        kl_text, kl_mean, kl_sd = mean_sd(kl_col, ".3f")
        modes = group["final_modes_covered"].dropna()
        span = f"{modes.min():g}-{modes.max():g}" if len(modes) else "n/a"
        rows.append(dict(zip(keys, values)) | {
            "trials": len(group), "modes_covered": modes_text + (f" / {n_modes}" if n_modes and len(modes) else ""),
            "modes_range": span + (f" / {n_modes}" if n_modes and len(modes) else ""), "kl_to_uniform": kl_text,
            "modes_covered_mean": modes_mean, "modes_covered_sd": modes_sd, "kl_mean": kl_mean, "kl_sd": kl_sd})
    columns = keys + ["trials", "modes_covered", "modes_range", "kl_to_uniform",
                      "modes_covered_mean", "modes_covered_sd", "kl_mean", "kl_sd"]
    table = pd.DataFrame(rows, columns=columns)
    if keys and len(table):
        table = table.sort_values(keys, na_position="last", kind="stable")
    return table.reset_index(drop=True)
