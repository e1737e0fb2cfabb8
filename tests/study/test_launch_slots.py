"""study.launch.trial_slots and pending_trials (issue #12): how many trials fit on the cluster at once, and the
TUNE_MAX_PENDING_TRIALS_PG that lets Tune queue that many for the duration of one fit (docs/stack.md, "Trial
slots"). The fast tests hand `ray.nodes()` made-up nodes; the slow one asks a real local Ray (the `ray_local`
fixture)."""
from __future__ import annotations

import os

import pytest
import yaml

from study import launch
from study.spec import validate
from tests.tests_support import tiny_spec

KEY = "TUNE_MAX_PENDING_TRIALS_PG"


def _spec(cpu: float = 1, gpu: float = 0, seeds: int = 2, per_trial: int = 1, **extra):
    return validate({**tiny_spec("slots"), "resources": {"cpu": cpu, "gpu": gpu}, "seeds": seeds,
                     "seeds_per_trial": per_trial, **extra})


@pytest.fixture
def nodes(monkeypatch):
    """Set the nodes `ray.nodes()` returns (a list of resource dicts, all alive); no RAY_ADDRESS, no variable."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv(KEY, raising=False)

    def use(*resources: dict, dead: tuple[dict, ...] = ()) -> None:
        listed = [{"Alive": True, "Resources": r} for r in resources]
        listed += [{"Alive": False, "Resources": r} for r in dead]
        monkeypatch.setattr(launch.ray, "nodes", lambda: listed)

    return use


def test_slots_per_node_are_its_cpus_over_the_trials(nodes):
    nodes({"CPU": 8.0}, {"CPU": 3.0}, dead=({"CPU": 64.0},))  # a dead node counts for nothing
    assert launch.trial_slots(_spec(cpu=1)) == 8 + 3
    assert launch.trial_slots(_spec(cpu=0.5)) == 16 + 6
    assert launch.trial_slots(_spec(cpu=3)) == 2 + 1  # whole trials a node, not the cluster's CPUs / 3
    assert launch.trial_slots(_spec(cpu=4)) == 2 + 0


def test_a_seed_batched_trial_takes_its_seeds_times_the_resources(nodes):
    nodes({"CPU": 8.0})
    assert launch.trial_slots(_spec(cpu=1, seeds=4, per_trial=2)) == 4  # 2 CPUs a trial
    assert launch.trial_slots(_spec(cpu=1, seeds=1, per_trial=4)) == 8  # one seed: a trial of one


def test_gpu_shares_count_whole_trials_and_the_tighter_resource_wins(nodes):
    nodes({"CPU": 16.0, "GPU": 1.0}, {"CPU": 4.0})  # the CPU-only node holds no GPU trial
    assert launch.trial_slots(_spec(cpu=0.5, gpu=0.25)) == 4
    assert launch.trial_slots(_spec(cpu=0.5, gpu=0.1)) == 10  # 1 / 0.1 is 9.999...: still 10 trials
    assert launch.trial_slots(_spec(cpu=4, gpu=0.1)) == 4  # 16 CPUs / 4 before 10 GPU shares
    assert launch.trial_slots(_spec(cpu=0.1, gpu=0.1, seeds=10, per_trial=10)) == 1  # 10 seeds on one GPU


def test_workers_the_autoscaler_may_start_count_on_a_cluster_only(nodes, monkeypatch, tmp_path):
    """`ray up` leaves ~/ray_bootstrap_config.yaml on the head: each worker type counts max_workers times."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "ray_bootstrap_config.yaml").write_text(yaml.safe_dump({
        "max_workers": 8, "head_node_type": "head",
        "available_node_types": {"head": {"resources": {"CPU": 0}, "max_workers": 0},
                                 "gpu": {"resources": {"CPU": 4, "GPU": 1}, "max_workers": 3},
                                 "spare": {"resources": {"CPU": 2}, "max_workers": 0}}}))
    head = {"CPU": 0.0, "node:__internal_head__": 1.0}  # Ray marks its head node with this resource
    nodes(head)  # the head: no trials on it
    spec = _spec(cpu=0.5, gpu=0.25)
    assert launch.trial_slots(spec) == 0  # a local study reads no autoscaler config
    assert launch.trial_slots(spec, address="auto") == 3 * 4
    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:8265")  # `ray job submit` sets it for the driver
    assert launch.trial_slots(spec) == 3 * 4
    # two of the three GPU workers are up: they are two of the three the config allows, not two more
    nodes(head, {"CPU": 4.0, "GPU": 1.0}, {"CPU": 4.0, "GPU": 1.0})
    assert launch.trial_slots(spec) == 3 * 4
    nodes(head, {"CPU": 4.0, "GPU": 1.0}, {"CPU": 8.0})  # a worker of no configured size takes a place too
    assert launch.trial_slots(spec) == 4 + 0 + 4


def test_pending_trials_sets_the_variable_for_the_fit_only(nodes):
    nodes({"CPU": 8.0})
    with launch.pending_trials(_spec(cpu=1)):
        assert os.environ[KEY] == "8"
    assert KEY not in os.environ
    with pytest.raises(RuntimeError), launch.pending_trials(_spec(cpu=0.5)):
        assert os.environ[KEY] == "16"
        raise RuntimeError("fit failed")
    assert KEY not in os.environ
    with launch.pending_trials(_spec(cpu=16)):  # no slot now (a node may join): Tune's own 1, never 0
        assert os.environ[KEY] == "1"
    assert KEY not in os.environ


def test_pending_trials_leaves_the_users_choice_alone(nodes, monkeypatch):
    nodes({"CPU": 8.0})
    with launch.pending_trials(_spec(cpu=1, max_concurrent=3)):  # Tune's ConcurrencyLimiter queues 3
        assert KEY not in os.environ
    monkeypatch.setenv(KEY, "5")
    with launch.pending_trials(_spec(cpu=1)):
        assert os.environ[KEY] == "5"
    assert os.environ[KEY] == "5"


@pytest.mark.slow
def test_slots_of_a_real_local_ray(ray_local, monkeypatch):
    """The session's local Ray (tests/conftest.py: its CPUs, no GPU), read through ray.nodes()."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv(KEY, raising=False)
    cpus = int(sum(n["Resources"].get("CPU", 0) for n in ray_local.nodes() if n["Alive"]))
    assert cpus >= 1 and len([n for n in ray_local.nodes() if n["Alive"]]) == 1
    assert launch.trial_slots(_spec(cpu=1)) == cpus
    assert launch.trial_slots(_spec(cpu=0.5)) == 2 * cpus
    assert launch.trial_slots(_spec(cpu=4)) == cpus // 4
    assert launch.trial_slots(_spec(cpu=1, seeds=2, per_trial=2)) == cpus // 2
    assert launch.trial_slots(_spec(cpu=0.5, gpu=0.5)) == 0  # no GPU on this Ray
    with launch.pending_trials(_spec(cpu=0.5)):
        assert os.environ[KEY] == str(2 * cpus)
    assert KEY not in os.environ
    with launch.pending_trials(_spec(cpu=4)):
        assert os.environ[KEY] == str(max(1, cpus // 4))
    assert KEY not in os.environ
    monkeypatch.setenv(KEY, "7")
    with launch.pending_trials(_spec(cpu=1)):
        assert os.environ[KEY] == "7"
    assert os.environ[KEY] == "7"
