"""The port of the MMD-GAN authors' loop (benchmarks/reference/mmd_gan_code.py) computes what the `mmd_gan` preset
computes: the same estimator and rank term, and nets of the same shapes, so the two can be compared run for run."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from trainables.models import MODELS
from trainables.remedies.kernels import MMD_GAN_SIGMAS, mix_rbf_mmd2, one_sided

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "reference" / "mmd_gan_code.py"
_spec = importlib.util.spec_from_file_location("mmd_gan_code", PATH)
assert _spec is not None and _spec.loader is not None
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)


def _count(*nets: torch.nn.Module) -> list[tuple[int, ...]]:
    return sorted(tuple(p.shape) for net in nets for p in net.parameters())


def test_the_port_and_the_platform_compute_the_same_mmd_and_rank_term():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 10, generator=gen), torch.randn(64, 10, generator=gen) + 0.3
    assert ref.SIGMAS == MMD_GAN_SIGMAS
    assert torch.allclose(ref.mix_rbf_mmd2(x, y, ref.SIGMAS), mix_rbf_mmd2(x, y, MMD_GAN_SIGMAS), rtol=1e-4)
    assert float(mix_rbf_mmd2(x, y, MMD_GAN_SIGMAS)) > 1e-3  # a shifted sample: the comparison is not of zeros
    assert torch.allclose(ref.one_sided(x.mean(0) - y.mean(0)), one_sided(x, y))


def test_the_port_has_the_nets_of_the_preset_at_the_codes_mnist_size():
    """32 px, nz 10, 64 wide (run_exp.sh): G and D's encoder have the same parameter shapes as gan-study's DCGAN
    with the k-unit encoding (the code's last 4 x 4 conv is the encoding's Linear over the flattened 4 x 4 map)."""
    built = MODELS["dcgan"]((1, 32, 32), nz=10, ngf=64, ndf=64)
    encoding = torch.nn.Linear(built.feat_dim, 10, bias=False)
    code_g, code_enc = ref.decoder(32, 1, 10, 64), ref.encoder(32, 1, 10, 64)
    last = code_enc[-1].weight  # (10, 256, 4, 4): the encoding's (10, 4096) over the flattened map
    code_shapes = sorted([*(tuple(p.shape) for p in code_enc[:-1].parameters()), tuple(last.flatten(1).shape)])
    assert code_shapes == _count(built.features, encoding)
    assert _count(code_g) == _count(built.g)
    assert code_enc(torch.zeros(2, 1, 32, 32)).shape == (2, 10, 1, 1)
