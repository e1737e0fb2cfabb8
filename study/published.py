"""Published tables that the reproduction specs are compared with (`python -m study.reproduce SPEC`).

Numbers as printed in the papers' tables (mean ± standard error over trials where the paper gives one), read
from the authors' repositories (github.com/fjxmlzn/PacGAN: `synthetic_data_experiments/results/Table1.png`,
`stacked_MNIST_experiments/results/Table2.png`; github.com/akashgit/VEEGAN: `tab.png`, VEEGAN's Tables 1 and 2,
means over five runs, no spread published). Keyed by spec name, one or more tables a spec; a row is the value
of the spec's searched key (`variant`, `remedies.unrolled.k`) that reproduces it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """A published column and the platform metric it is compared with (at a trial's last epoch) x scale."""

    label: str
    metric: str
    scale: float = 1.0
    digits: int = 1


@dataclass(frozen=True)
class Published:
    """One published table: its citation, the searched key naming its rows, its columns and its cells."""

    cite: str
    key: str
    columns: tuple[Column, ...]
    rows: dict[str, tuple[str, tuple[tuple[float, float | None], ...]]]  # arm -> (row label, (mean, se) a column)
    trials: int = 10


_PACGAN_2D = "PacGAN (Lin et al. 2018, NeurIPS), Table 1"
_RING = (Column("modes (max 8)", "eval/modes_covered"), Column("high quality %", "eval/hq_fraction", 100.0),
         Column("reverse KL", "eval/kl_to_uniform", digits=2))
_GRID = (Column("modes (max 25)", "eval/modes_covered"),) + _RING[1:]
_STACKED = (Column("modes (max 1000)", "eval/modes_covered"), Column("KL", "eval/kl_to_uniform", digits=2))

_VEEGAN = "VEEGAN (Srivastava et al. 2017, NeurIPS)"
_RING_MODES_HQ = _RING[:2]

PUBLISHED: dict[str, tuple[Published, ...]] = {
    "ring8_pacgan": (Published(f"{_PACGAN_2D}, 2D-ring", "variant", _RING, {
        "gan": ("GAN", ((6.3, 0.5), (98.2, 0.2), (0.45, 0.09))),
        "pacgan2": ("PacGAN2", ((7.9, 0.1), (95.6, 2.0), (0.07, 0.03))),
        "pacgan3": ("PacGAN3", ((7.8, 0.1), (97.7, 0.3), (0.10, 0.02))),
        "pacgan4": ("PacGAN4", ((7.8, 0.1), (95.9, 1.4), (0.07, 0.02)))}),),
    "grid25_pacgan": (Published(f"{_PACGAN_2D}, 2D-grid", "variant", _GRID, {
        "gan": ("GAN", ((17.3, 0.8), (94.8, 0.7), (0.70, 0.07))),
        "pacgan2": ("PacGAN2", ((23.8, 0.7), (91.3, 0.8), (0.13, 0.04))),
        "pacgan3": ("PacGAN3", ((24.6, 0.4), (94.2, 0.4), (0.06, 0.02))),
        "pacgan4": ("PacGAN4", ((24.8, 0.2), (93.6, 0.6), (0.04, 0.01)))}),),
    "stacked_mnist": (Published("PacGAN (Lin et al. 2018, NeurIPS), Table 2, stacked MNIST", "variant", _STACKED, {
        "ns_gan": ("DCGAN (PacGAN's implementation)", ((78.9, 6.46), (4.50, 0.127))),
        "pacgan2": ("PacDCGAN2", ((1000.0, 0.0), (0.06, 0.003))),
        "pacgan3": ("PacDCGAN3", ((1000.0, 0.0), (0.06, 0.003))),
        "pacgan4": ("PacDCGAN4", ((1000.0, 0.0), (0.07, 0.005)))}),
        Published(f"{_VEEGAN}, Table 2, stacked MNIST", "variant", _STACKED, {
            "ns_gan": ("DCGAN (VEEGAN's)", ((99.0, None), (3.4, None)))}, trials=5)),
    "systems_2d": (Published(f"{_VEEGAN}, Table 1, 2D Ring", "variant", _RING_MODES_HQ, {
        "ns_gan": ("GAN", ((1.0, None), (99.3, None))),
        "ali": ("ALI", ((2.8, None), (0.13, None))),
        "unrolled5": ("Unrolled GAN", ((7.6, None), (35.6, None))),
        "veegan": ("VEEGAN", ((8.0, None), (52.9, None)))}, trials=5),),
    # VEEGAN's 2D ring: its GAN baseline and the Unrolled GAN with 5 unrolling steps ("as suggested in the
    # authors' reference implementation"), 2,500 samples, five runs; its own nets, not the notebook's
    "ring8_unrolled": (Published(f"{_VEEGAN}, Table 1, 2D Ring", "remedies.unrolled.k", _RING_MODES_HQ, {
        "0": ("GAN", ((1.0, None), (99.3, None))),
        "5": ("Unrolled GAN", ((7.6, None), (35.6, None)))}, trials=5),),
}
