"""Mode classifier: trains on digits into a tmp cache, reloads without retraining, feature shapes, its gate."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from trainables.data import files, images
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


def _off_manifold(n: int, size: int) -> dict[str, torch.Tensor]:
    """Hand-built images no digit looks like: uniform and Gaussian noise, sparse bright specks."""
    gen = torch.Generator().manual_seed(0)
    return {"uniform noise": torch.rand(n, 1, size, size, generator=gen) * 2 - 1,
            "gaussian noise": (torch.randn(n, 1, size, size, generator=gen) * 0.5).clamp(-1, 1),
            "specks": (torch.rand(n, 1, size, size, generator=gen) > 0.9).float() * 2 - 1}


def test_the_gate_passes_its_quantile_of_real_digits_and_no_noise(digits_root: Path) -> None:
    """Lee et al. (2018) Mahalanobis gate: the threshold lets GATE_QUANTILE of the held-out digits through, and a
    sample is high quality only when confident and typical, so noise the softmax is sure of is not."""
    model, info = clf.get_classifier("digits", 8, root=str(digits_root))
    x, _ = images.load_split("digits", None, train=False)
    real = x * 2 - 1
    _, feats = model.probs(real)
    assert model.typical(feats).float().mean().item() == pytest.approx(clf.GATE_QUANTILE, abs=0.01)
    assert info["gate_test_pass"] == pytest.approx(clf.GATE_QUANTILE, abs=0.01)
    assert torch.isfinite(model.gate_threshold) and model.gate_threshold > 0
    _, hq, _ = images.class_argmax(real, None, model, 0.9)  # type: ignore[arg-type]
    assert hq.float().mean() > 0.8
    for name, noise in _off_manifold(200, 8).items():
        _, hq, f = images.class_argmax(noise, None, model, 0.9)  # type: ignore[arg-type]
        assert hq.float().mean() < 0.02 and model.typical(f).float().mean() < 0.15, name  # measured 0.00; <= 0.08


def test_a_checkpoint_of_another_build_is_retrained(tmp_path: Path, digits_root: Path) -> None:
    """A cache written before the gate existed (its JSON names another arch) is not loaded without the gate."""
    ckpt, meta_path = clf.cache_paths("digits", 8, digits_root)
    target, target_meta = clf.cache_paths("digits", 8, tmp_path)
    target.parent.mkdir(parents=True)
    target.write_bytes(ckpt.read_bytes())
    meta = json.loads(meta_path.read_text())
    target_meta.write_text(json.dumps({**meta, "arch": meta["arch"].replace("+mahalanobis gate", "")}))
    model, info = clf.get_classifier("digits", 8, root=str(tmp_path))
    assert info["trained"] is True and json.loads(target_meta.read_text())["arch"] == clf.ARCH


@pytest.mark.parametrize("size", [28, 64])
def test_fused_inference_body_computes_the_eval_mode_body(size: int) -> None:
    """BatchNorm folded into the convolutions and ReLU moved after max-pooling give the eval-mode body's
    features and the same argmax (BN statistics and affine parameters far from identity, negative scales too)."""
    torch.manual_seed(0)
    model = clf.ModeClassifier(size)
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.2, 3)
        bn.weight.data.uniform_(-2, 2), bn.bias.data.uniform_(-1, 1)
    model.eval().requires_grad_(False)
    x = torch.rand(600, 1, size, size) * 2 - 1
    want = model.body(x)
    probs, feats = model.probs(x)
    assert [type(m).__name__ for m in model.inference_body()][:3] == ["Conv2d", "MaxPool2d", "ReLU"]
    assert torch.allclose(feats, want, atol=1e-4, rtol=1e-4) and feats.abs().max() > 0.1
    assert torch.equal(probs.argmax(1), model.head(want).argmax(1))
    assert set(model.state_dict()) == set(clf.ModeClassifier(size).state_dict())  # the cache is no submodule
    model.train()
    assert torch.equal(model.probs(x[:8])[1], model.body(x[:8]))  # train mode: the body as it is


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
        files.ensure_files("mnist", files.data_root(None))
    except FileNotFoundError as exc:
        pytest.skip(f"MNIST not obtainable: {str(exc).splitlines()[0]}")
    return str(files.data_root(None))


@pytest.mark.slow
@pytest.mark.parametrize("size", [28, 64])
def test_mnist_classifier_accuracy(size: int) -> None:
    model, info = clf.get_classifier("mnist", size, root=_mnist_root())
    assert info["test_accuracy"] > 0.98
    assert model(torch.zeros(2, 1, size, size)).shape == (2, 10)
    assert info["gate_test_pass"] == pytest.approx(clf.GATE_QUANTILE, abs=0.005)


@pytest.mark.slow
def test_mnist_noise_the_softmax_is_sure_of_is_not_high_quality() -> None:
    """Measured before the gate: the MNIST classifier read uniform and Gaussian noise as a confident 8 (100 %
    at top probability >= 0.9), so noise passed the verdict's quality floor; with the gate none of it does."""
    model, _ = clf.get_classifier("mnist", 28, root=_mnist_root())
    for name, noise in _off_manifold(500, 28).items():
        _, hq, _ = images.class_argmax(noise, None, model, 0.9)  # type: ignore[arg-type]
        assert hq.float().mean() < 0.01, name
