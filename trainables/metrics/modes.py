"""Mode-based metrics: modes covered, high-quality fraction, KL to uniform, diversity (PacGAN, Lin et al. 2018),
and the robust mode count of the collapse verdict."""
from __future__ import annotations

import math

import torch
from torch import Tensor


def assign_to_centers(x: Tensor, centers: Tensor, std: float) -> tuple[Tensor, Tensor]:
    """Nearest centre of each point and whether it lies within 3 std of it (PacGAN). x (N, 2) -> (N,), (N,)"""
    dist = torch.cdist(x.float(), centers.float())  # (N, K)
    d_min, mode = dist.min(dim=1)
    return mode, d_min <= 3.0 * std


def mode_histogram(modes: Tensor, keep: Tensor, n_modes: int) -> Tensor:
    """Counts of `modes` over the samples where `keep` is true. -> (K,)"""
    return torch.bincount(modes[keep], minlength=n_modes).double()


def entropy(hist: Tensor) -> float:
    """Shannon entropy (nats) of a histogram; 0 for an empty one."""
    total = hist.sum()
    if total <= 0:
        return 0.0
    p = hist[hist > 0] / total
    return float(-(p * p.log()).sum())


def diversity(hist: Tensor) -> float:
    """exp(H(mode histogram)) / K: the effective fraction of modes produced (1 = uniform, 1/K = one mode)."""
    if hist.sum() <= 0:
        return 0.0
    return math.exp(entropy(hist)) / len(hist)


def kl_to_uniform(hist: Tensor) -> float:
    """KL(p_hat || uniform over K modes) = ln K - H(p_hat) (PacGAN); ln K when the histogram is empty."""
    return math.log(len(hist)) - entropy(hist)


ROBUST_SHARE = 0.25  # a mode is held robustly by at least a quarter of its fair share of the HQ samples


def held_modes(hq_hist: Tensor, share: float = ROBUST_SHARE) -> Tensor:
    """Which modes hold at least share / K of the high-quality samples (docs/collapse.md). (K,) -> (K,) bool"""
    total = float(hq_hist.sum())
    return hq_hist >= share * total / len(hq_hist) if total > 0 else torch.zeros_like(hq_hist, dtype=torch.bool)


def robust_modes(hq_hist: Tensor, share: float = ROBUST_SHARE) -> int:
    """How many modes hold at least share / K of the high-quality samples; 0 with none."""
    return int(held_modes(hq_hist, share).sum())


def mode_metrics(modes: Tensor, hq: Tensor, n_modes: int, count_all: bool,
                 covered_needs_hq: bool = True) -> dict[str, float]:
    """modes_covered (modes with a high-quality sample), hq_fraction, kl_to_uniform, diversity (the published
    definitions), the verdict's robust ones: hq_count, modes_robust and spread = modes_robust / K, and where the mass
    is whatever its quality: modes_with_mass, the modes holding 0.25 / K of all samples (nearest centre or argmax).

    `count_all`: the mode histogram of kl_to_uniform and diversity counts every sample (images: classifier
    argmax, PacGAN stacked MNIST); otherwise only high-quality samples (2D mixtures). `covered_needs_hq=False`
    counts a mode as covered by any sample's argmax (PacGAN's stacked MNIST protocol: distinct triples, no
    confidence threshold). The robust count always uses the high-quality samples only: collapse means the
    good samples sit on few modes.
    """
    hq_hist = mode_histogram(modes, hq, n_modes)
    all_hist = mode_histogram(modes, torch.ones_like(hq), n_modes)  # every sample, good or not
    hist = all_hist if count_all else hq_hist
    covered = torch.bincount(modes[hq] if covered_needs_hq else modes, minlength=n_modes) > 0
    held = robust_modes(hq_hist)
    return {
        "eval/modes_covered": float(covered.sum()),
        "eval/hq_fraction": float(hq.float().mean()),
        "eval/kl_to_uniform": kl_to_uniform(hist),
        "eval/diversity": diversity(hist),
        "eval/hq_count": float(hq.sum()),
        "eval/modes_robust": float(held),
        "eval/spread": held / n_modes,
        "eval/modes_with_mass": float(held_modes(all_hist).sum()),
    }
