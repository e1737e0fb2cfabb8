"""D's surface over the plane with G's samples and D's gradient field.

2D mixtures; Gainetdinov 2023, Figure 1; docs/metrics.md.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from trainables.data import Dataset

DFn = Callable[[Tensor], Tensor]  # (B, 2) -> (B,) raw D outputs


def plane_extent(data: Dataset, g_samples: Tensor, margin: float = 0.5) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1): the mixture centres and G's samples (clipped to 3x the centres' span), plus a margin."""
    centres = data.centers if data.centers is not None else data.x[:1000]
    lo, hi = centres.min(0).values.float(), centres.max(0).values.float()
    span = (hi - lo).clamp_min(1.0)
    if len(g_samples):
        g = g_samples.float().cpu()
        lo = torch.maximum(torch.minimum(lo, g.min(0).values), lo - span)
        hi = torch.minimum(torch.maximum(hi, g.max(0).values), hi + span)
    lo, hi = lo - margin * span / 2, hi + margin * span / 2
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def d_surface(d: DFn, extent: tuple[float, float, float, float], n: int = 100,
              device: torch.device | str = "cpu") -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """D on an n x n grid and dD/dx there (Goodfellow et al. 2014, the field G follows). -> xs, ys, D, grad (n, n, 2)"""
    xs, ys = torch.linspace(extent[0], extent[1], n), torch.linspace(extent[2], extent[3], n)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2).to(device)
    with torch.enable_grad():
        pts = grid.clone().requires_grad_(True)
        out = d(pts).reshape(-1)
        (grad,) = torch.autograd.grad(out.sum(), pts)
    return xs, ys, out.detach().reshape(n, n).cpu(), grad.detach().reshape(n, n, 2).cpu()


def save_d_surface(d: DFn, g_samples: Tensor, data: Dataset, path: Path, title: str = "",
                   n: int = 100, arrows: int = 20, device: torch.device | str = "cpu") -> Path:
    """PNG of D's contour with G's samples, the real centres and D's gradient field (quiver) (Gainetdinov 2023)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    g = g_samples.detach().float().cpu()
    extent = plane_extent(data, g)
    xs, ys, z, grad = d_surface(d, extent, n, device)
    fig, ax = plt.subplots(figsize=(5, 4.4), dpi=100)
    cs = ax.contourf(xs, ys, z, levels=30, cmap="viridis")
    fig.colorbar(cs, ax=ax, label="D(x) (raw output)")
    idx = torch.linspace(0, n - 1, arrows).round().long()
    gx, gy = grad[idx][:, idx, 0], grad[idx][:, idx, 1]
    ax.quiver(xs[idx], ys[idx], gx, gy, color="white", alpha=0.8, angles="xy")
    ax.scatter(g[:, 0], g[:, 1], s=2, c="orange", alpha=0.6, label="G(z)")
    if data.centers is not None:
        ax.scatter(data.centers[:, 0], data.centers[:, 1], s=30, c="red", marker="x", label="modes")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
