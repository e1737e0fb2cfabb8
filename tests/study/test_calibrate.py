"""study.calibrate: every grid arm x seed runs as a plain GANRun and is summarised per arm."""
from __future__ import annotations

from pathlib import Path

import yaml

from study.calibrate import arms, configs, main, summarise
from study.spec import load_spec
from tests.tests_support import tiny_spec


def _spec_file(tmp_path: Path) -> Path:
    spec = tiny_spec("cal")
    spec["search"] = {"remedies.label_flip.rate": {"grid": [0.0, 0.2]}, "train.lr": {"loguniform": [1e-4, 1e-2]}}
    path = tmp_path / "cal.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_arms_and_configs_cover_the_grid_times_the_seeds(tmp_path):
    spec = load_spec(_spec_file(tmp_path))
    assert arms(spec) == [{"remedies.label_flip.rate": 0.0}, {"remedies.label_flip.rate": 0.2}]
    items = configs(spec, [0, 1])
    assert [(seed, c.remedies["label_flip"].rate) for _, seed, c in items] == [(0, 0.0), (1, 0.0), (0, 0.2), (1, 0.2)]
    assert [c.seed for _, _, c in items] == [0, 1, 0, 1]
    assert items[0][2].train.lr == 1e-3, "a non-grid search key keeps its fixed value"


def test_summary_counts_collapses_and_never_diverse_per_arm():
    base = {"modes": 8, "hq": 0.9, "seconds": 1.0, "states": "DDCC"}
    results = [{**base, "arm": "a", "seed": 0, "outcome": "collapsed", "collapse_epoch": 3},
               {**base, "arm": "a", "seed": 1, "outcome": "never_diverse", "collapse_epoch": None},
               {**base, "arm": "b", "seed": 0, "outcome": "censored", "collapse_epoch": None}]
    lines = summarise(results)
    assert len(lines) == 5
    assert lines[3].startswith("ARM a: collapsed 1/2 at [3], never diverse 1")
    assert lines[4].startswith("ARM b: collapsed 0/1 at [], never diverse 0")


def test_main_runs_every_trial_and_refuses_a_bad_key(tmp_path, capsys):
    path = _spec_file(tmp_path)
    assert main([str(path), "--seeds", "1", "--workers", "1", "--set", "train.epochs=2"]) == 0
    out = capsys.readouterr().out
    assert "2 trials (2 arms x 1 seeds)" in out and "held at their fixed values: train.lr" in out
    trial_lines = [line for line in out.splitlines() if " seed 0 " in line]
    assert len(trial_lines) == 2 and all(len(line.split()[4]) == 2 for line in trial_lines), out
    assert main([str(path), "--set", "train.epoks=2"]) == 2
    assert "epoks" in capsys.readouterr().err


def test_the_shipped_calibration_specs_validate():
    specs = sorted((Path(__file__).resolve().parents[2] / "benchmarks" / "calibration").glob("*.yaml"))
    assert specs
    for path in specs:
        assert len(arms(load_spec(path))) >= 2, path
