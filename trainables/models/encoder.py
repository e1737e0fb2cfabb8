"""G's side with an encoder (ALI/BiGAN, VEEGAN's reconstructor, MDGAN): G and E in one module, so G's optimiser,
gradient norm and checkpoint cover both; its forward is G's."""
from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from trainables.models.mlp import _ACTS


class WithEncoder(nn.Module):
    """G (z -> x) and an encoder E (x -> code); forward(z) = G(z). state_dict keys: g.*, encoder.*"""

    def __init__(self, g: nn.Module, encoder: nn.Module):
        super().__init__()
        self.g = g
        self.encoder = encoder

    def forward(self, z: Tensor) -> Tensor:
        return self.g(z)


def encoder_mlp(d_in: int, d_out: int, hidden: int, layers: int, act: str,
                init: Callable[[nn.Module], None]) -> nn.Sequential:
    """E: flatten, `layers` x (Linear(hidden) + act), Linear(d_out). (B, *shape) -> (B, d_out)"""
    mods: list[nn.Module] = [nn.Flatten()]
    d = d_in
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), _ACTS[act]()]
        d = hidden
    net = nn.Sequential(*mods, nn.Linear(d, d_out))
    init(net)
    return net


def encoder_of(g: nn.Module) -> nn.Module:
    """The encoder G's side carries (a remedy's wrap_g built it)."""
    if not isinstance(g, WithEncoder):
        raise TypeError(f"G has no encoder ({type(g).__name__}); a joint remedy's wrap_g builds one")
    return g.encoder
