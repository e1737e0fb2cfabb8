"""Image datasets (MNIST, Fashion-MNIST, sklearn digits, stacked MNIST) held as one tensor in [-1, 1].

Files come from `trainables/data/files.py` (the data root, torchvision's layout, fetching when missing).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from trainables.data import Dataset, Modes
from trainables.data.files import data_root, ensure_files, tv_class

if TYPE_CHECKING:
    from trainables.config import DataConfig

IMAGE_PROBE_RADIUS = 0.5  # half-length of the D probes' lines, for images in [-1, 1]

NATIVE_SIZE = {"mnist": 28, "fashion_mnist": 28, "digits": 8, "stacked_mnist": 28}


def _digits_split(train: bool) -> tuple[Tensor, Tensor]:
    """sklearn digits as float [0, 1] (N, 1, 8, 8) and labels; fixed 80/20 split with seed 0."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.int64)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    n_train = int(round(0.8 * len(x)))
    idx = perm[:n_train] if train else perm[n_train:]
    return x[idx], y[idx]


def load_raw(name: str, root: str | os.PathLike | None = None, train: bool = True) -> tuple[Tensor, Tensor, str]:
    """Images (N, 1, H, W) as uint8 (0..255) or float [0, 1] (digits), int64 labels and the source used."""
    if name == "digits":
        x, y = _digits_split(train)
        return x, y, "sklearn.datasets.load_digits"
    path = data_root(root)
    source = ensure_files(name, path)
    ds = tv_class(name)(str(path), train=train, download=False)
    return ds.data.unsqueeze(1), ds.targets.long(), source


def to_unit(x: Tensor) -> Tensor:
    """uint8 (0..255) or float [0, 1] images -> float32 in [0, 1]."""
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def load_split(name: str, root: str | os.PathLike | None = None, train: bool = True) -> tuple[Tensor, Tensor]:
    """Native-size float32 images (N, 1, H, W) in [0, 1] and int64 labels (digits: fixed 80/20 split)."""
    x, y, _ = load_raw(name, root, train)
    return to_unit(x), y


def resize(x: Tensor, size: int, chunk: int = 4096) -> Tensor:
    """Bilinear, antialiased, align_corners=False resize of (N, C, H, W) to size x size, in chunks."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    out = x.new_empty((*x.shape[:-2], size, size))
    for start in range(0, len(x), chunk):
        part = x[start:start + chunk]
        out[start:start + chunk] = F.interpolate(part, size=(size, size), mode="bilinear", antialias=True,
                                                 align_corners=False)
    return out


def _subset_idx(n: int, subset: int | None, seed: int) -> Tensor | None:
    """Sorted indices of a seeded random subset, or None for all."""
    if not subset or subset >= n:
        return None
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[: int(subset)].sort().values


def class_argmax(x: Tensor, data: Dataset, classifier: Any, hq_confidence: float) -> tuple[Tensor, Tensor, Tensor]:
    """Mode = the mode classifier's argmax; high quality at confidence >= hq_confidence with features that pass
    its Mahalanobis gate (trainables/metrics/classifier.py); its penultimate features."""
    probs, feats = classifier.probs(x)
    return probs.argmax(1), (probs.max(1).values >= hq_confidence) & classifier.typical(feats), feats


def channel_triples(x: Tensor, data: Dataset, classifier: Any, hq_confidence: float) -> tuple[Tensor, Tensor, Tensor]:
    """Stacked MNIST: one digit per channel, mode = 100 d0 + 10 d1 + d2 (PacGAN); high quality when every
    channel is confident and passes the gate; features = the three channels' features side by side. x (N, 3, H, W)"""
    probs, feats = zip(*(classifier.probs(x[:, c : c + 1]) for c in range(3)))
    good = torch.stack([(p.max(1).values >= hq_confidence) & classifier.typical(f) for p, f in zip(probs, feats)])
    digits = [p.argmax(1) for p in probs]
    return digits[0] * 100 + digits[1] * 10 + digits[2], good.all(0), torch.cat(feats, 1)


def _finish(name: str, x: Tensor, y: Tensor, n_modes: int, cfg: DataConfig, info: dict,
            modes: Modes | None = None) -> Dataset:
    """Subset, scale to [-1, 1], resize and package as a Dataset."""
    seed = int(cfg.seed or 0)
    idx = _subset_idx(len(x), cfg.subset, seed)
    if idx is not None:
        x, y = x[idx], y[idx]
    size = int(cfg.image_size or NATIVE_SIZE[name])
    x = resize(to_unit(x), size).mul_(2.0).sub_(1.0).clamp_(-1.0, 1.0).contiguous()
    info.update(native_size=NATIVE_SIZE[name], image_size=size, subset=cfg.subset, n=len(x),
                channels=x.shape[1], data_seed=seed, scale="[-1, 1]",
                resize="bilinear, antialias=True, align_corners=False" if size != NATIVE_SIZE[name] else None)
    modes = modes or Modes(class_argmax, name, count_all=True, covered_needs_hq=True, probe_radius=IMAGE_PROBE_RADIUS)
    return Dataset(name, x, "images", n_modes, modes, labels=y, info=info)


def _single(name: str, cfg: DataConfig) -> Dataset:
    """A 10-class single-channel dataset from its training split."""
    x, y, source = load_raw(name, cfg.root, train=True)
    info = {"source": source, "split": "train"}
    if name != "digits":
        info["root"] = str(data_root(cfg.root))
    return _finish(name, x, y, 10, cfg, info)


def mnist(cfg: DataConfig) -> Dataset:
    """MNIST training set (60,000 images, 28x28 native), 10 modes."""
    return _single("mnist", cfg)


def fashion_mnist(cfg: DataConfig) -> Dataset:
    """Fashion-MNIST training set (60,000 images, 28x28 native), 10 modes."""
    return _single("fashion_mnist", cfg)


def digits(cfg: DataConfig) -> Dataset:
    """scikit-learn's 8x8 digits, training part of a fixed 80/20 split (1,438 images), 10 modes."""
    return _single("digits", cfg)


def stacked_mnist(cfg: DataConfig) -> Dataset:
    """Three MNIST digits (of the training split, or `stacked_from: train+test` as PacGAN's code: all 70,000)
    drawn with replacement as RGB channels; 1,000 modes (PacGAN)."""
    x, y, source = load_raw("mnist", cfg.root, train=True)
    if cfg.stacked_from == "train+test":
        xt, yt, _ = load_raw("mnist", cfg.root, train=False)
        x, y = torch.cat([x, xt]), torch.cat([y, yt])
    n, seed = int(cfg.stacked_n or 60_000), int(cfg.seed or 0)
    idx = torch.randint(len(x), (n, 3), generator=torch.Generator().manual_seed(seed))
    stacked = x[idx].squeeze(2)  # (n, 3, 28, 28)
    labels = 100 * y[idx[:, 0]] + 10 * y[idx[:, 1]] + y[idx[:, 2]]
    info = {"source": source, "split": cfg.stacked_from, "root": str(data_root(cfg.root)), "stacked_n": n}
    # PacGAN's protocol: a mode is covered by any sample's argmax triple (no confidence threshold)
    modes = Modes(channel_triples, "mnist", count_all=True, covered_needs_hq=False, probe_radius=IMAGE_PROBE_RADIUS)
    return _finish("stacked_mnist", stacked, labels, 1000, cfg, info, modes)
