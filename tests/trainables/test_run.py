"""GANRun as plain PyTorch: reproducibility, exact resume from a checkpoint, divergence, label flipping."""
from __future__ import annotations

import pytest
import torch

from trainables.run import GANRun

TINY = {
    "seed": 3,
    "data": {"name": "ring8", "n_points": 800},
    "model": {"name": "mlp", "g_hidden": 32, "g_layers": 2, "d_hidden": 32, "d_layers": 2, "maxout": 2},
    "remedies": {"label_flip": {"rate": 0.1}},
    "train": {"epochs": 4, "batch_size": 100, "lr": 1e-3},
    "eval": {"n_samples": 500},
}


def _metrics(run: GANRun, epochs: int) -> list[dict]:
    out = []
    for _ in range(epochs):
        m = run.step()
        out.append({k: "nan" if v != v else v for k, v in m.items()  # NaN (nothing to measure) equals itself here
                    if not k.startswith("time/") and k != "compute/seconds" and k != "objective"})
    return out


def test_same_config_and_seed_give_same_metrics():
    assert _metrics(GANRun(TINY), 2) == _metrics(GANRun(TINY), 2)


def test_other_seed_gives_other_metrics():
    assert _metrics(GANRun(TINY), 1) != _metrics(GANRun({**TINY, "seed": 4}), 1)


def test_resume_from_state_dict_continues_exactly():
    straight = _metrics(GANRun(TINY), 4)
    first = GANRun(TINY)
    _metrics(first, 2)
    state = first.state_dict()
    torch.manual_seed(12345)  # the resumed process starts from another global RNG state
    second = GANRun(TINY)
    second.load_state_dict(state)
    assert _metrics(second, 2) == straight[2:]


def test_nan_loss_ends_the_run_as_diverged():
    run = GANRun(TINY)
    run.x[:] = float("nan")
    result = run.step()
    assert result["diverged"] == 1 and run.outcome == "diverged" and run.done
    assert "loss is nan" in result["error"]


def test_epoch_reports_collapse_fields_and_logs():
    run = GANRun({**TINY, "train": {**TINY["train"], "epochs": 1}})
    m = run.step()
    for key in ("eval/diversity", "eval/modes_covered", "eval/hq_fraction", "eval/kl_to_uniform", "loss/d",
                "loss/g", "d/real", "d/fake", "grad/d", "grad/g", "epochs_survived", "collapsed",
                "compute/g_steps", "remedy/label_flip/fraction"):
        assert key in m, key
    assert m["compute/g_steps"] == 8  # 800 points / batch 100
    assert 0.05 < m["remedy/label_flip/fraction"] < 0.15
    assert run.done and run.outcome in ("censored", "never_diverse", "collapsed")


@pytest.mark.parametrize("size", [8, 16, 28, 32, 64])
def test_dcgan_shapes(size):
    from trainables.config import resolve
    from trainables.step import build_context

    cfg = resolve({"model": {"name": "dcgan", "ngf": 8, "ndf": 8, "nz": 16}})
    ctx = build_context(cfg, (1, size, size), torch.Generator().manual_seed(0), torch.device("cpu"))
    fake = ctx.g(ctx.z(4))
    assert fake.shape == (4, 1, size, size)
    assert ctx.d(fake).shape == (4,)


def test_dcgan_64_matches_the_seed_architecture():
    from trainables.models.dcgan import dcgan

    built = dcgan((1, 64, 64))
    convs = [(m.in_channels, m.out_channels) for m in built.g.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert convs == [(100, 512), (512, 256), (256, 128), (128, 64), (64, 1)]
    dconvs = [(m.in_channels, m.out_channels) for m in built.features.modules() if isinstance(m, torch.nn.Conv2d)]
    assert dconvs == [(1, 64), (64, 128), (128, 256), (256, 512)] and built.feat_dim == 512 * 4 * 4


def test_g_slope_one_is_the_seed_codes_linear_generator():
    """rohitpatwa/gans-mode-collapse src/model.py: nn.LeakyReLU(True) has slope 1, so G in eval mode (BatchNorm's
    running statistics) is affine before its tanh: atanh(G(z)) of a midpoint is the midpoint of atanh(G(z))."""
    from trainables.models.dcgan import dcgan

    torch.manual_seed(0)
    z = torch.randn(2, 16)
    mid = z.mean(0, keepdim=True)
    for slope, linear in ((1.0, True), (0.0, False)):
        g = dcgan((1, 28, 28), nz=16, ngf=8, ndf=8, g_slope=slope).g.eval().double()
        with torch.no_grad():
            pre = torch.atanh(g(torch.cat([z, mid]).double()).clamp(-1 + 1e-12, 1 - 1e-12))
        gap = (pre[2] - pre[:2].mean(0)).abs().max().item()
        assert (gap < 1e-8) is linear, (slope, gap)
    assert not any(isinstance(m, torch.nn.LeakyReLU) for m in dcgan((1, 28, 28), ngf=8, ndf=8).g.modules())
    with pytest.raises(ValueError, match="model.g_slope: must lie in"):
        dcgan((1, 28, 28), g_slope=1.5)


def test_dcgan_bn_false_drops_gs_batchnorm_so_a_sample_ignores_its_batch():
    """Radford et al. (2016), Sec. 3: BatchNorm in G. Without it (`bn: false`) G in train mode maps each z alone,
    its hidden convs carry biases, and D keeps its BatchNorm; with it a sample depends on its batch-mates."""
    from trainables.models.dcgan import dcgan

    torch.manual_seed(0)
    z = torch.randn(8, 16)
    for bn in (False, True):
        built = dcgan((1, 28, 28), nz=16, ngf=8, ndf=8, bn=bn)
        g = built.g.train()
        with torch.no_grad():
            gap = (g(z)[:4] - g(z[:4])).abs().max().item()
        assert (gap < 1e-6) is not bn, (bn, gap)
        has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in g.modules())
        biased = [m.bias is not None for m in g.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
        assert has_bn is bn and biased == [not bn, not bn, False]
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in built.features.modules())


def test_a_collapse_stays_the_outcome_when_the_run_diverges_later():
    """Competing events: a confirmed collapse is kept; the later divergence is recorded beside it."""
    cfg = {**TINY, "train": {**TINY["train"], "epochs": 5},
           "collapse": {"metric": "compute/g_steps", "threshold": 10, "direction": "above", "patience": 1}}
    run = GANRun(cfg)
    first, second = run.step(), run.step()  # 8 G steps (diverse), then 16 (collapsed at epoch 2)
    assert first["collapsed"] == 0 and second["collapsed"] == 1 and second["collapse_epoch"] == 2
    assert second["collapse_g_step"] == 16
    run.x[:] = float("nan")
    third = run.step()
    assert third["diverged"] == 1 and third["diverge_epoch"] == 3 and third["collapse_epoch"] == 2
    assert run.outcome == "collapsed" and run.done
