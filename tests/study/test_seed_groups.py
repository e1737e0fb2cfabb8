"""Seed-batched trials (`seeds_per_trial`) in a real study: each seed its own MLflow child run, Ray resources that
scale with the seeds, and specs that cannot batch refused before Ray starts; resume keeping every seed is
tests/study/test_resume.py's killed-driver test, seed-batched."""
from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient
from tests_support import child_runs, run_study, tiny_spec

from study.run import main
from study.spec import SpecError, validate
from trainables import names


def _batched(spec: dict, per_trial: int = 2) -> dict:
    return {**spec, "seeds_per_trial": per_trial, "resources": {"cpu": 0.5}}


def test_specs_that_cannot_batch_seeds_are_refused_naming_the_key(tmp_path, capsys):
    spec = _batched(tiny_spec("refused", search={"remedies": {"grid": ["none", "gradient_penalty"]}}))
    path = tmp_path / "s.yaml"
    import yaml

    path.write_text(yaml.safe_dump(spec))
    assert main([str(path), "--dry-run", "--no-cost"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: seeds_per_trial: 2 seeds a trial, but search.remedies=gradient_penalty: remedy "
                          "'gradient_penalty'") and len(err.splitlines()) == 1
    spec = {**_batched(tiny_spec("gpu")), "seeds": 4, "seeds_per_trial": 4, "resources": {"cpu": 0.5, "gpu": 0.3}}
    with pytest.raises(Exception, match="resources.gpu x seeds = 1.2 GPUs"):
        validate(spec)


def test_seed_groups_split_the_seeds_and_scale_the_resources():
    spec = validate({**_batched(tiny_spec("groups"), per_trial=2), "seeds": [5, 6, 7, 8]})
    assert spec.seed_groups == [[5, 6], [7, 8]]
    assert spec.trial_resources == {"cpu": 1.0, "gpu": 0.0}
    with pytest.raises(SpecError, match="seeds_per_trial: 3 does not divide the 4 seeds"):
        validate({**_batched(tiny_spec("groups"), per_trial=3), "seeds": [5, 6, 7, 8]})
    many = validate({**_batched(tiny_spec("gpu"), per_trial=50), "seeds": 50, "resources": {"cpu": 0.02, "gpu": 0.14}})
    assert many.trial_resources["gpu"] == 7.0  # 0.14 x 50, not 7.000000000000001


@pytest.mark.slow
def test_a_seed_batched_study_logs_every_seed_as_its_own_run(ray_local, tmp_path, capsys):
    spec = _batched({**tiny_spec("batched"), "seeds": 4})
    code, uri = run_study(tmp_path, spec)
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    assert "2 configurations x 4 seeds (each configuration's seeds in 2 trials of up to 2) = 4 trials" in out
    parents, trials = child_runs(uri, "batched")
    assert len(trials) == 8 and set(trials["tags.gan_study.seeds_batched"]) == {"2"}
    for rate in ("0.0", "0.2"):
        assert sorted(trials[trials["params.remedies.label_flip.rate"] == rate]["params.seed"]) == ["0", "1", "2", "3"]
    client = MlflowClient(uri)
    for _, row in trials.iterrows():
        assert row.status == "FINISHED" and row["tags.gan_study.outcome"] in ("collapsed", "censored", "never_diverse")
        assert [m.step for m in client.get_metric_history(row.run_id, "eval/diversity")] == [1, 2, 3]
        assert row["tags.mlflow.runName"].endswith(f" seed={row['params.seed']}")
    parent = client.get_run(parents.run_id.iloc[0])
    seeds = [v for k, v in parent.data.metrics.items() if k.startswith(names.ARM_METRIC) and k.endswith("/seeds")]
    assert seeds == [4, 4]  # the summary counts every seed of every arm
