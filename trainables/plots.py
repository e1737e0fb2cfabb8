"""Sample pictures for tracking: an image grid or a 2D scatter over the mixture centres (PNG files)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from trainables.data import Dataset


def save_samples(samples: Tensor, data: Dataset, path: Path, title: str = "") -> Path:
    """Write G's samples as a PNG: a grid of images, or a scatter of points with the real centres."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if data.kind == "images":
        from torchvision.utils import save_image

        x = samples[:, :3] if samples.shape[1] > 3 else samples
        save_image((x + 1) / 2, str(path), nrow=int(len(x) ** 0.5), padding=1)
        return path
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.5, label="G(z)")
    centers = data.centers if data.centers is not None else torch.empty(0, 2)
    ax.scatter(centers[:, 0], centers[:, 1], s=30, c="red", marker="x", label="modes")
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
