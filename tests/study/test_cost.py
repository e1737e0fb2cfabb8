"""study.cost: the dry run's trials x steps and its wall-time estimate from a measured short epoch."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from study.cost import ArmCost, estimate, report
from study.run import main
from study.spec import load_spec
from tests.tests_support import tiny_spec


def _spec(tmp_path: Path, **fixed_train) -> Path:
    spec = tiny_spec("cost")
    spec["fixed"]["train"].update(fixed_train)
    spec["search"] = {"remedies.label_flip.rate": {"grid": [0.0, 0.2]}}
    spec.pop("trials")
    path = tmp_path / "cost.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_trial_time_and_report_follow_the_measured_step():
    spec = load_spec(Path(__file__).resolve().parents[2] / "search_spaces" / "ring8_pacgan.yaml")
    costs = [ArmCost("a", 10, 400, 1000, step_s=0.01, eval_s=2.0), ArmCost("b", 10, 400, 1000, note="not measured")]
    assert costs[0].trial_s == 400 * (1000 * 0.01 + 2.0) and costs[1].trial_s is None
    lines = report(spec, costs, cpus=4)
    assert lines[-2] == "cost: 8,000,000 G steps in all"
    # 10 trials x 4,800 s = 13.3 h of trial time; 4 CPUs at 1 CPU a trial -> 4 at once -> 3.3 h wall
    assert "about 13.3 h of trial time (the 1 measured arms only)" in lines[-1]
    assert "4 trials at once) about 3.3 h wall" in lines[-1]


def test_estimate_measures_every_grid_arm_with_its_steps(tmp_path):
    costs = estimate(load_spec(_spec(tmp_path, n_critic=2)))
    assert [c.label for c in costs] == ["remedies.label_flip.rate=0.0", "remedies.label_flip.rate=0.2"]
    # 400 points / batch 100 = 4 D steps an epoch, 2 D steps per G step -> 2 G steps; 2 seeds per arm
    assert all(c.g_steps == 2 and c.trials == 2 and c.epochs == 3 for c in costs)
    assert all(c.step_s is not None and c.step_s > 0 and c.eval_s is not None and c.eval_s > 0 for c in costs)


def test_g_updates_are_counted_and_priced_as_g_steps(tmp_path):
    one = estimate(load_spec(_spec(tmp_path)))
    two = estimate(load_spec(_spec(tmp_path, g_updates=2)))  # each training step: 1 D step, 2 G updates
    assert [c.g_steps for c in one] == [4, 4] and [c.g_steps for c in two] == [8, 8]
    assert all(c.step_s and c.eval_s for c in one + two)


def test_dry_run_prints_the_cost_and_starts_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GAN_STUDY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the default store, whatever an earlier test set
    assert main([str(_spec(tmp_path)), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"experiment: cost; store: sqlite:///{tmp_path / 'home' / 'mlflow.db'}" in out
    assert "cost: 48 G steps in all" in out and "ms a G step" in out  # 2 arms x 2 seeds x 3 epochs x 4 steps
    assert "GPU: about" in out and "of training steps on one NVIDIA H200" in out  # docs/gpu_costs.md's rows
    assert not (tmp_path / "home").exists()
    assert main([str(_spec(tmp_path)), "--dry-run", "--no-cost"]) == 0
    out = capsys.readouterr().out
    assert "experiment: cost" in out and "G step" not in out and "measuring" not in out


def test_seed_batched_trials_are_costed_as_trials_of_their_seeds(tmp_path):
    path = _spec(tmp_path)
    spec = yaml.safe_load(path.read_text())
    spec["seeds"], spec["seeds_per_trial"] = 4, 2
    path.write_text(yaml.safe_dump(spec))
    loaded = load_spec(path)
    costs = estimate(loaded)
    # 2 arms x 4 seeds = 8 seed runs = 2 trials of 2 seeds an arm; each trial evaluates both seeds
    assert all(c.trials == 2 and c.seeds == 2 and c.g_steps == 4 for c in costs)
    assert all(c.step_s and c.eval_s for c in costs)
    # one set of kernels steps all of a trial's seeds: 4 seeds a trial dispatch about the ops of 2 (docs/gpu_costs.md)
    spec["seeds_per_trial"] = 4
    path.write_text(yaml.safe_dump(spec))
    four = estimate(load_spec(path))
    assert all(c.ops and f.ops and abs(f.ops / c.ops - 1) < 0.1 for c, f in zip(costs, four, strict=True))
    lines = report(loaded, costs, cpus=4)
    assert "2 trials of 2 seeds x 3 epochs x 4 G steps" in lines[0]
    assert lines[-3] == "cost: 96 G steps in all"  # every seed's: 2 arms x 2 trials x 2 seeds x 3 epochs x 4
    assert "2 trials at once" in lines[-2]  # a trial asks for 2 CPUs (1 a seed) of the 4
    assert lines[-1].startswith("GPU: about")  # 2 arms x 2 trials x 3 epochs x 4 G steps x their ops


def test_wgans_burst_adds_its_extra_d_steps_to_the_steady_state_step():
    from study.cost import _burst_factor
    from trainables.config import resolve

    wgan = resolve({"variant": "wgan"}).train
    # 1,000 G steps: 26 of them (the first 25 and the 500th) take 100 D steps, the rest 5
    assert _burst_factor(wgan, 1000) == pytest.approx((26 * 100 + 974 * 5) / (1000 * 5))
    assert _burst_factor(resolve({"variant": "wgan_gp"}).train, 1000) == 1.0
