"""The Unrolled GAN ring's GAN (k = 0) written out in plain PyTorch, with no platform code: a check that what the
platform's specs show at k = 0 comes from the protocol, not from the platform.

`python benchmarks/calibration/unrolled_bare.py --setup paper` follows the paper's Appendix A (Metz et al. 2017;
the spec ring8_unrolled_paper.yaml), `--setup notebook` the authors' notebook (poolio/unrolled_gan,
`Unrolled GAN demo.ipynb`; ring8_unrolled.yaml, simultaneous updates). Every 2,500 steps it prints how many of
the samples sit within 3 std of a mode and where the samples are (the nearest centre of each, counted).
"""
from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

SETUPS = {  # radius, std, act, gain, G lr, D lr, D layers, D input scale, simultaneous
    "paper": (2.0, 0.02, nn.ReLU, 0.8, 1e-4, 1e-4, 1, 0.25, False),
    "notebook": (1.0, 0.01, nn.Tanh, 1.4, 1e-3, 1e-4, 2, 1.0, True),
}


def _net(sizes: list[int], act: type[nn.Module], gain: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers += [nn.Linear(a, b)] + ([act()] if i < len(sizes) - 2 else [])
    for m in layers:
        if isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight, gain)
            nn.init.zeros_(m.bias)
    return nn.Sequential(*layers)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--setup", choices=SETUPS, default="paper")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=25_000, help="one D or one G update each (the paper's steps)")
    args = p.parse_args()
    radius, std, act, gain, lr_g, lr_d, d_layers, scale, simultaneous = SETUPS[args.setup]
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    g = _net([256, 128, 128, 2], act, gain)
    d = _net([2] + [128] * d_layers + [1], act, gain)
    opt_g = torch.optim.Adam(g.parameters(), lr_g, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr_d, betas=(0.5, 0.999))
    angles = torch.arange(8) * 2 * math.pi / 8
    centres = radius * torch.stack([angles.cos(), angles.sin()], 1)

    def disc(x: torch.Tensor) -> torch.Tensor:
        return d(scale * x)

    def d_loss(fake: torch.Tensor) -> torch.Tensor:
        real = centres[torch.randint(8, (512,))] + std * torch.randn(512, 2)
        r, f = disc(real), disc(fake)
        return F.binary_cross_entropy_with_logits(r, torch.ones_like(r)) + F.softplus(f).mean()

    t0, per_step = time.time(), 1 if simultaneous else 2  # simultaneous: one step updates both
    for i in range(0, args.steps + 1, per_step):
        if i % 2500 < per_step:
            with torch.no_grad():
                x = g(torch.randn(2500, 256))
                dist, near = torch.cdist(x, centres).min(1)
            print(f"step {i:6d}  within 3 std of a mode {float((dist <= 3 * std).float().mean()):.2f}  "
                  f"nearest centre counts {torch.bincount(near, minlength=8).tolist()}  {time.time() - t0:.0f}s")
        fake = g(torch.randn(512, 256))
        loss = d_loss(fake.detach() if not simultaneous else fake)
        if simultaneous:  # both gradients from the same parameters, as one sess.run of both train ops
            grads_g = torch.autograd.grad(-loss, list(g.parameters()), retain_graph=True)
            for q, gr in zip(g.parameters(), grads_g):
                q.grad = gr
        opt_d.zero_grad()
        loss.backward(inputs=list(d.parameters()))
        opt_d.step()
        if not simultaneous:
            opt_g.zero_grad()
            (-F.softplus(disc(g(torch.randn(512, 256)))).mean()).backward(inputs=list(g.parameters()))
        opt_g.step()


if __name__ == "__main__":
    main()
