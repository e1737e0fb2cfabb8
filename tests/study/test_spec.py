"""Spec validation: every bad spec gives one clear error naming the key, exit code 2, nothing written."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from study.run import main
from study.spec import SpecError, load_spec

REPO = Path(__file__).resolve().parents[2]
GOOD = {
    "name": "tiny",
    "fixed": {"data": {"name": "ring8"}, "model": {"name": "mlp"}, "train": {"epochs": 2}},
    "search": {"remedies.label_flip.rate": {"grid": [0.0, 0.1]}},
    "fixed_remedies": None,
}


def _write(tmp_path: Path, spec: dict) -> Path:
    spec = {k: v for k, v in spec.items() if v is not None and k != "fixed_remedies"}
    spec.setdefault("fixed", {}).setdefault("remedies", {"label_flip": {"rate": 0.0}})
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _error(tmp_path: Path, capsys, spec: dict | None = None, args: tuple = ()) -> str:
    path = _write(tmp_path, spec) if spec is not None else tmp_path / "missing.yaml"
    home = tmp_path / "home"
    import os

    os.environ["GAN_STUDY_HOME"] = str(home)
    assert main([str(path), *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert not home.exists(), "a rejected spec must write nothing"
    return err


def _with(**changes) -> dict:
    import copy

    spec = copy.deepcopy(GOOD)
    for dotted, value in changes.items():
        node = spec
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return spec


def test_every_shipped_spec_validates_full_and_quick():
    for path in sorted((REPO / "search_spaces").glob("*.yaml")):
        load_spec(path)
        if "quick" in yaml.safe_load(path.read_text()):
            load_spec(path, quick=True)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"fixed__train__lr": "fast"}, "fixed.train.lr: expected a number, got 'fast'"),
        ({"fixed__train__lrr": 0.1}, "fixed.train.lrr: unknown key; known: batch_size"),
        ({"fixed__remedies": {"label_flp": {}}}, "unknown remedy 'label_flp'; known: "),
        ({"fixed__model__name": "resnet"}, "unknown model 'resnet'; known: dcgan, mlp"),
        ({"fixed__loss": "kl"}, "unknown loss 'kl'; known: "),
        ({"fixed__data__name": "imagenet"}, "unknown dataset 'imagenet'; known: "),
        ({"fixed__model__depth": 3}, "unknown argument 'depth' for model 'mlp'"),
        ({"search": {}}, "search: empty search space"),
        ({"search": {"train.lr": {"grid": []}}}, "search.train.lr: grid must list at least one value"),
        ({"search": {"train.lr": {"uniform": [0.1, 0.01]}}}, "low < high"),
        ({"search": {"train.lrate": {"grid": [0.1]}}}, "search.train.lrate -> train.lrate: unknown key"),
        ({"search": {"remedies.unrolled.k": {"grid": [1]}}}, "remedy 'unrolled' is neither in fixed.remedies"),
        ({"search": {"remedies": {"choice": [["label_flip", "bogus"]]}}}, "unknown remedy 'bogus'"),
        ({"seeds": 0}, "seeds: seeds must be a positive count"),
        ({"trials": 1}, "trials: 1 is fewer than the 2 grid points"),
        ({"scheduler": {"name": "hyperband"}}, "scheduler.name:"),
        ({"bogus": 1}, "bogus: unknown key; known: "),
        ({"fixed__loss": "wasserstein"}, "remedy 'label_flip' acts on D's targets"),
    ],
)
def test_bad_spec_is_rejected_with_the_key(tmp_path, capsys, changes, message):
    err = _error(tmp_path, capsys, _with(**changes))
    assert message in err


def test_missing_spec_file(tmp_path, capsys):
    assert "missing.yaml: no such spec file" in _error(tmp_path, capsys)


def test_bad_override_is_rejected(tmp_path, capsys):
    err = _error(tmp_path, capsys, GOOD, ("--set", "train.lr=fast"))
    assert "fixed.train.lr: expected a number, got 'fast'" in err


def test_quick_without_quick_block(tmp_path, capsys):
    assert "has no `quick` block" in _error(tmp_path, capsys, GOOD, ("--quick",))


def test_overrides_and_quick_apply(tmp_path):
    path = _write(tmp_path, {**GOOD, "quick": {"fixed": {"train": {"epochs": 1}}, "seeds": 3}})
    spec = load_spec(path, quick=True, overrides=["train.batch_size=32", "trials=4"])
    assert spec.fixed.train.epochs == 1 and spec.seed_list == [0, 1, 2]
    assert spec.fixed.train.batch_size == 32 and spec.trials == 4


def test_dry_run_prints_the_plan(tmp_path, capsys):
    assert main([str(_write(tmp_path, GOOD)), "--dry-run"]) == 0
    assert "2 configurations x 1 seeds = 2 trials" in capsys.readouterr().out


def test_conflicting_remedies_are_rejected():
    from trainables.remedies import REMEDIES

    pairs = [(n, c) for n, r in REMEDIES.items() for c in r.conflicts]
    if not pairs:
        pytest.skip("no remedy declares a conflict")
    a, b = pairs[0]
    with pytest.raises(SpecError, match="cannot be combined"):
        from study.spec import validate

        validate({"name": "x", "fixed": {"loss": "wasserstein", "remedies": {a: {}, b: {}}}})
