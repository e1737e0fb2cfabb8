"""Seeds as a batch dimension: S copies of one net as a single module whose rows are grouped by seed.

`stack_seeds([net_1, ..., net_S])` turns S nets of the same architecture into one module that takes the rows
of all seeds at once, seed after seed: (S * B, ...) -> (S * B, ...), where rows [s * B, (s + 1) * B) are seed s's
and only ever meet seed s's weights. Each parameter and buffer gains a leading seed dimension, so elementwise
optimisers (Adam, RMSprop, SGD) keep each seed's state apart, and a loss that is the sum of the seeds' own
losses gives every seed exactly its own gradient. `unstack_seed(stacked, s)` is seed s's state dict, for the
plain net the evaluation uses. Linear and BatchNorm1d layers are batched; parameter-free layers that act row
by row (activations, Flatten, Unflatten, Maxout's reshape) are kept; any other layer with parameters or
buffers is refused with its name (`SeedBatchError`).
"""
from __future__ import annotations

import copy
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SeedBatchError(ValueError):
    """A net holds a layer that cannot be batched over seeds."""


class SeedLinear(nn.Module):
    """S Linear layers: weight (S, out, in), bias (S, out); (S * B, in) -> (S * B, out) by one batched matmul."""

    def __init__(self, seeds: int, d_in: int, d_out: int, bias: bool = True):
        super().__init__()
        self.seeds = seeds
        self.weight = nn.Parameter(torch.empty(seeds, d_out, d_in))
        self.bias = nn.Parameter(torch.zeros(seeds, d_out)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        x3 = x.reshape(self.seeds, -1, x.shape[-1])  # (S, B, in)
        if self.bias is None:
            out = torch.bmm(x3, self.weight.transpose(1, 2))
        else:
            out = torch.baddbmm(self.bias.unsqueeze(1), x3, self.weight.transpose(1, 2))  # (S, B, out)
        return out.reshape(-1, out.shape[-1])


class SeedBatchNorm1d(nn.Module):
    """S BatchNorm1d layers, each normalising its own seed's rows with its own running statistics."""

    running_mean: Tensor  # (S, C)
    running_var: Tensor  # (S, C)
    num_batches_tracked: Tensor  # (S,)

    def __init__(self, seeds: int, features: int, eps: float, momentum: float | None, affine: bool):
        super().__init__()
        self.seeds, self.eps, self.momentum = seeds, eps, momentum
        self.weight = nn.Parameter(torch.ones(seeds, features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(seeds, features)) if affine else None
        self.register_buffer("running_mean", torch.zeros(seeds, features))
        self.register_buffer("running_var", torch.ones(seeds, features))
        self.register_buffer("num_batches_tracked", torch.zeros(seeds, dtype=torch.long))

    def forward(self, x: Tensor) -> Tensor:
        s, c = self.seeds, x.shape[-1]
        wide = x.reshape(s, -1, c).transpose(0, 1).reshape(-1, s * c)  # (B, S * C): one column per seed and feature
        if self.training:
            self.num_batches_tracked.add_(1)
        momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked[0])
        out = F.batch_norm(wide, self.running_mean.view(-1), self.running_var.view(-1),
                           None if self.weight is None else self.weight.view(-1),
                           None if self.bias is None else self.bias.view(-1), self.training, momentum, self.eps)
        return out.reshape(-1, s, c).transpose(0, 1).reshape(-1, c)


def _batched(layer: nn.Module, seeds: int) -> nn.Module | None:
    """The seed-batched counterpart of one layer with parameters, or None when it has none."""
    if isinstance(layer, nn.Linear):
        return SeedLinear(seeds, layer.in_features, layer.out_features, layer.bias is not None)
    if isinstance(layer, nn.BatchNorm1d) and layer.track_running_stats:
        return SeedBatchNorm1d(seeds, layer.num_features, layer.eps, layer.momentum, layer.affine)
    return None


def _own_state(module: nn.Module) -> list[str]:
    return [n for n, _ in module.named_parameters(recurse=False)] + [n for n, _ in module.named_buffers(recurse=False)]


def _swap_layers(module: nn.Module, seeds: int) -> None:
    """Replace, in place, every Linear/BatchNorm1d below `module` by its seed-batched counterpart."""
    for name, child in module.named_children():
        new = _batched(child, seeds)
        if new is not None:
            setattr(module, name, new)
        elif _own_state(child):
            raise SeedBatchError(f"layer {type(child).__name__} ({name}) cannot be batched over seeds: only "
                                 f"Linear and BatchNorm1d layers with parameters can")
        else:
            _swap_layers(child, seeds)


Net = TypeVar("Net", bound=nn.Module)


def stack_seeds(nets: list[Net]) -> Net:
    """One module holding S nets of one architecture, rows grouped by seed; its state is the nets' states stacked."""
    if not nets:
        raise ValueError("stack_seeds: no nets")
    stacked = copy.deepcopy(nets[0])
    if _own_state(stacked):
        raise SeedBatchError(f"{type(stacked).__name__} holds parameters itself and cannot be batched over seeds")
    _swap_layers(stacked, len(nets))
    states = [net.state_dict() for net in nets]
    stacked.load_state_dict({k: torch.stack([s[k] for s in states]) for k in states[0]})
    return stacked.to(next(iter(states[0].values())).device)


def unstack_seed(stacked: nn.Module, seed_index: int) -> dict[str, Tensor]:
    """Seed `seed_index`'s state dict (for the plain net it was stacked from), detached views of the stack."""
    return {k: v[seed_index] for k, v in stacked.state_dict().items()}
