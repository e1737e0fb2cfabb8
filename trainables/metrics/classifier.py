"""Mode classifier: a small CNN trained once per (dataset, image size) and cached under the data root.

Cache: `<data root>/classifiers/<dataset>_<size>px.pt` (state dict) and `.json` (test accuracy, training
seconds, sha256 of the checkpoint, ...). Training runs under a file lock and writes atomically, so parallel
trials wait for one another; a cached checkpoint whose hash matches its JSON is loaded, never retrained.
Training forks the global RNG, so whether the cache existed does not change the caller's random stream.

A sample is high quality only when the classifier is confident and its features are typical of real digits: the
Mahalanobis gate (Lee et al. 2018, *A simple unified framework for detecting out-of-distribution samples and
adversarial attacks*) fitted after training: class means and a shared covariance of the training digits' features,
and a threshold at the GATE_QUANTILE of the test digits' distances to their nearest class mean. Softmax confidence
alone passes uniform noise (100 % read as a confident 8 by the MNIST classifier, measured).

Stacked MNIST has no classifier of its own: its mode protocol names the MNIST one and applies it to each
channel separately (trainables.data.images.channel_triples; docs/metrics.md).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from trainables.data.files import atomic_write, data_root, file_lock
from trainables.data.images import load_split, resize

ARCH = "conv16(stride 2 above 40px)-bn-pool-conv32-bn-pool-avgpool(min(7, size/4))-fc128-fc10+mahalanobis gate"
GATE_QUANTILE = 0.95  # share of held-out real digits the gate lets through
EPOCHS = {"mnist": 2, "fashion_mnist": 3, "digits": 15}
BATCH, MAX_LR, SEED = 128, 2e-3, 0


class ModeClassifier(nn.Module):
    """Small CNN: (B, 1, H, W) in [-1, 1] -> (B, 10) logits; `features` gives the 128-d penultimate layer.

    Built for one image size: images above 40 px get a stride-2 first conv (64 px costs about what 28 px
    does) and the last feature map is average-pooled to min(7, size // 4) squared (identity at 28 px).
    """

    gate_means: Tensor  # (n_classes, 128)
    gate_whiten: Tensor  # (128, 128)
    gate_threshold: Tensor  # ()

    def __init__(self, image_size: int = 28, in_channels: int = 1, n_classes: int = 10) -> None:
        super().__init__()
        stride = 2 if image_size > 40 else 1
        pool = max(1, min(7, image_size // (4 * stride)))
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, stride=stride, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(pool), nn.Flatten(), nn.Linear(32 * pool * pool, 128), nn.ReLU(),
        )
        self.head = nn.Linear(128, n_classes)
        # the Mahalanobis gate: ||(f - mean_c) @ whiten||^2 <= threshold for the nearest class c (fit_gate)
        self.register_buffer("gate_means", torch.zeros(n_classes, 128))
        self.register_buffer("gate_whiten", torch.eye(128))
        self.register_buffer("gate_threshold", torch.tensor(float("inf")))

    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer features (B, 128)."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (B, 10)."""
        return self.head(self.body(x))

    @torch.no_grad()
    def probs(self, x: Tensor, chunk: int = 250) -> tuple[Tensor, Tensor]:
        """Class probabilities and penultimate features, in chunks, through the fused inference body (eval mode;
        `features` itself in train mode). (N, 1, H, W) -> (N, 10), (N, 128)"""
        body = self.features if self.training else self.inference_body()
        fmt = torch.contiguous_format if self.training else torch.channels_last
        feats = torch.cat([body(x[i : i + chunk].contiguous(memory_format=fmt)) for i in range(0, len(x), chunk)])
        return self.head(feats).softmax(1), feats

    @torch.no_grad()
    def gate_distance(self, feats: Tensor) -> Tensor:
        """Squared Mahalanobis distance of each feature row to its nearest class mean. (N, 128) -> (N,)"""
        w = self.gate_whiten
        return torch.cdist(feats @ w, self.gate_means @ w).min(1).values.square()

    def typical(self, feats: Tensor) -> Tensor:
        """Whether each sample's features pass the gate (look like a real digit's). (N, 128) -> (N,) bool"""
        return self.gate_distance(feats) <= self.gate_threshold

    def inference_body(self) -> nn.Module:
        """`body` for eval-mode inference, built once (the classifier is frozen after loading): see fuse_body."""
        cached = self.__dict__.get("_fused")  # a plain attribute: not a submodule, not in the state dict
        if cached is None:
            cached = self.__dict__["_fused"] = fuse_body(self.body)
        return cached


def fuse_body(body: nn.Sequential) -> nn.Sequential:
    """The same function as `body` in eval mode, about 5x faster on a CPU: each Conv-BN-ReLU-MaxPool becomes
    Conv(with BN folded in)-MaxPool-ReLU (ReLU commutes with max; pooling first makes it 4x cheaper), in
    channels-last memory format. Equal to `body.eval()` up to float rounding (tests/trainables/test_classifier.py)."""
    mods, out, i = list(body), [], 0
    while i < len(mods):
        block = [type(m) for m in mods[i : i + 4]]
        if block == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d]:
            conv, bn, _, pool = mods[i : i + 4]
            out += [fuse_conv_bn_eval(conv, bn), pool, nn.ReLU()]  # type: ignore[arg-type,type-var]
            i += 4
        else:
            out.append(mods[i])
            i += 1
    return nn.Sequential(*out).eval().requires_grad_(False).to(memory_format=torch.channels_last)


@torch.no_grad()
def _feats(model: ModeClassifier, x: Tensor, image_size: int, device: str | torch.device) -> Tensor:
    """Eval-mode penultimate features of native images resized to image_size. (N, ...) -> (N, 128)"""
    return torch.cat([model.probs(resize(xb, image_size).to(device))[1] for xb in x.split(1024)])


@torch.no_grad()
def fit_gate(model: ModeClassifier, x: Tensor, y: Tensor, xt: Tensor, image_size: int,
             device: str | torch.device = "cpu") -> dict[str, float]:
    """Fit the Mahalanobis gate (Lee et al. 2018): class means and the shared covariance of the training
    features, threshold at GATE_QUANTILE of the test digits' distances; returns what it measured."""
    model.eval()
    f = _feats(model, x, image_size, device).double()
    y = y.to(f.device)
    means = torch.stack([f[y == c].mean(0) for c in range(model.head.out_features)])
    centred = f - means[y]
    cov = centred.T @ centred / len(f)
    cov += 1e-6 * cov.diagonal().mean() * torch.eye(len(cov), dtype=cov.dtype, device=cov.device)
    model.gate_means.copy_(means.float())
    model.gate_whiten.copy_(torch.linalg.cholesky(torch.linalg.inv(cov)).float())  # W W^T = cov^-1
    dist = model.gate_distance(_feats(model, xt, image_size, device))
    model.gate_threshold.fill_(float(dist.quantile(GATE_QUANTILE)))
    return {"gate_quantile": GATE_QUANTILE, "gate_threshold": float(model.gate_threshold),
            "gate_test_pass": float((dist <= model.gate_threshold).float().mean())}


def cache_paths(dataset: str, image_size: int, root: str | Path | None = None) -> tuple[Path, Path]:
    """(checkpoint, json) paths of the cached classifier."""
    stem = data_root(root) / "classifiers" / f"{dataset}_{int(image_size)}px"
    return stem.with_suffix(".pt"), stem.with_suffix(".json")


def _sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _split(dataset: str, root: str | Path | None, train: bool) -> tuple[Tensor, Tensor]:
    """Native-size images in [-1, 1] and labels; resized per batch later (keeps memory low)."""
    x, y = load_split(dataset, root, train=train)
    return x.mul_(2.0).sub_(1.0), y


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor, image_size: int, device: str | torch.device = "cpu") -> float:
    """Top-1 accuracy of `model` on native images `x` resized to `image_size`."""
    model.eval()
    correct = 0
    for xb, yb in zip(x.split(1024), y.split(1024)):
        pred = model(resize(xb, image_size).to(device)).argmax(1).cpu()
        correct += int((pred == yb).sum())
    return correct / max(len(y), 1)


def _fit_epoch(model: nn.Module, opt: torch.optim.Optimizer, sched: Any, x: Tensor, y: Tensor, image_size: int,
               gen: torch.Generator, device: str | torch.device) -> float:
    """One shuffled pass over (x, y); returns the last batch loss."""
    model.train()
    for idx in torch.randperm(len(x), generator=gen).split(BATCH):
        loss = F.cross_entropy(model(resize(x[idx], image_size).to(device)), y[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return float(loss.detach())


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Train with one intra-op thread: on small, busy CPUs (2 shared cores) two threads ran 5x slower."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _train(dataset: str, image_size: int, root: str | Path | None,
           device: str | torch.device) -> tuple[nn.Module, dict]:
    """Train a ModeClassifier with a fixed seed (global RNG forked); returns the model and its metadata."""
    (x, y), (xt, yt) = _split(dataset, root, train=True), _split(dataset, root, train=False)
    start, epochs = time.perf_counter(), EPOCHS[dataset]
    with torch.random.fork_rng(devices=[]), _one_thread():
        torch.manual_seed(SEED)
        model = ModeClassifier(image_size).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=MAX_LR)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX_LR, total_steps=epochs * -(-len(x) // BATCH))
        gen = torch.Generator().manual_seed(SEED)
        for epoch in range(epochs):
            loss = _fit_epoch(model, opt, sched, x, y, image_size, gen, device)
            if epoch % max(1, epochs // 5) == 0 or epoch == epochs - 1:
                acc = accuracy(model, xt, yt, image_size, device)
                print(f"gan-study: classifier {dataset} {image_size}px epoch {epoch + 1}/{epochs} "
                      f"loss {loss:.4f} test acc {acc:.4f}", file=sys.stderr)
        gate = fit_gate(model, x, y, xt, image_size, device)
    meta = {"dataset": dataset, "image_size": int(image_size), "channels": 1, "arch": ARCH, "test_accuracy": acc,
            "train_seconds": round(time.perf_counter() - start, 2), "epochs": epochs, "batch_size": BATCH,
            "max_lr": MAX_LR, "schedule": "one-cycle Adam", "seed": SEED, "n_train": len(x), "n_test": len(xt),
            "device": str(device), "torch": torch.__version__, **gate}
    return model, meta


def _save(model: nn.Module, meta: dict, ckpt: Path, meta_path: Path) -> dict:
    """Write the checkpoint then its JSON (with sha256), both atomically; returns the JSON dict."""
    buf = io.BytesIO()
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, buf)
    atomic_write(ckpt, buf.getvalue())
    meta = {**meta, "sha256": hashlib.sha256(buf.getvalue()).hexdigest(), "checkpoint": str(ckpt)}
    atomic_write(meta_path, json.dumps(meta, indent=2).encode())
    return meta


def _stale(meta: dict, ckpt: Path) -> str | None:
    """Why a cached checkpoint cannot be used (another build, another gate, a changed file), or None."""
    if meta.get("arch") != ARCH:
        return f"was built as {meta.get('arch')!r}, not {ARCH!r}"
    if meta.get("gate_quantile") != GATE_QUANTILE:
        return f"has its gate at {meta.get('gate_quantile')}, not {GATE_QUANTILE}"
    if meta.get("sha256") != _sha256(ckpt):
        return "does not match its sha256"
    return None


def _load_cached(ckpt: Path, meta_path: Path, device: str | torch.device,
                 quiet: bool = False) -> tuple[nn.Module, dict] | None:
    """The cached model and its JSON, or None when missing, built otherwise or the hash does not match (said
    unless quiet)."""
    if not (ckpt.is_file() and meta_path.is_file()):
        return None
    meta = json.loads(meta_path.read_text())
    why = _stale(meta, ckpt)
    if why:
        if not quiet:
            print(f"gan-study: classifier checkpoint {ckpt} {why}; retraining", file=sys.stderr)
        return None
    with torch.random.fork_rng(devices=[]):  # weight init must not advance the caller's RNG
        model = ModeClassifier(int(meta["image_size"]))
    model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True))
    return model.to(device), meta


def get_classifier(dataset_name: str, image_size: int, root: str | Path | None = None,
                   device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """The cached mode classifier for (dataset, image size), training it first if needed; (model, info).

    `model(x)` takes (B, 1, image_size, image_size) in [-1, 1] and returns (B, 10) logits; `model.features(x)`
    the (B, 128) penultimate features. The model is in eval mode with frozen parameters. `info` is the cache
    JSON plus `trained` (True only when this call trained it).
    """
    dataset = dataset_name
    if dataset not in EPOCHS:
        raise KeyError(f"no mode classifier for {dataset_name!r}; known: {', '.join(sorted(EPOCHS))}")
    ckpt, meta_path = cache_paths(dataset, image_size, root)
    found = _load_cached(ckpt, meta_path, device, quiet=True)  # said, if need be, under the lock below
    trained = False
    if found is None:
        with file_lock(ckpt.with_suffix(".lock")):
            found = _load_cached(ckpt, meta_path, device)  # another process may have finished meanwhile
            if found is None:
                print(f"gan-study: training the {dataset} {image_size}px mode classifier into {ckpt}", file=sys.stderr)
                model, meta = _train(dataset, int(image_size), root, device)
                found, trained = (model, _save(model, meta, ckpt, meta_path)), True
    model, meta = found
    model.eval().requires_grad_(False)
    return model, {**meta, "checkpoint": str(ckpt), "trained": trained, "requested_dataset": dataset_name}
