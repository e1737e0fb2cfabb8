"""Known-answer tests for study.report, and the label-noise notebook against a real MLflow store."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from nbclient import NotebookClient

from study.report import format_table, kaplan_meier, km_quantile, load_trials, summary_table
from study.survival import fmt_p, logrank
from trainables import names

REPO = Path(__file__).resolve().parents[2]
FLIP = "remedies.label_flip.rate"

# Hand-computed: times 2,3,3,5,6,8 with events 1,1,0,1,0,1 (a censoring tied with the event at 3).
#   t=2: n=6 d=1 S=5/6;  t=3: n=5 d=1 S=5/6*4/5=2/3;  t=5: n=3 d=1 S=2/3*2/3=4/9;
#   t=6: n=2 d=0 S=4/9 (censored);  t=8: n=1 d=1 S=0.
TIMES = [2, 3, 3, 5, 6, 8]
EVENTS = [1, 1, 0, 1, 0, 1]


def test_kaplan_meier_known_answer():
    km = kaplan_meier(TIMES, EVENTS)
    assert km["t"].tolist() == [0, 2, 3, 5, 6, 8]
    assert km["at_risk"].tolist() == [6, 6, 5, 3, 2, 1]
    assert km["events"].tolist() == [0, 1, 1, 1, 0, 1]
    np.testing.assert_allclose(km["survival"], [1, 5 / 6, 2 / 3, 4 / 9, 4 / 9, 0])


def test_km_quantiles_known_answer():
    assert km_quantile(TIMES, EVENTS, 0.25) == 3  # first S <= 0.75
    assert km_quantile(TIMES, EVENTS, 0.5) == 5  # first S <= 0.5
    assert km_quantile(TIMES, EVENTS, 0.75) == 8  # first S <= 0.25


def test_km_exact_half_and_all_censored():
    assert km_quantile([4, 6, 9, 9], [1, 1, 0, 0], 0.5) == 6  # S(6) = 0.5 exactly
    km = kaplan_meier([70, 70, 70], [0, 0, 0])
    assert km["survival"].tolist() == [1.0, 1.0]
    assert km_quantile([70, 70, 70], [0, 0, 0], 0.5) is None
    assert km_quantile([], [], 0.5) is None


def test_kaplan_meier_band_known_answer():
    """lifelines' 95% band is the exponential Greenwood one (Kalbfleisch and Prentice): S^exp(±z·σ/ln S), with
    σ² = Σ d/(n(n-d)) over the event times so far. By hand for TIMES: at 2, σ² = 1/30; at 3, 1/30 + 1/20; at 5,
    1/30 + 1/20 + 1/6; censored at 6: unchanged; at 8 S = 0 and the band is 0."""
    km = kaplan_meier(TIMES, EVENTS)
    z = 1.959963984540054
    s = np.array([5 / 6, 2 / 3, 4 / 9, 4 / 9])
    sigma = np.sqrt(np.cumsum([1 / 30, 1 / 20, 1 / 6, 0.0]))
    np.testing.assert_allclose(km["lower"].iloc[1:5], s ** np.exp(-z * sigma / np.log(s)), rtol=1e-9)
    np.testing.assert_allclose(km["upper"].iloc[1:5], s ** np.exp(z * sigma / np.log(s)), rtol=1e-9)
    assert (km["lower"].iloc[0], km["upper"].iloc[0]) == (1.0, 1.0) and km["upper"].iloc[-1] == 0.0
    assert km["censored"].tolist() == [0, 0, 1, 0, 1, 0]


def test_km_quantile_exact_level_and_numpy_state():
    """One collapse among 4 trials: S(1) = 3/4 exactly, so the 25% quantile is epoch 1. lifelines' curve holds
    exp(ln 3/4) = 0.7500000000000001 there, and its own `qth_survival_time` skips to a later epoch; km_quantile
    allows for the rounding. lifelines' fit sets numpy's divide/invalid errors to "ignore": kaplan_meier restores
    them."""
    before = np.geterr()
    assert km_quantile([1, 3, 4, 5], [1, 0, 1, 0], 0.25) == 1
    assert km_quantile([1, 2, 3, 4], [1, 1, 1, 1], 0.5) == 2  # S(2) = 1/2
    assert np.geterr() == before
    km = kaplan_meier([3, math.nan, 5], [1, 1, 0])  # a trial without a time is left out
    assert km["at_risk"].tolist() == [2, 2, 1] and km["survival"].tolist() == [1.0, 0.5, 0.5]


def test_cumulative_incidence_known_answer():
    """Aalen-Johansen by hand: times 2 (collapse), 3 (divergence), 3 (censored), 5 (collapse), 6 (censored).
    t=2: n=5, F=4/5, CIF_c=1/5; t=3: n=4, one divergence: CIF_d=4/5*1/4=1/5, F=3/5;
    t=5: n=2, one collapse: CIF_c=1/5+3/5*1/2=1/2, F=3/10; t=6: censored, nothing changes."""
    from study.survival import cumulative_incidence

    cif = cumulative_incidence([2, 3, 3, 5, 6], [1, 2, 0, 1, 0])
    assert cif["t"].tolist() == [0, 2, 3, 5, 6]
    np.testing.assert_allclose(cif["collapse"], [0, 0.2, 0.2, 0.5, 0.5])
    np.testing.assert_allclose(cif["divergence"], [0, 0, 0.2, 0.2, 0.2])
    np.testing.assert_allclose(cif["free"], [1, 0.8, 0.6, 0.3, 0.3])


def test_cumulative_incidence_matches_lifelines_aalen_johansen():
    """The hand-written Aalen-Johansen estimate against lifelines' AalenJohansenFitter. On the known-answer data
    (no collapse tied with a divergence) lifelines does not jitter and the two agree at every time. With a
    collapse and a divergence tied at 4 lifelines jitters the event times by up to 1e-4 (its documented
    behaviour); with no censoring at 4 the order does not matter and the curves agree between the times."""
    from lifelines import AalenJohansenFitter

    from study.survival import cumulative_incidence

    times, causes = [2, 3, 3, 5, 6], [1, 2, 0, 1, 0]
    ours = cumulative_incidence(times, causes)
    for cause, column in ((1, "collapse"), (2, "divergence")):
        with np.errstate():
            aj = AalenJohansenFitter(calculate_variance=False).fit(times, causes, event_of_interest=cause)
        assert aj.cumulative_density_.index.tolist() == ours["t"].tolist()
        np.testing.assert_allclose(aj.cumulative_density_.iloc[:, 0], ours[column])

    times, causes = [2, 4, 4, 6, 7], [1, 1, 2, 0, 1]  # by hand: collapse 1/5, 2/5, 2/5, 4/5; divergence 0, 1/5
    ours = cumulative_incidence(times, causes)
    np.testing.assert_allclose(ours["collapse"], [0, 0.2, 0.4, 0.4, 0.8])
    np.testing.assert_allclose(ours["divergence"], [0, 0, 0.2, 0.2, 0.2])
    with np.errstate(), pytest.warns(Warning, match="Tied event times"):
        aj = AalenJohansenFitter(calculate_variance=False, seed=0).fit(times, causes, event_of_interest=1)
    curve = aj.cumulative_density_.iloc[:, 0]
    between = [curve[curve.index <= t + 0.5].iloc[-1] for t in ours["t"]]
    np.testing.assert_allclose(between, ours["collapse"])


def test_competing_events_and_censoring_times():
    from study.survival import COLLAPSE, DIVERGENCE, survival_data

    nan = math.nan
    df = pd.DataFrame({
        "outcome": ["collapsed", "diverged", "censored", "never_diverse"],
        "collapse_epoch": [4, nan, nan, nan], "diverge_epoch": [9, 3, nan, nan],  # the first collapsed, then diverged
        "censor_epoch": [nan, nan, 9, 9], "epochs_survived": [3, 3, 10, 10]})
    surv = survival_data(df)
    assert surv["cause"].tolist() == [COLLAPSE, DIVERGENCE, 0]  # never_diverse left out
    assert surv["time"].tolist() == [4, 3, 9]  # censored at the last confirmable collapse epoch, not 10


def _arms(times_a, causes_a, times_b, causes_b):
    """Trials of two arms, "none" and "packing", from (time, cause) pairs (cause 0 censored, 1 collapse, 2
    divergence), with a never-diverse trial in each, which the test must leave out."""
    nan = math.nan
    rows = []
    for arm, times, causes in (("none", times_a, causes_a), ("packing", times_b, causes_b)):
        for t, c in zip(times, causes):
            rows.append({"remedies": arm, "outcome": ["censored", "collapsed", "diverged"][c],
                         "collapse_epoch": t if c == 1 else nan, "diverge_epoch": t if c == 2 else nan,
                         "censor_epoch": t if c == 0 else nan, "epochs_survived": t})
        rows.append({"remedies": arm, "outcome": "never_diverse", "collapse_epoch": nan, "diverge_epoch": nan,
                     "censor_epoch": 10, "epochs_survived": 10})
    df = pd.DataFrame(rows).assign(final_diversity=0.5, final_modes_covered=4.0)
    df.attrs["search_keys"] = ["remedies"]
    return df


def test_logrank_known_answer():
    """Arm "none" collapses at 2, 3, 4, 5; arm "packing" has 4 trials censored at 10 and one divergence at 3
    (censored there: cause-specific, at risk at 3). Each event time has d = 1, so with n_A, n_B at risk
    O_A - E_A = 4 - Σ n_A / n and V = Σ n_A n_B / n²: n_A = 4, 3, 2, 1 and n_B = 5, 5, 4, 4 at 2, 3, 4, 5;
    chi2 = (O - E)² / V on 1 df, p = erfc(sqrt(chi2 / 2))."""
    df = _arms([2, 3, 4, 5], [1, 1, 1, 1], [10, 10, 10, 10, 3], [0, 0, 0, 0, 2])
    n_a, n_b = np.array([4, 3, 2, 1]), np.array([5, 5, 4, 4])
    chi2 = (4 - (n_a / (n_a + n_b)).sum()) ** 2 / (n_a * n_b / (n_a + n_b) ** 2).sum()
    result = logrank(df, ["remedies"])
    assert result is not None
    assert (result.arms, result.trials, result.events, result.dof) == (2, 9, 4, 1)  # never-diverse left out
    assert result.statistic == pytest.approx(chi2, rel=1e-12)
    assert result.p_value == pytest.approx(math.erfc(math.sqrt(chi2 / 2)), rel=1e-9) and result.p_value < 0.05
    assert "chi2 = 8.12, df = 1" in str(result) and f"p = {fmt_p(result.p_value)}" in str(result)


def test_logrank_identical_arms_one_arm_and_no_collapse():
    same = _arms([2, 5, 8, 10], [1, 1, 0, 1], [2, 5, 8, 10], [1, 1, 0, 1])
    result = logrank(same, ["remedies"])
    assert result is not None and result.statistic == pytest.approx(0, abs=1e-12)
    assert result.p_value == pytest.approx(1.0)
    assert logrank(same, []) is None  # one arm
    assert logrank(same[same["remedies"] == "none"], ["remedies"]) is None
    assert logrank(_arms([4, 6], [0, 2], [5, 7], [0, 0]), ["remedies"]) is None  # no collapse
    assert fmt_p(None) == "n/a" and fmt_p(0.0067271) == "0.00673" and fmt_p(1.0) == "1"


def test_logrank_column_in_summary_and_comparison_tables():
    from study.report import comparison_table

    df = _arms([2, 3, 4, 5], [1, 1, 1, 1], [10, 10, 10, 10, 3], [0, 0, 0, 0, 2])
    p = fmt_p(logrank(df, ["remedies"]).p_value)
    assert p == "0.00439"  # the known answer above: chi2 = 8.115
    for table in (summary_table(df), comparison_table(df, ["remedies"])):
        assert table["logrank_p"].tolist() == [p, p]
        assert "logrank_p" in format_table(table) and p in format_table(table)
    assert comparison_table(df, [])["logrank_p"].tolist() == ["n/a"]  # one arm
    df.attrs["search_keys"] = []
    assert summary_table(df)["logrank_p"].tolist() == ["n/a"]


def _frame(rows, keys):
    cols = ["run_id", "outcome", "seed", *keys, "train.epochs", "collapse_epoch", "epochs_survived",
            "collapsed", "final_diversity", "final_modes_covered"]
    df = pd.DataFrame(rows, columns=cols)
    df.attrs["search_keys"] = keys
    return df


def test_summary_table_by_hand():
    nan = math.nan
    df = _frame([
        # rate 0.2 first: the table must sort by key
        ("e", "censored", 0, 0.2, 70, nan, 70, 0, 0.90, 8),
        ("f", "censored", 1, 0.2, 70, nan, 70, 0, 0.80, 8),
        ("g", "censored", 2, 0.2, 70, nan, 70, 0, 0.70, 7),
        ("h", "never_diverse", 3, 0.2, 70, nan, 70, 0, 0.10, 1),
        ("i", "diverged", 4, 0.2, 70, nan, 30, 0, nan, nan),
        ("a", "collapsed", 0, 0.0, 70, 5, 5, 1, 0.125, 1),
        ("b", "collapsed", 1, 0.0, 70, 10, 10, 1, 0.125, 1),
        ("c", "collapsed", 2, 0.0, 70, 12, 12, 1, 0.125, 1),
        ("d", "censored", 3, 0.0, 70, nan, 70, 0, 0.625, 6),
    ], [FLIP])
    table = summary_table(df)
    assert table[FLIP].tolist() == [0.0, 0.2]
    r0, r2 = table.iloc[0], table.iloc[1]
    # rate 0.0: S = 3/4 at 5, 1/2 at 10, 1/4 at 12
    assert (r0["seeds"], r0["collapsed"], r0["never_diverse"], r0["diverged"]) == (4, 3, 0, 0)
    assert r0["median_collapse_epoch"] == "10" and r0["quartiles"] == "5-12"
    assert r0["final_diversity_mean"] == pytest.approx(0.25)
    assert r0["mean_final_diversity"] == "0.250 ± 0.250"
    # rate 0.2: nothing collapsed, never_diverse left out, the diverged trial censored at 30
    assert (r2["seeds"], r2["collapsed"], r2["never_diverse"], r2["diverged"]) == (5, 0, 1, 1)
    assert r2["median_collapse_epoch"] == "70+" and r2["quartiles"] == "70+-70+"
    assert r2["final_diversity_mean"] == pytest.approx(np.mean([0.9, 0.8, 0.7, 0.1]))
    p = logrank(df, [FLIP])
    assert p is not None and p.arms == 2 and p.events == 3  # never-diverse left out, the diverged trial censored
    assert table["logrank_p"].tolist() == [fmt_p(p.p_value)] * 2
    text = format_table(table, title="T")
    assert text.splitlines()[0] == "T" and "70+" in text and "final_diversity_sd" not in text


def test_summary_table_without_search_keys():
    df = _frame([("a", "censored", 0, 70, math.nan, 70, 0, 0.9, 8),
                 ("b", "censored", 1, 70, math.nan, 70, 0, 0.8, 8)], [])
    table = summary_table(df)
    assert len(table) == 1 and table.iloc[0]["median_collapse_epoch"] == "70+"
    assert table.iloc[0]["seeds"] == 2


# ---------------------------------------------------------------- real MLflow store

EPOCHS = 8
# (rate, seed, outcome, collapse epoch or None, diversity per epoch)
TRIALS = [
    (0.0, 0, "collapsed", 4, [0.6, 0.8, 0.7, 0.3, 0.2, 0.2]),
    (0.0, 1, "collapsed", 6, [0.7, 0.8, 0.8, 0.7, 0.6, 0.4, 0.3, 0.3]),
    (0.1, 0, "censored", None, [0.6, 0.7, 0.8, 0.8, 0.9, 0.9, 0.9, 0.95]),
    (0.1, 1, "censored", None, [0.5, 0.6, 0.7, 0.8, 0.8, 0.9, 0.9, 0.85]),
]


def _log_trial(client, exp_id, parent_id, rate, seed, outcome, collapse_at, diversity, t0):
    run = client.create_run(exp_id, start_time=t0, tags={
        names.PARENT: parent_id, names.ROLE: names.ROLE_TRIAL, names.OUTCOME: outcome})
    params = {names.SEED_PARAM: seed, names.EPOCHS_PARAM: EPOCHS, FLIP: rate, names.SEARCH_PARAM + FLIP: rate,
              "train.lr": 0.0002, "data.name": "ring8", "loss": "nonsaturating", "variant": "vanilla"}
    metrics = []
    for epoch, div in enumerate(diversity, start=1):
        collapsed = int(collapse_at is not None and epoch >= collapse_at + 1)
        metrics += [Metric(names.DIVERSITY, div, t0 + epoch, epoch),
                    Metric(names.MODES_COVERED, round(8 * div), t0 + epoch, epoch),
                    Metric(names.EPOCHS_SURVIVED, collapse_at if collapsed else epoch, t0 + epoch, epoch),
                    Metric(names.COLLAPSED, collapsed, t0 + epoch, epoch)]
    if collapse_at is not None:
        metrics.append(Metric(names.COLLAPSE_EPOCH, collapse_at, t0 + len(diversity), len(diversity)))
    client.log_batch(run.info.run_id, metrics=metrics,
                     params=[Param(k, str(v)) for k, v in params.items()])
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _log_study(uri, experiment):
    client = MlflowClient(uri)
    exp_id = client.create_experiment(experiment)
    old = client.create_run(exp_id, start_time=1_000, tags={names.ROLE: names.ROLE_STUDY})
    _log_trial(client, exp_id, old.info.run_id, 0.5, 0, "censored", None, [0.9, 0.9], 1_001)
    parent = client.create_run(exp_id, start_time=2_000, tags={
        names.ROLE: names.ROLE_STUDY, names.STUDY: experiment, names.SEARCH_KEYS: json.dumps([FLIP])})
    client.log_batch(parent.info.run_id, params=[Param("study.seeds", "2"), Param("train.epochs", str(EPOCHS))],
                     tags=[RunTag("mlflow.runName", "study")])
    for i, trial in enumerate(TRIALS):
        _log_trial(client, exp_id, parent.info.run_id, *trial, 2_001 + 100 * i)
    return parent.info.run_id


def test_load_trials_leaves_the_process_tracking_uri_as_it_was(tracking_uri, tmp_path, monkeypatch):
    """A study's end reads its own store; the next study in the process must not inherit it."""
    import mlflow

    parent = _log_study(tracking_uri, "label_noise_test")
    mlflow.set_tracking_uri(None)  # as in a fresh process
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    df = load_trials("label_noise_test", tracking_uri=tracking_uri)
    assert df.attrs["parent_run_id"] == parent
    assert "MLFLOW_TRACKING_URI" not in os.environ and mlflow.get_tracking_uri() != tracking_uri
    other = "sqlite:///" + str(tmp_path / "other.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", other)
    load_trials("label_noise_test", tracking_uri=tracking_uri)
    assert os.environ["MLFLOW_TRACKING_URI"] == other == mlflow.get_tracking_uri()


def test_load_trials(tracking_uri):
    parent = _log_study(tracking_uri, "label_noise_test")
    df = load_trials("label_noise_test", tracking_uri=tracking_uri)
    assert df.attrs == {"search_keys": [FLIP], "parent_run_id": parent,  # the latest parent, not the old one
                        "tracking_uri": tracking_uri}
    assert len(df) == 4
    assert df[FLIP].tolist() == [0.0, 0.0, 0.1, 0.1] and df["seed"].tolist() == [0, 1, 0, 1]
    assert df["train.epochs"].tolist() == [EPOCHS] * 4
    assert df["collapse_epoch"].tolist()[:2] == [4, 6] and df["collapse_epoch"].iloc[2:].isna().all()
    assert df["epochs_survived"].tolist() == [4, 6, 8, 8]
    assert df["collapsed"].tolist() == [1, 1, 0, 0]
    assert df["final_diversity"].tolist() == [0.2, 0.3, 0.95, 0.85]  # value at the last step
    assert df["final_modes_covered"].tolist() == [2, 2, 8, 7]

    table = summary_table(df)
    assert table[FLIP].tolist() == [0.0, 0.1]
    assert table["median_collapse_epoch"].tolist() == ["4", "8+"]  # S(4) = 1/2
    assert table["quartiles"].tolist() == ["4-6", "8+-8+"]
    assert table["collapsed"].tolist() == [2, 0] and table["seeds"].tolist() == [2, 2]
    assert table["final_diversity_mean"].tolist() == pytest.approx([0.25, 0.9])


@pytest.mark.slow
def test_label_noise_notebook_on_a_hand_built_store(tracking_uri, monkeypatch):
    _log_study(tracking_uri, "label_noise_test")
    table = summary_table(load_trials("label_noise_test", tracking_uri=tracking_uri))
    monkeypatch.setenv("GAN_STUDY_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("GAN_STUDY_EXPERIMENT", "label_noise_test")
    nb = nbformat.read(REPO / "reports" / "label_noise.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(REPO / "reports")}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    stdout = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "label-flip rate -> epochs until collapse" in stdout
    assert format_table(table) in stdout
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2
    assert "no model-free diversity metrics in these runs" in stdout  # the section skips without them


def test_load_trials_metrics_and_mode_tables(tracking_uri):
    from study.report import available_metrics, mode_table, trial_table

    _log_study(tracking_uri, "modes_test")
    df = load_trials("modes_test", tracking_uri=tracking_uri, metrics=["eval/diversity", "eval/kl_to_uniform"])
    assert df["eval/diversity"].tolist() == [0.2, 0.3, 0.95, 0.85]  # the last epoch's value
    assert df["eval/kl_to_uniform"].isna().all()  # never logged
    assert available_metrics(df, ["eval/coverage", "eval/modes_covered", "eval/diversity"]) == [
        "eval/modes_covered", "eval/diversity"]

    df["eval/kl_to_uniform"] = [2.0, 1.5, 0.1, 0.2]
    trials = trial_table(df, [FLIP], n_modes=8)
    assert trials.columns.tolist() == [FLIP, "seed", "outcome", "modes_covered", "kl_to_uniform", "diversity"]
    assert trials["modes_covered"].tolist() == ["2 / 8", "2 / 8", "8 / 8", "7 / 8"]
    assert trials["kl_to_uniform"].tolist() == ["2.000", "1.500", "0.100", "0.200"]
    modes = mode_table(df, [FLIP], n_modes=8)
    assert modes[FLIP].tolist() == [0.0, 0.1] and modes["trials"].tolist() == [2, 2]
    assert modes["modes_covered"].tolist() == ["2.0 ± 0.0 / 8", "7.5 ± 0.7 / 8"]
    assert modes["modes_range"].tolist() == ["2-2 / 8", "7-8 / 8"]
    assert modes["kl_to_uniform"].tolist() == ["1.750 ± 0.354", "0.150 ± 0.071"]
    assert "kl_sd" not in format_table(modes)


def test_remedy_set_column_and_comparison_table():
    from study.report import _trial_frame, comparison_keys, comparison_table

    nan = math.nan
    runs = pd.DataFrame({
        "run_id": list("abcd"), f"tags.{names.OUTCOME}": ["collapsed", "censored", "collapsed", "never_diverse"],
        "params.seed": ["0", "1", "0", "1"], "params.search.train.lr": ["1e-4", "2e-4", "3e-4", "4e-4"],
        "params.search.remedies": ["none", "none", "minibatch_stddev+packing", "minibatch_stddev+packing"],
        "params.search.remedies.packing.m": [None, None, "2", "3"],
        "params.train.epochs": ["10"] * 4, "metrics.collapse_epoch": [4, nan, 6, nan],
        "metrics.epochs_survived": [4, 10, 6, 10], "metrics.collapsed": [1, 0, 1, 0],
        "metrics.collapse_g_step": [40, nan, 60, nan],
        "metrics.eval/diversity": [0.1, 0.9, 0.2, 0.1], "metrics.eval/modes_covered": [1, 8, 2, 1]})
    keys = ["remedies", "remedies.packing.m", "train.lr"]
    df = _trial_frame(runs, keys)
    df.attrs["search_keys"] = keys
    assert df["remedies"].tolist() == ["minibatch_stddev+packing", "minibatch_stddev+packing", "none", "none"]
    spec = {"search": {"remedies": {"choice": ["none", "minibatch_stddev+packing"]},
                       "remedies.packing.m": {"choice": [2, 3]}, "train.lr": {"loguniform": [1e-4, 1e-3]}}}
    assert comparison_keys(df, spec) == ["remedies"]  # conditional and continuous entries are pooled
    table = comparison_table(df, ["remedies"])
    assert table["remedies"].tolist() == ["minibatch_stddev+packing", "none"]
    r = table.iloc[0]
    assert (r["configs"], r["trials"], r["collapsed"], r["never_diverse"]) == (2, 2, 1, 1)
    assert r["collapse_rate"] == "1/1 (100%)" and r["median_collapse_epoch"] == "6" and r["collapse_g_step"] == "60"
    n = table.iloc[1]
    assert n["collapse_rate"] == "1/2 (50%)" and n["median_collapse_epoch"] == "4"  # S(4) = 1/2
    assert n["final_diversity"] == "0.500 ± 0.566" and n["final_modes_covered"] == "4.5 ± 4.9"
    text = format_table(table)
    assert "final_modes_covered_sd" not in text and "collapse_fraction" not in text


def test_a_failed_trial_is_counted_apart_never_as_censored_or_collapsed():
    nan = math.nan
    rows = [("a", "collapsed", 0, 0.0, 70, 5, 5, 1, 0.125, 1),
            ("b", "censored", 1, 0.0, 70, nan, 70, 0, 0.9, 8),
            ("c", "failed", 2, 0.0, 70, nan, 10, 0, nan, nan)]  # crashed at epoch 10
    r = summary_table(_frame(rows, [FLIP])).iloc[0]
    assert (r["seeds"], r["collapsed"], r["failed"], r["diverged"]) == (3, 1, 1, 0)
    # censored at 10, the failed trial would be at risk at 5: S(5) = 2/3, median "70+"; left out, S(5) = 1/2
    assert r["median_collapse_epoch"] == "5" and r["collapse_incidence"] == "0.50"
