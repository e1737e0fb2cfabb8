"""Known-answer tests for study.plots: state shares per epoch (by hand and from a real MLflow store), the
Kaplan-Meier curves with their bands and at-risk counts, and the cumulative-incidence curves; the plots themselves
must draw with the Agg backend."""
from __future__ import annotations

import io
import json
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from study.plots import (
    ENDED,
    plot_cumulative_incidence,
    plot_states,
    plot_survival,
    state_shares,
    states_by_arm,
)
from study.report import load_trials
from study.survival import kaplan_meier
from trainables import names
from trainables.metrics.collapse import COLLAPSED, DEGRADED, DIVERSE, NOT_LEARNED, STATE_CODE, STATES

KEY = "remedies.label_flip.rate"
N, D, C, G = (STATE_CODE[s] for s in (NOT_LEARNED, DIVERSE, COLLAPSED, DEGRADED))


def _series(codes: dict[int, int]) -> pd.Series:
    return pd.Series({e: float(c) for e, c in codes.items()}, dtype=float)


# Four trials: A collapses at 3; B learns at 2 and degrades at 4; C collapses at 2 and stops; D logged nothing.
#   epoch 1: diverse A, C; not_learned B; ended D     -> 2/4, 1/4, 1/4
#   epoch 2: diverse A, B; collapsed C; ended D       -> 2/4, 1/4, 1/4
#   epoch 3: collapsed A; diverse B; ended C, D       -> 1/4, 1/4, 2/4
#   epoch 4: collapsed A; degraded B; ended C, D      -> 1/4, 1/4, 2/4
HISTORIES = [{1: D, 2: D, 3: C, 4: C}, {1: N, 2: D, 3: D, 4: G}, {1: D, 2: C}, {}]
EXPECTED = pd.DataFrame(
    [[1 / 4, 2 / 4, 0, 0, 1 / 4], [0, 2 / 4, 1 / 4, 0, 1 / 4],
     [0, 1 / 4, 1 / 4, 0, 2 / 4], [0, 0, 1 / 4, 1 / 4, 2 / 4]],
    index=pd.RangeIndex(1, 5, name="epoch"), columns=[*STATES, ENDED])


def test_state_shares_by_hand():
    shares = state_shares(_series(h) for h in HISTORIES)
    pd.testing.assert_frame_equal(shares, EXPECTED)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)


def test_state_shares_edge_cases():
    assert state_shares([]).empty
    assert state_shares([_series({}), _series({})]).empty  # nobody logged a state
    one = state_shares([_series({2: D})])  # a missing first epoch counts as no state
    assert one.loc[1, ENDED] == 1.0 and one.loc[2, DIVERSE] == 1.0
    for bad in ({1: 7}, {1: 0.5}, {0: D}):
        with pytest.raises(ValueError, match="expected epochs >= 1 and indices into"):
            state_shares([_series(bad)])


def _log_study(uri: str, experiment: str, arms: dict[float, list[dict[int, int]]]) -> None:
    """A parent run searching KEY and one trial run per `state` history, the last value per epoch logged last."""
    client = MlflowClient(uri)
    exp_id = client.create_experiment(experiment)
    parent = client.create_run(exp_id, start_time=1_000, tags={
        names.ROLE: names.ROLE_STUDY, names.STUDY: experiment, names.SEARCH_KEYS: json.dumps([KEY])})
    t0 = 2_000
    for rate, histories in arms.items():
        for seed, history in enumerate(histories):
            run = client.create_run(exp_id, start_time=t0, tags={
                names.PARENT: parent.info.run_id, names.ROLE: names.ROLE_TRIAL, names.OUTCOME: names.CENSORED})
            metrics = [Metric(names.STATE, float(code), t0 + epoch, epoch) for epoch, code in history.items()]
            metrics += [Metric(names.EPOCHS_SURVIVED, float(epoch), t0 + epoch, epoch) for epoch in history]
            client.log_batch(run.info.run_id, metrics=metrics, params=[
                Param(names.SEED_PARAM, str(seed)), Param(names.EPOCHS_PARAM, "4"),
                Param(names.SEARCH_PARAM + KEY, str(rate))])
            client.set_terminated(run.info.run_id)
            t0 += 100


def test_states_by_arm_and_plot_from_a_real_store(tracking_uri):
    _log_study(tracking_uri, "states_test", {0.0: HISTORIES, 0.1: [{1: D, 2: D}, {1: D, 2: D}]})
    trials = load_trials("states_test", tracking_uri=tracking_uri)
    arms = states_by_arm(trials, tracking_uri=tracking_uri)
    assert [(values, n) for values, n, _ in arms] == [((0.0,), 4), ((0.1,), 2)]
    pd.testing.assert_frame_equal(arms[0][2], EXPECTED)
    assert arms[1][2][DIVERSE].tolist() == [1.0, 1.0] and arms[1][2][ENDED].tolist() == [0.0, 0.0]

    fig, ax = plt.subplots(figsize=(8, 3))
    panels = plot_states(trials, ax=ax, tracking_uri=tracking_uri)  # one slot split into a panel per arm
    assert len(panels) == 2 and len(fig.axes) == 2
    assert [p.get_title() for p in panels] == [f"{KEY}=0.0 (n=4)", f"{KEY}=0.1 (n=2)"]
    diverse_bars = [b.get_height() for b in panels[0].patches][len(EXPECTED):2 * len(EXPECTED)]
    np.testing.assert_allclose(diverse_bars, EXPECTED[DIVERSE])  # bars stacked in STATES order
    fig.savefig(tracking_uri.removeprefix("sqlite:///") + ".png")
    plt.close(fig)
    plt.close(plot_states(trials, by=[], tracking_uri=tracking_uri)[0].figure)  # all trials in one panel


def _competing_frame() -> pd.DataFrame:
    """Arm 0.0: times 2 (collapse), 3 (divergence), 3 (censored), 5 (collapse), 6 (censored); arm 0.1: 4 (collapse),
    6 (censored) and a never-diverse trial, left out."""
    nan = math.nan
    df = pd.DataFrame({
        "outcome": ["collapsed", "diverged", "censored", "collapsed", "censored", "collapsed", "censored",
                    "never_diverse"],
        "collapse_epoch": [2, nan, nan, 5, nan, 4, nan, nan], "diverge_epoch": [nan, 3, nan, nan, nan, nan, nan, nan],
        "censor_epoch": [nan, nan, 3, nan, 6, nan, 6, 6], "epochs_survived": [1, 2, 7, 4, 7, 3, 7, 7],
        KEY: [0.0] * 5 + [0.1] * 3})
    df.attrs["search_keys"] = [KEY]
    return df


def test_survival_curves_bands_and_at_risk_counts_by_hand():
    """Kaplan-Meier of `_competing_frame`, divergence censored. Arm 0.0: n = 5, 4, 2, 1 at 2, 3, 5, 6: S = 4/5 at 2,
    4/5 at 3 (the divergence and the censoring there), 2/5 at 5; arm 0.1: S = 1/2 at 4. Each curve has its shaded
    95% band, '+' at censorings, and under the axes lifelines' at-risk row: per tick t, the trials with time > t."""
    df = _competing_frame()
    fig, ax = plt.subplots(figsize=(6, 4))
    assert plot_survival(df, ax=ax) is ax
    steps = [line for line in ax.get_lines() if line.get_label() in (f"{KEY}=0.0", f"{KEY}=0.1")]
    assert [line.get_xdata().tolist() for line in steps] == [[0, 2, 3, 5, 6], [0, 4, 6]]
    np.testing.assert_allclose(steps[0].get_ydata(), [1, 0.8, 0.8, 0.4, 0.4])
    np.testing.assert_allclose(steps[1].get_ydata(), [1, 0.5, 0.5])
    assert len(ax.collections) == 2  # one band per arm
    km = kaplan_meier([2, 3, 3, 5, 6], [1, 0, 0, 1, 0])  # arm 0.0, the divergence censored
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert (band.min(), band.max()) == (pytest.approx(km["lower"].min()), 1.0)
    times = {0.0: [2, 3, 3, 5, 6], 0.1: [4, 6]}
    twin = next(a for a in fig.axes if a is not ax)
    for tick, label in zip(twin.get_xticks(), [t.get_text() for t in twin.get_xticklabels()]):
        counts = [int(line.split()[-1]) for line in label.split("\n") if line.strip() and line != "At risk"]
        assert counts == [sum(t > tick for t in arm) for arm in times.values()], (tick, label)
    assert "At risk" in twin.get_xticklabels()[0].get_text()
    fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")
    plt.close(fig)
    bare = plot_survival(df, ci=False, at_risk=False)  # its own figure, no band and no table
    assert not bare.collections and len(bare.figure.axes) == 1
    plt.close(bare.figure)


def test_cumulative_incidence_curves_by_hand():
    """The hand-computed Aalen-Johansen example of tests/study/test_report.py, drawn: times 2 (collapse),
    3 (divergence), 3 (censored), 5 (collapse), 6 (censored); the second arm has no divergence."""
    df = _competing_frame()
    fig, ax = plt.subplots()
    plot_cumulative_incidence(df, ax=ax)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == [f"{KEY}=0.0: collapse", f"{KEY}=0.0: divergence", f"{KEY}=0.1: collapse"]
    first = lines[f"{KEY}=0.0: collapse"]
    assert first.get_xdata().tolist() == [0, 2, 3, 5, 6]
    np.testing.assert_allclose(first.get_ydata(), [0, 0.2, 0.2, 0.5, 0.5])
    np.testing.assert_allclose(lines[f"{KEY}=0.0: divergence"].get_ydata(), [0, 0, 0.2, 0.2, 0.2])
    np.testing.assert_allclose(lines[f"{KEY}=0.1: collapse"].get_ydata(), [0, 0.5, 0.5])  # never-diverse left out
    plt.close(fig)
