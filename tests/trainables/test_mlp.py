"""The 2D MLP nets: the Unrolled GAN paper's (Metz et al. 2017, Appendix A) sizes, input scaling and init."""
from __future__ import annotations

import pytest
import torch

from trainables.models.mlp import mlp

PAPER = {"nz": 256, "g_hidden": 128, "g_layers": 2, "d_hidden": 128, "d_layers": 1, "maxout": 1, "act": "relu",
         "d_act": "relu", "bn": False, "init": "orthogonal08", "d_scale": 0.25}


def test_paper_nets_have_the_appendix_sizes():
    """G 256 -> 128 -> 128 -> 2, D's features 2 -> 128 (its linear logit is the head): weights and biases."""
    built = mlp((2,), **PAPER)
    assert sum(p.numel() for p in built.g.parameters()) == (256 * 128 + 128) + (128 * 128 + 128) + (128 * 2 + 2)
    assert sum(p.numel() for p in built.features.parameters()) == 2 * 128 + 128
    assert built.feat_dim == 128 and built.nz == 256


def test_d_scale_multiplies_d_input_first():
    """D with d_scale 0.25 on x equals the same weights with no scaling on x / 4."""
    torch.manual_seed(0)
    scaled = mlp((2,), **PAPER).features
    plain = mlp((2,), **{**PAPER, "d_scale": 1.0}).features
    with torch.no_grad():  # the scaling holds no parameter: the same weights in the same order
        for a, b in zip(plain.parameters(), scaled.parameters(), strict=True):
            a.copy_(b)
    x = 3.0 * torch.randn(64, 2)
    torch.testing.assert_close(scaled(x), plain(x / 4), rtol=0, atol=0)
    assert not torch.allclose(scaled(x), plain(x))


@pytest.mark.parametrize("init, gain", [("orthogonal08", 0.8), ("orthogonal", 1.4), ("orthogonal_tf1", 1.4)])
def test_orthogonal_inits_give_scaled_semi_orthogonal_weights_and_zero_biases(init, gain):
    """W W^T = gain^2 I over the shorter side of every linear weight, every bias 0."""
    built = mlp((2,), **{**PAPER, "init": init})  # the builder applies the init
    for module in (built.g, built.features):
        for m in module.modules():
            if isinstance(m, torch.nn.Linear):
                w = m.weight if m.weight.shape[0] <= m.weight.shape[1] else m.weight.T
                torch.testing.assert_close(w @ w.T, gain**2 * torch.eye(w.shape[0]), rtol=0, atol=1e-5)
                assert not m.bias.any()


def test_tf1_orthogonal_init_has_a_near_constant_direction_that_a_haar_draw_lacks():
    """TF 1.0's orthogonal_initializer takes singular vectors of a U[0, 1) matrix: the top one is close to the
    constant vector (|cos| > 0.85), where a Haar draw's columns are all near-orthogonal to it (|cos| < 0.5)."""
    torch.manual_seed(0)
    for init, near_constant in (("orthogonal_tf1", True), ("orthogonal", False)):
        g = mlp((2,), **{**PAPER, "init": init}).g
        for m in g.modules():
            if isinstance(m, torch.nn.Linear):
                kernel = m.weight.T  # TF's (in, out)
                short = kernel if kernel.shape[0] > kernel.shape[1] else kernel.T  # orthonormal columns
                ones = torch.ones(short.shape[0]) / short.shape[0] ** 0.5
                cos = (ones @ short / short.norm(dim=0)).abs().max().item()
                assert (cos > 0.85) is near_constant and (cos < 0.5) is not near_constant, (init, cos)


def test_every_init_zeroes_the_biases_it_finds_and_leaves_bias_free_layers_so():
    import torch
    from torch import nn

    from trainables.models import INITS

    for name, init in INITS.items():
        net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3, bias=False))
        with torch.no_grad():
            net[0].bias.fill_(1.0)
        before = net[2].weight.clone()
        init(net)
        assert net[2].bias is None and not torch.equal(net[2].weight, before), name
        assert torch.count_nonzero(net[0].bias) == 0, name
