"""The MMD-GAN authors' training loop, ported to PyTorch 2, as a reference for the `mmd_gan` preset.

Source: github.com/OctoberChang/MMD-GAN (BSD 3-Clause, Copyright (c) 2023, Wei-Cheng Chang): `mmd_gan.py` (the
loop: D steps with the encoder clamped to [-0.01, 0.01] before each, 100 of them before each of the first 25 G
steps and every 500th, errD = sqrt(MMD^2) + 16 rank - 8 AE_x - 8 AE_y maximised, errG = sqrt(MMD^2) + 16 rank
minimised, RMSprop 5e-5), `base_module.py` (Encoder, Decoder, weights_init), `mmd.py` (mix_rbf_mmd2, biased) and
`run_exp.sh` (MNIST: 32 px, nz 10, batch 64). Li et al. 2017, *MMD GAN: Towards deeper understanding of moment
matching network*. What changed in the port: Variable/volatile become requires_grad/no_grad, `backward(mone)`
becomes `(-errD).backward()`, the data are gan-study's MNIST files resized once (bilinear, antialiased, as the
platform resizes them) instead of torchvision's per-batch PIL resize, and one CPU thread.

Every `--every` G steps it prints one JSON line: the code's own log values (MMD2_D, hinge, L2_AE_X/Y, mean f_X)
and gan-study's mode metrics of 1,000 samples (the MNIST 32 px mode classifier and its gate, as a trial scores
them), so the authors' loop and the platform's preset can be read side by side (docs/protocols.md, "MMD-GAN").

    python benchmarks/reference/mmd_gan_code.py --g-steps 2048 --every 256
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ISIZE, NC, NZ, BATCH, LR = 32, 1, 10, 64, 5e-5
SIGMAS, LAMBDA_AE, LAMBDA_RG, CLIP = (1.0, 2.0, 4.0, 8.0, 16.0), 8.0, 16.0, 0.01


def encoder(isize: int, nc: int, k: int, ndf: int) -> nn.Sequential:
    """base_module.Encoder: (B, nc, isize, isize) -> (B, k, 1, 1)."""
    mods: list[nn.Module] = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    csize, c = isize // 2, ndf
    while csize > 4:
        mods += [nn.Conv2d(c, c * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c * 2), nn.LeakyReLU(0.2, True)]
        c, csize = c * 2, csize // 2
    return nn.Sequential(*mods, nn.Conv2d(c, k, 4, 1, 0, bias=False))


def decoder(isize: int, nc: int, k: int, ngf: int) -> nn.Sequential:
    """base_module.Decoder: (B, k, 1, 1) -> (B, nc, isize, isize) in [-1, 1]."""
    c, t = ngf // 2, 4
    while t != isize:
        c, t = c * 2, t * 2
    mods: list[nn.Module] = [nn.ConvTranspose2d(k, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
    csize = 4
    while csize < isize // 2:
        mods += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
        c, csize = c // 2, csize * 2
    return nn.Sequential(*mods, nn.ConvTranspose2d(c, nc, 4, 2, 1, bias=False), nn.Tanh())


def weights_init(m: nn.Module) -> None:
    """base_module.weights_init: conv weights N(0, 0.02), BatchNorm weights N(1, 0.02) and biases 0."""
    name = m.__class__.__name__
    if "Conv" in name:
        m.weight.data.normal_(0.0, 0.02)
    elif "BatchNorm" in name:
        m.weight.data.normal_(1.0, 0.02)
        m.bias.data.fill_(0)


def mix_rbf_mmd2(x: Tensor, y: Tensor, sigmas: Sequence[float]) -> Tensor:
    """mmd.mix_rbf_mmd2, biased: x, y (m, k)."""
    m, z = len(x), torch.cat((x, y))
    zzt = z @ z.t()
    diag = torch.diag(zzt).unsqueeze(1).expand_as(zzt)
    exponent = diag - 2 * zzt + diag.t()
    k = sum(torch.exp(-exponent / (2 * s**2)) for s in sigmas)
    assert isinstance(k, Tensor)
    return k[:m, :m].sum() / (m * m) + k[m:, m:].sum() / (m * m) - 2.0 * k[:m, m:].sum() / (m * m)


def one_sided(x: Tensor) -> Tensor:
    """mmd_gan.ONE_SIDED: -mean(relu(-x))."""
    return -F.relu(-x).mean()


def mnist_32() -> Tensor:
    """The 60,000 training digits at 32 px in [-1, 1], (60000, 1, 32, 32)."""
    from torchvision.datasets import MNIST

    from trainables.data.files import data_root

    raw = MNIST(str(data_root()), train=True, download=False).data.float().div(255).unsqueeze(1)
    x = F.interpolate(raw, size=(ISIZE, ISIZE), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(0, 1) * 2 - 1


class Scorer:
    """gan-study's mode metrics of G's samples (the classifier, its gate and the 0.9 confidence a trial uses)."""

    def __init__(self, n: int = 1000):
        from trainables.metrics.classifier import get_classifier

        self.clf, _ = get_classifier("mnist", ISIZE)
        self.z = torch.randn(n, NZ, generator=torch.Generator().manual_seed(0))

    def __call__(self, g: nn.Module) -> dict[str, float]:
        from trainables.data.images import class_argmax
        from trainables.evaluate import generate
        from trainables.metrics.modes import mode_metrics

        x = generate(nn.Sequential(nn.Unflatten(1, (NZ, 1, 1)), g), self.z)
        modes, hq, _ = class_argmax(x, None, self.clf, 0.9)  # the trial's rule (its Dataset argument is unused)
        m = mode_metrics(modes, hq, 10, count_all=True)
        keys = ("modes_covered", "hq_fraction", "kl_to_uniform", "modes_robust", "modes_with_mass")
        return {k: round(m[f"eval/{k}"], 3) for k in keys}


def d_step(nets: dict[str, nn.Module], opt: torch.optim.Optimizer, x: Tensor) -> dict[str, Tensor]:
    """One D iteration of mmd_gan.py: clamp the encoder, then ascend errD."""
    enc, dec, g = nets["enc"], nets["dec"], nets["g"]
    for p in enc.parameters():
        p.data.clamp_(-CLIP, CLIP)
    opt.zero_grad()
    f_x = enc(x)
    d_x, f_x = dec(f_x), f_x.view(len(x), -1)
    with torch.no_grad():
        y = g(torch.randn(len(x), NZ, 1, 1))
    f_y = enc(y)
    d_y, f_y = dec(f_y), f_y.view(len(x), -1)
    mmd2 = F.relu(mix_rbf_mmd2(f_x, f_y, SIGMAS))
    hinge = one_sided(f_x.mean(0) - f_y.mean(0))
    ae_x = (x.view(len(x), -1) - d_x.view(len(x), -1)).pow(2).mean()
    ae_y = (y.view(len(x), -1) - d_y.view(len(x), -1)).pow(2).mean()
    err_d = torch.sqrt(mmd2) + LAMBDA_RG * hinge - LAMBDA_AE * ae_x - LAMBDA_AE * ae_y
    (-err_d).backward()
    opt.step()
    logs = {"MMD2_D": mmd2, "hinge": hinge, "L2_AE_X": ae_x, "L2_AE_Y": ae_y, "f_X": f_x.mean()}
    return {k: v.detach() for k, v in logs.items()}


def g_step(nets: dict[str, nn.Module], opt: torch.optim.Optimizer, x: Tensor) -> None:
    """One G iteration of mmd_gan.py: descend errG through the frozen encoder."""
    enc, g = nets["enc"], nets["g"]
    opt.zero_grad()
    f_x = enc(x).view(len(x), -1)
    f_y = enc(g(torch.randn(len(x), NZ, 1, 1))).view(len(x), -1)
    err_g = torch.sqrt(F.relu(mix_rbf_mmd2(f_x, f_y, SIGMAS))) + LAMBDA_RG * one_sided(f_x.mean(0) - f_y.mean(0))
    err_g.backward()
    opt.step()


def train(g_steps: int, every: int, seed: int) -> None:
    """mmd_gan.py's loop over epochs of D batches, a G step after each group of D steps; a JSON line per `every`."""
    torch.manual_seed(seed)
    x_all = mnist_32()
    nets = {"g": decoder(ISIZE, NC, NZ, 64), "enc": encoder(ISIZE, NC, NZ, 64), "dec": decoder(ISIZE, NC, NZ, 64)}
    for net in nets.values():
        net.apply(weights_init)
    opt_g = torch.optim.RMSprop(nets["g"].parameters(), lr=LR)
    opt_d = torch.optim.RMSprop([*nets["enc"].parameters(), *nets["dec"].parameters()], lr=LR)
    score, done, t0 = Scorer(), 0, time.time()
    while done < g_steps:
        perm, i = torch.randperm(len(x_all)), 0
        n_batches = -(-len(x_all) // BATCH)
        while i < n_batches and done < g_steps:
            nets["enc"].requires_grad_(True), nets["dec"].requires_grad_(True)
            for _ in range(100 if done < 25 or done % 500 == 0 else 5):
                if i == n_batches:
                    break
                logs = d_step(nets, opt_d, x_all[perm[i * BATCH:(i + 1) * BATCH]])
                i += 1
            nets["enc"].requires_grad_(False), nets["dec"].requires_grad_(False)
            if i == n_batches:
                break
            g_step(nets, opt_g, x_all[perm[i * BATCH:(i + 1) * BATCH]])
            i, done = i + 1, done + 1
            if done % every == 0:
                line = {"g_steps": done, "seconds": round(time.time() - t0)}
                line |= {k: round(float(v), 5) for k, v in logs.items()} | score(nets["g"])
                print(json.dumps(line), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--g-steps", type=int, default=2048)
    ap.add_argument("--every", type=int, default=256, help="score G every this many G steps")
    ap.add_argument("--seed", type=int, default=1126, help="mmd_gan.py's manual_seed")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    train(args.g_steps, args.every, args.seed)


if __name__ == "__main__":
    main()
