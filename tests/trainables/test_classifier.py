"""Mode classifier: trains on digits into a tmp cache, reloads without retraining, feature shapes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from trainables.data import images
from trainables.metrics import classifier as clf


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding a freshly trained digits classifier."""
    root = tmp_path_factory.mktemp("clf")
    _, info = clf.get_classifier("digits", 8, root=str(root))
    assert info["trained"] is True
    return root


def test_digits_classifier_accuracy_and_cache_files(digits_root: Path) -> None:
    ckpt, meta_path = clf.cache_paths("digits", 8, digits_root)
    assert ckpt == digits_root / "classifiers" / "digits_8px.pt" and ckpt.is_file()
    meta = json.loads(meta_path.read_text())
    assert meta["test_accuracy"] > 0.9 and meta["train_seconds"] > 0
    assert len(meta["sha256"]) == 64
    assert not list((digits_root / "classifiers").glob("*.tmp"))


def test_second_call_loads_cache_without_training(digits_root: Path) -> None:
    stamp = clf.cache_paths("digits", 8, digits_root)[0].stat().st_mtime_ns
    model, info = clf.get_classifier("digits", 8, root=str(digits_root))
    assert info["trained"] is False and info["test_accuracy"] > 0.9
    assert clf.cache_paths("digits", 8, digits_root)[0].stat().st_mtime_ns == stamp
    x, y = images.load_split("digits", None, train=False)
    acc = clf.accuracy(model, x * 2 - 1, y, 8)
    assert acc == pytest.approx(info["test_accuracy"])


def test_model_outputs_and_features(digits_root: Path) -> None:
    model, _ = clf.get_classifier("digits", 8, root=str(digits_root))
    x = torch.rand(5, 1, 8, 8) * 2 - 1
    assert model(x).shape == (5, 10) and model.features(x).shape == (5, 128)
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_loading_does_not_touch_global_rng(digits_root: Path) -> None:
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    clf.get_classifier("digits", 8, root=str(digits_root))
    assert torch.equal(torch.rand(3), want)


def test_corrupt_checkpoint_is_detected(tmp_path: Path, digits_root: Path) -> None:
    ckpt, meta_path = clf.cache_paths("digits", 8, digits_root)
    target, target_meta = clf.cache_paths("digits", 8, tmp_path)
    target.parent.mkdir(parents=True)
    target.write_bytes(ckpt.read_bytes() + b"junk")
    target_meta.write_text(meta_path.read_text())
    assert clf._load_cached(target, target_meta, "cpu") is None


def test_stacked_mnist_owns_a_protocol_scored_by_the_mnist_classifier(tmp_path: Path) -> None:
    from trainables.data import images

    mnist = images.Modes(images.class_argmax, "mnist", True, True, images.IMAGE_PROBE_RADIUS)
    assert mnist.classifier == "mnist"
    assert images.channel_triples is not images.class_argmax
    with pytest.raises(KeyError, match="ring8"):
        clf.get_classifier("ring8", 28, root=str(tmp_path))


def _mnist_root() -> str:
    """A data root with real MNIST, or skip."""
    try:
        images.ensure_files("mnist", images.data_root(None))
    except FileNotFoundError as exc:
        pytest.skip(f"MNIST not obtainable: {str(exc).splitlines()[0]}")
    return str(images.data_root(None))


@pytest.mark.slow
@pytest.mark.parametrize("size", [28, 64])
def test_mnist_classifier_accuracy(size: int) -> None:
    model, info = clf.get_classifier("mnist", size, root=_mnist_root())
    assert info["test_accuracy"] > 0.98
    assert model(torch.zeros(2, 1, size, size)).shape == (2, 10)
