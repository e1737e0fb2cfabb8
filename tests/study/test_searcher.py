"""The study's searcher: seeds averaged per configuration, early-stopped configurations told to Optuna as pruned."""
from __future__ import annotations

import optuna

from study.searcher import searcher, stopped_early
from study.spec import validate
from trainables import names

SPEC = validate({"name": "s", "seeds": 2, "trials": 2, "fixed": {"train": {"epochs": 5}},
                 "search": {"train.lr": {"loguniform": [1e-4, 1e-2]}}})


def _run(results: list[dict]) -> optuna.trial.FrozenTrial:
    """One configuration (two seeds) through the searcher, finishing with `results`; its Optuna trial."""
    rep = searcher(SPEC)
    rep.set_search_properties("objective", "max", {})
    for i in range(len(results)):
        assert rep.suggest(f"t{i}") is not None
    for i, result in enumerate(results):
        rep.on_trial_complete(f"t{i}", result=result)
    return rep.searcher._ot_study.trials[0]


def test_finished_seeds_complete_with_their_mean():
    done = {"objective": 1.5, "epoch": 5, names.EPOCHS_PLANNED: 5, names.DIVERGED: 0}
    trial = _run([done, {**done, "objective": 1.7}])
    assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == 1.6


def test_a_seed_stopped_early_makes_the_configuration_pruned():
    done = {"objective": 1.5, "epoch": 5, names.EPOCHS_PLANNED: 5, names.DIVERGED: 0}
    cut = {"objective": 1.1, "epoch": 2, names.EPOCHS_PLANNED: 5, names.DIVERGED: 0}  # ASHA or stop-on-collapse
    trial = _run([done, cut])
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert trial.intermediate_values == {2: 1.3}  # the seeds' mean, at the earliest stop


def test_a_diverged_trial_is_not_a_stopped_one():
    assert not stopped_early({"epoch": 2, names.EPOCHS_PLANNED: 5, names.DIVERGED: 1})
    assert stopped_early({"epoch": 2, names.EPOCHS_PLANNED: 5, names.DIVERGED: 0})
    assert not stopped_early({"epoch": 5, names.EPOCHS_PLANNED: 5}) and not stopped_early(None)


def test_a_seed_batched_trial_is_pruned_when_any_of_its_seeds_stopped_early():
    """Its result is the seeds' mean (trainables/tune.py): epoch is the furthest seed's, diverged a fraction."""
    group = {"epoch": 5, names.EPOCHS_PLANNED: 5, names.DIVERGED: 0.5}
    assert not stopped_early({**group, names.STOPPED_SEEDS: 0})  # one seed diverged, the other ran to the end
    assert stopped_early({**group, names.STOPPED_SEEDS: 1})  # a seed stopped on collapse while the others ran
    assert stopped_early({**group, "epoch": 3, names.STOPPED_SEEDS: 0})  # the whole trial stopped (ASHA)
    assert not stopped_early({**group, "epoch": 3, names.DIVERGED: 1.0, names.STOPPED_SEEDS: 0})  # all diverged
