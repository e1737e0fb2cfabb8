"""AdaGAN's arithmetic (Tolstikhin et al. 2017; tolstikhin/adagan, adagan.py): the mixture weights beta_t, the
data weights W_t from a classifier of data vs the mixture, and sampling a mixture of generators by weight.

Plain tensor functions, no nets of their own; trainables.adagan drives them round by round.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

EPS = 1e-8  # the authors' (1 - D) / (D + 1e-8)


def beta_uniform(t: int, constant: float) -> float:
    """beta_t = 1/t: the uniform mixture of t components (authors' beta_heur 'uniform', their default)."""
    return 1.0 / t


def beta_constant(t: int, constant: float) -> float:
    """beta_t = a constant for t > 1 (authors' beta_heur 'constant', beta_constant 0.5)."""
    return constant


# beta_heur -> (round t >= 2, beta_constant) -> the new component's mixture weight; round 1's is always 1
BETAS: dict[str, Callable[[int, float], float]] = {"uniform": beta_uniform, "constant": beta_constant}


def next_beta(schedule: str, t: int, constant: float) -> float:
    """The mixture weight of round t's component (1-based): 1 for the first, else the schedule's."""
    return 1.0 if t == 1 else BETAS[schedule](t, constant)


def mix(weights: Tensor, beta: float) -> Tensor:
    """Mixture weights after adding a component of weight beta: old ones x (1 - beta), then beta. (k,) -> (k+1,)"""
    return torch.cat([weights * (1.0 - beta), weights.new_tensor([beta])])


def density_ratios(prob_real: Tensor) -> Tensor:
    """h(d) = (1 - d) / d, the estimate of dP_model/dP_data from the classifier's P(real) d (paper eq. 16). (N,)"""
    return (1.0 - prob_real) / (prob_real + EPS)


def weights_theory_star(ratios: Tensor, beta: float, topk: float) -> Tensor:
    """W_t of the paper's Thm 2 / eq. 17-18 ('theory_star'): w_i = (lambda* - (1 - beta) h_i)_+ / (N beta),
    lambda* found over the sorted ratios as the authors do, then normalised to sum 1; uniform when no lambda
    satisfies the bracket (the authors' fallback). (N,) -> (N,)"""
    n = len(ratios)
    r = ratios.double()
    ordered = r.sort().values
    i = torch.arange(1, n + 1, dtype=r.dtype, device=r.device)
    lam = (beta * n + (1.0 - beta) * ordered.cumsum(0)) / i  # eq. 18 for the i smallest ratios kept
    low = (1.0 - beta) * ordered
    high = torch.cat([(1.0 - beta) * ordered[1:], r.new_tensor([float("inf")])])
    found = (lam >= low) & (lam <= high)
    if not bool(found.any()):
        return torch.full_like(ratios, 1.0 / n)
    lam_star = lam[int(found.int().argmax())]  # the first i that brackets lambda, as the authors' loop
    w = (lam_star - (1.0 - beta) * r).clamp(min=0.0) / (n * beta)
    return (w / w.sum()).to(ratios.dtype)


def weights_topk(ratios: Tensor, beta: float, topk: float) -> Tensor:
    """Uniform on the share `topk` of points with the smallest ratios (most surely real; authors' 'topk'). (N,)"""
    threshold = torch.quantile(ratios.double(), topk).to(ratios.dtype)
    keep = (ratios <= threshold).to(ratios.dtype)
    return keep / keep.sum()


# weights_heur -> (ratios (N,), beta, topk) -> data weights (N,), non-negative, summing to 1
DATA_WEIGHTS: dict[str, Callable[[Tensor, float, float], Tensor]] = {
    "theory_star": weights_theory_star, "topk": weights_topk}


def pick(weights: Tensor, u: Tensor) -> Tensor:
    """Component of each draw by inverse CDF: k with cumsum(w)[k-1] <= u < cumsum(w)[k]. (K,), (N,) -> (N,) long"""
    cdf = weights.to(u.dtype).cumsum(0)
    return torch.searchsorted(cdf, u, right=True).clamp(max=len(weights) - 1)


def sample_mixture(nets: Sequence[Callable[[Tensor], Tensor]], weights: Tensor, z: Tensor, u: Tensor) -> Tensor:
    """Mixture samples: row i from component pick(weights, u)[i] on latent z[i]; each component runs on all of z
    (its batch statistics those of the full batch, as a single G's) and keeps its rows. (N, nz), (N,) -> (N, ...)"""
    which = pick(weights, u)
    out: Tensor | None = None
    for k, net in enumerate(nets):
        rows = (which == k).nonzero().squeeze(1)
        if len(rows) == 0:
            continue
        x = net(z)
        out = torch.empty_like(x) if out is None else out
        out[rows] = x[rows]
    assert out is not None, "a mixture draw needs at least one sample"
    return out
