"""How many trials of a study ran at once, from the start and end times of its MLflow trial runs (issue #12).

A run is open from its start_time to its end_time. The mean concurrency is the integral of the number of open runs
over the study's span (first start to last end) divided by that span; with N trial slots a study that fills them
has a mean close to N. Runs without an end time (still running, or killed with the driver) are left out.
"""
from __future__ import annotations

from typing import Any

from trainables import names

Span = tuple[float, float]  # (start, end) of one run, in seconds


def spans(runs: Any) -> list[Span]:
    """(start, end) seconds of each ended run: from MLflow Run objects, a `mlflow.search_runs` frame or pairs."""
    if hasattr(runs, "columns"):  # a pandas frame of mlflow.search_runs: datetime columns
        ended = runs.dropna(subset=["start_time", "end_time"])
        return [(a.timestamp(), b.timestamp()) for a, b in zip(ended["start_time"], ended["end_time"])]
    out: list[Span] = []
    for run in runs:
        info = getattr(run, "info", None)
        if info is not None:  # mlflow.entities.Run: epoch milliseconds
            if info.start_time is not None and info.end_time:
                out.append((info.start_time / 1000.0, info.end_time / 1000.0))
        elif run[1] is not None:
            out.append((float(run[0]), float(run[1])))
    return out


def mean_concurrency(runs: Any) -> float:
    """Time-averaged number of open runs between the first start and the last end (0.0 without runs)."""
    pairs = spans(runs)
    if not pairs:
        return 0.0
    span = max(b for _, b in pairs) - min(a for a, _ in pairs)
    busy = sum(b - a for a, b in pairs)
    return busy / span if span > 0 else float(len(pairs))


def max_concurrency(runs: Any) -> int:
    """The most runs open at one moment (a run that ends when another starts does not overlap it)."""
    events = sorted([(a, 1) for a, _ in spans(runs)] + [(b, -1) for _, b in spans(runs)])  # ends sort first
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def trial_runs(uri: str, experiment: str) -> list[Any]:
    """The trial (child) runs of an experiment in the store at `uri`, as MLflow Run objects."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    found: list[Any] = []
    token = None
    while True:
        page = client.search_runs([exp.experiment_id], f"tags.{names.ROLE} = '{names.ROLE_TRIAL}'",
                                  max_results=1000, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return found


def summary(runs: Any) -> dict[str, float]:
    """Trials, mean and max concurrency and the span in seconds, as one row of a benchmark or a test message."""
    pairs = spans(runs)
    span = max(b for _, b in pairs) - min(a for a, _ in pairs) if pairs else 0.0
    return {"runs": len(pairs), "mean": mean_concurrency(pairs), "max": max_concurrency(pairs), "span_s": span}
