"""`python -m study.reproduce SPEC [--quick] [--tracking-uri U]`: the study's table in the layout of the
published one it reproduces (study/published.py), mean ± standard error over seeds beside the published
cells, each marked, then the study's survival summary (docs/protocols.md, "Reproduction report").

A cell is marked `ok` when the two intervals mean ± 2 SE (the platform's over its seeds, the paper's as
published) overlap, `low` or `high` when the platform's interval lies wholly below or above the paper's.
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

import pandas as pd

from study.published import PUBLISHED, Published


def mean_se(values: pd.Series) -> tuple[float, float, int]:
    """(mean, standard error, n) of the finite values; SE 0 with one value, NaN with none."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    n = len(v)
    if n == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0, n


def mark(ours: tuple[float, float], theirs: tuple[float, float | None]) -> str:
    """ok / low / high: whether mean ± 2 SE of ours and of the published cell overlap (see module doc)."""
    (m, se), (pm, pse) = ours, theirs
    if math.isnan(m):
        return "-"
    lo, hi, plo, phi = m - 2 * se, m + 2 * se, pm - 2 * (pse or 0.0), pm + 2 * (pse or 0.0)
    return "low" if hi < plo else "high" if lo > phi else "ok"


def _cell(mean: float, se: float | None, digits: int) -> str:
    return "-" if math.isnan(mean) else f"{mean:.{digits}f}" + ("" if se is None else f" ± {se:.{digits}f}")


def reproduction_table(df: pd.DataFrame, table: Published) -> pd.DataFrame:
    """One row per published row: per column "ours [paper's] mark", ours as mean ± SE over the row's seeds.
    `df`: one row per trial with `table.key` and the columns' metrics (study.report.load_trials)."""
    rows = []
    for arm, (label, cells) in table.rows.items():
        trials = df[df[table.key].astype(str) == arm] if table.key in df else df.iloc[0:0]
        row: dict[str, object] = {"row": label, "seeds": len(trials)}
        for col, published in zip(table.columns, cells):
            values = trials[col.metric] * col.scale if col.metric in trials else pd.Series(dtype=float)
            m, se, _ = mean_se(values)
            paper = _cell(published[0], published[1], col.digits)
            row[col.label] = f"{_cell(m, se, col.digits)} [{paper}] {mark((m, se), published)}"
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m study.reproduce", description=__doc__.splitlines()[0])
    p.add_argument("spec")
    p.add_argument("--quick", action="store_true", help="the study's quick run (its experiment)")
    p.add_argument("--tracking-uri", default=None, help="MLflow store (default: the runner's)")
    p.add_argument("--experiment", default=None, help="MLflow experiment (default: the spec's)")
    args = p.parse_args(argv)
    from study.run import find_spec
    from study.spec import SpecError, load_spec

    try:
        spec = load_spec(find_spec(args.spec), quick=args.quick)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if spec.name not in PUBLISHED:
        print(f"error: {spec.name}: no published table to compare with; known: {', '.join(PUBLISHED)}",
              file=sys.stderr)
        return 2
    from study import report, tracking

    tables = PUBLISHED[spec.name]
    experiment = args.experiment or spec.tracking.experiment or spec.name
    uri = tracking.resolve_uri(args.tracking_uri or spec.tracking.uri)
    metrics = list(dict.fromkeys(c.metric for table in tables for c in table.columns))
    try:
        df = report.load_trials(experiment, tracking_uri=uri, metrics=metrics)
    except LookupError as err:
        print(f"error: {err}; run `python -m study.run {args.spec}{' --quick' if args.quick else ''}` first",
              file=sys.stderr)
        return 2
    pd.set_option("display.width", 250)
    for table in tables:
        print(f"{table.cite}: mean ± standard error over seeds ({table.trials} trials in the paper), at each "
              f"trial's last epoch; experiment {experiment!r} at {uri}")
        print(reproduction_table(df, table).to_string(index=False) + "\n")
    print("cells: ours [the paper's] mark; ok = the mean ± 2 SE intervals overlap (a cell published without a "
          "spread is a point), low/high = ours lies wholly below/above the paper's")
    print(report.format_table(report.summary_table(df), title="\nsurvival (collapse verdict, docs/collapse.md):"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
