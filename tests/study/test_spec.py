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


def _data_shape(name: str, image_size: int | None) -> tuple[int, ...]:
    """A sample's shape without loading the data: 2D points, or (channels, size, size) images."""
    if name in ("mnist", "fashion_mnist", "digits", "stacked_mnist"):
        size = image_size or (8 if name == "digits" else 28)
        return (3 if name == "stacked_mnist" else 1, size, size)
    return (2,)


def test_every_grid_arm_of_every_shipped_spec_builds_its_nets_and_remedies():
    """Validation alone let a full form's arm fail when its trial started (systems_2d's mmd_gan under the Xavier
    init: a bias-free encoding); here every arm's nets, optimisers and remedies are built, full and quick."""
    import torch

    from study.calibrate import configs
    from trainables.step import build_context

    built = 0
    for path in sorted((REPO / "search_spaces").glob("*.yaml")):
        for quick in (False, True) if "quick" in yaml.safe_load(path.read_text()) else (False,):
            spec = load_spec(path, quick=quick)
            for label, _, cfg in configs(spec, spec.seed_list[:1]):
                shape = _data_shape(cfg.data.name, cfg.data.image_size)
                try:
                    build_context(cfg, shape, torch.Generator().manual_seed(0), torch.device("cpu"))
                except Exception as err:
                    raise AssertionError(f"{path.name}{' --quick' if quick else ''} {label}: {err!r}") from err
                built += 1
    assert built > 50


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"fixed__train__lr": "fast"}, "fixed.train.lr: expected a number, got 'fast'"),
        ({"fixed__train__lrr": 0.1}, "fixed.train.lrr: unknown key; known: batch_size"),
        ({"fixed__remedies": {"label_flp": {}}}, "unknown remedy 'label_flp'; known: "),
        ({"fixed__model__name": "resnet"}, "unknown model 'resnet'; known: dcgan, dcgan_tf, mlp"),
        ({"fixed__loss": "no_such_loss"}, "unknown loss 'no_such_loss'; known: "),
        ({"fixed__data__name": "imagenet"}, "unknown dataset 'imagenet'; known: "),
        ({"fixed__model__depth": 3}, "unknown argument 'depth' for model 'mlp'"),
        ({"search": {}}, "search: empty search space"),
        ({"search": {"train.lr": {"grid": []}}}, "search.train.lr: grid must list at least one value"),
        ({"search": {"train.lr": {"uniform": [0.1, 0.01]}}}, "low < high"),
        ({"search": {"train.lrate": {"grid": [0.1]}}}, "search.train.lrate: not a trial-config key"),
        ({"search": {"train.lr": {"grid": ["fast"]}}},
         "search.train.lr = fast -> train.lr: expected a number, got 'fast'"),
        ({"search": {"train.epochs": {"uniform": [1, 9]}}}, "search.train.epochs: train.epochs is an integer"),
        ({"fixed__train__n_critic": 3, "fixed__remedies": {"n_critic": {"n": 5}}},
         "train.n_critic and remedy 'n_critic' both set it; keep one"),
        ({"fixed__train__lr_d": 1e-3, "fixed__remedies": {"two_timescale": {}}},
         "train.lr_d and remedy 'two_timescale' both set it; keep one"),
        ({"fixed__remedies": {"label_flip": {"rate": 5}}}, "fixed.remedies: remedy 'label_flip': rate:"),
        ({"fixed__remedies": {"label_flip": {"rat": 0.1}}},
         "remedy 'label_flip': unknown parameter 'rat'; known: rate"),
        ({"fixed__train__lr": float("inf")}, "fixed.train.lr:"),
        ({"fixed__data__modes": 6}, "fixed.data: modes: dataset 'ring8' has a fixed shape; data.modes applies to "
                                    "ring and grid"),
        ({"fixed__remedies": {}, "search": {"variant": {"grid": ["wgan", "gan"]},
                                            "remedies": {"grid": ["none", "gradient_penalty"]}}},
         "search (remedies=gradient_penalty, variant=wgan): remedies 'weight_clipping' and 'gradient_penalty' cannot"),
        ({"search": {"variant": {"grid": ["wgan"]}}}, "search.variant = wgan: remedy 'label_flip' acts on D's targets"),
        ({"search": {"remedies.unrolled.k": {"grid": [1]}}}, "remedy 'unrolled' is neither in fixed.remedies"),
        ({"search": {"remedies": {"choice": [["label_flip", "bogus"]]}}}, "unknown remedy 'bogus'"),
        ({"seeds": 0}, "seeds: seeds must be a positive count"),
        ({"trials": 1}, "trials: 1 is fewer than the 2 grid points"),
        ({"scheduler": {"name": "hyperband"}}, "scheduler.name:"),
        ({"bogus": 1}, "bogus: unknown key; known: "),
        ({"fixed__loss": "wasserstein"}, "remedy 'label_flip' acts on D's targets"),
        ({"fixed__model__init": "orthogonl"}, "model.init: unknown init 'orthogonl'; known: normal, orthogonal,"),
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
    assert spec.base.train.epochs == 1 and spec.seed_list == [0, 1, 2]
    assert spec.base.train.batch_size == 32 and spec.trials == 4


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


def test_int_search_and_list_choices_validate():
    from study.spec import validate

    spec = validate({"name": "x", "search": {"train.n_critic": {"int": [1, 3]},
                                              "train.betas": {"choice": [[0.5, 0.9], [0.5, 0.999]]}}})
    assert spec.search["train.n_critic"].kind == "int" and spec.search["train.betas"].values[0] == [0.5, 0.9]


def test_trial_builder_decodes_indices_into_the_values_as_written():
    from study.space import TRIAL_INDEX, TrialBuilder
    from study.spec import validate

    spec = validate({"name": "x", "seeds": [7, 8], "fixed": {"remedies": {"label_flip": {"rate": 0.1}}},
                     "search": {"train.betas": {"choice": [[0.5, 0.9], [0.5, 0.999]]},
                                "remedies": {"grid": ["none", "instance_noise+packing", ["r1"]]},
                                "remedies.packing.m": {"choice": [2, 4]}}})
    build = TrialBuilder(spec)
    sampled = {"train.betas": 1, "remedies": 1, "remedies.packing.m": 1, TRIAL_INDEX: 1}
    cfg = build(sampled)
    assert cfg.train.betas == (0.5, 0.999) and cfg.seed == 8
    assert list(cfg.remedies) == ["label_flip", "instance_noise", "packing"] and cfg.remedies["packing"].m == 4
    assert build.values(sampled) == {"remedies": "instance_noise+packing", "remedies.packing.m": "4",
                                     "train.betas": "[0.5, 0.999]"}
    assert list(build({"train.betas": 0, "remedies": 2}).remedies) == ["label_flip", "r1"]


def test_exclusive_hooks_are_refused():
    from dataclasses import replace

    from trainables import remedies as registry

    twin = replace(registry.REMEDIES["feature_matching"], conflicts=())
    registry.REMEDIES["feature_matching_twin"] = twin
    try:
        with pytest.raises(ValueError, match="both replace 'g_loss'; keep one"):
            registry.check_combination(["feature_matching", "feature_matching_twin"], True)
    finally:
        del registry.REMEDIES["feature_matching_twin"]


def test_non_utf8_and_duplicate_keys_are_refused(tmp_path, capsys):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: caf\xe9\n".encode("latin1"))
    home = tmp_path / "home"
    import os

    os.environ["GAN_STUDY_HOME"] = str(home)
    assert main([str(bad)]) == 2 and "not UTF-8 text" in capsys.readouterr().err
    dup = tmp_path / "dup.yaml"
    dup.write_text("name: a\nfixed:\n  train: {epochs: 2}\n  train: {epochs: 3}\n")
    assert main([str(dup)]) == 2
    err = capsys.readouterr().err
    assert "duplicate key 'train'" in err and len(err.strip().splitlines()) == 1 and not home.exists()


@pytest.mark.parametrize("changes, message", [
    ({"fixed__train__epochs": True}, "fixed.train.epochs: expected an integer, got True"),
    ({"fixed__train__epochs": 7.5}, "fixed.train.epochs: expected an integer, got 7.5"),
    ({"fixed__train__batch_size": 10**12}, "fixed.train.batch_size: Input should be less than or equal to"),
    ({"fixed__data__n_points": 10**12}, "fixed.data.n_points: Input should be less than or equal to"),
    ({"fixed__model__g_hidden": 7.5}, "fixed.model: g_hidden: expected int, got 7.5"),
    ({"fixed__model__g_hidden": True}, "fixed.model: g_hidden: expected int, got True"),
    ({"fixed__model__act": 3}, "fixed.model: act: expected str, got 3"),
    ({"search": {"model.g_hidden": {"choice": [[16, 32], [8]]}}},
     "search.model.g_hidden = [16, 32] -> model: g_hidden: expected int, got [16, 32]"),
])
def test_out_of_range_and_non_integer_values_are_refused(tmp_path, capsys, changes, message):
    assert message in _error(tmp_path, capsys, _with(**changes))


@pytest.mark.parametrize("args, message", [
    (("--address", "garbage"), "--address 'garbage': expected auto, local, HOST:PORT"),
    (("--tracking-uri", "foo://bar"), "--tracking-uri 'foo://bar': unknown scheme 'foo'"),
    (("--resume",), "--resume: no earlier run of study 'tiny'"),
    (("--storage-path", "/proc/gan-study"), "--storage-path: /proc is not writable"),
    (("--tracking-uri", "sqlite:////proc/gan-study/mlflow.db"), "--tracking-uri: /proc is not writable"),
])
def test_bad_flags_are_refused_before_ray_starts(tmp_path, capsys, args, message):
    err = _error(tmp_path, capsys, GOOD, args)
    assert message in err and len(err.strip().splitlines()) == 1


def test_paths_and_resources_are_checked_before_ray_starts(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    err = _error(tmp_path, capsys, GOOD, ("--tracking-uri", f"sqlite:///{a_file}/m.db"))
    assert f"--tracking-uri: {a_file} is a file, not a directory" in err
    assert "is a file" in _error(tmp_path, capsys, GOOD, ("--storage-path", str(a_file / "ray")))
    assert "fixed.data.root:" in _error(tmp_path, capsys, _with(fixed__data__root=str(a_file)))
    assert "resources.cpu: a trial asks for 512 CPUs" in _error(tmp_path, capsys, _with(resources={"cpu": 512}))


def test_set_reaches_into_a_search_entry_by_its_dotted_key(tmp_path):
    path = _write(tmp_path, {**GOOD, "search": {"remedies.label_flip.rate": {"grid": [0.0, 0.1, 0.2]},
                                                "train.lr": {"loguniform": [1e-4, 1e-2]}}})
    spec = load_spec(path, overrides=["search.remedies.label_flip.rate.grid=[0, 0.05]",
                                      "search.train.lr=null", "search.train.batch_size.choice=[32, 64]"])
    assert spec.search["remedies.label_flip.rate"].values == [0, 0.05]
    assert set(spec.search) == {"remedies.label_flip.rate", "train.batch_size"}
    with pytest.raises(SpecError, match=r"search.train.epochs: not a searched key; searched: remedies"):
        load_spec(path, overrides=["search.train.epochs=null"])
    with pytest.raises(SpecError, match=r"end the key with one of grid"):
        load_spec(path, overrides=["search.train.lr=0.1"])


def test_a_bare_spec_name_is_found_in_search_spaces(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["ring8_pacgan", "--quick", "--dry-run"]) == 0
    assert "ring8_pacgan (quick)" in capsys.readouterr().out


def test_resume_refuses_a_changed_spec_with_the_differences(tmp_path, capsys, monkeypatch):
    import json

    from study.preflight import spec_record

    path = _write(tmp_path, GOOD)
    storage = tmp_path / "ray"
    (storage / "tiny").mkdir(parents=True)
    (storage / "tiny" / "latest.json").write_text(json.dumps({"run_name": "r", "parent_run_id": "p",
                                                               "spec": spec_record(load_spec(path))}))
    home = tmp_path / "home"
    monkeypatch.setenv("GAN_STUDY_HOME", str(home))
    args = [str(path), "--resume", "--storage-path", str(storage), "--set", "train.lr=0.05"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--resume: the spec differs from the run it resumes (fixed.train.lr: (unset) -> 0.05)" in err
    assert len(err.strip().splitlines()) == 1 and not home.exists()
