"""The GPU step table of docs/gpu_costs.md: measured platform G steps on a card (benchmarks/throughput.py --device
cuda writes it), and the aten-op count that turns a step measured on this machine into a GPU estimate."""
from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils._python_dispatch import TorchDispatchMode

GPU_TABLE = Path(__file__).resolve().parents[1] / "docs" / "gpu_costs.md"
HEADER = "| card | net | precision | ms a G step | aten ops a G step | commit | date |"


@dataclass(frozen=True)
class GpuStep:
    """One measured platform G step of a net on a card; ops are counted on the CPU (`count_ops`)."""

    card: str
    net: str  # model.name: mlp, dcgan, ...
    precision: str
    ms: float
    ops: float
    commit: str
    date: str

    @property
    def us_per_op(self) -> float:
        return self.ms * 1e3 / self.ops

    def row(self) -> str:
        return (f"| {self.card} | {self.net} | {self.precision} | {self.ms:.1f} | {self.ops:.0f} | {self.commit} | "
                f"{self.date} |")


class _Dispatches(TorchDispatchMode):
    """Counts the aten ops dispatched (each one a kernel launch or a view): what bounds small nets on a GPU."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def count_ops(fn: Callable[[], Any]) -> int:
    """The aten ops that `fn` dispatches."""
    with _Dispatches() as mode:
        fn()
    return mode.count


def read(path: Path = GPU_TABLE) -> list[GpuStep]:
    """The table's rows; none when the file or its table is absent. A malformed row is refused, naming it."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    if HEADER not in lines:
        return []
    rows = []
    for line in itertools.takewhile(lambda s: s.startswith("|"), lines[lines.index(HEADER) + 2:]):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        try:
            card, net, precision, ms, ops, commit, date = cells
            rows.append(GpuStep(card, net, precision, float(ms), float(ops), commit, date))
        except ValueError as err:
            raise ValueError(f"{path}: malformed GPU step row {line!r} ({err})") from None
    return rows


def record(new: list[GpuStep], path: Path = GPU_TABLE) -> None:
    """Put `new` in the table, replacing the rows of the same card, net and precision; written whole or not at all."""
    lines = path.read_text().splitlines()
    start = lines.index(HEADER) + 2
    end = start + sum(1 for _ in itertools.takewhile(lambda s: s.startswith("|"), lines[start:]))
    keys = {(s.card, s.net, s.precision) for s in new}
    kept = [s for s in read(path) if (s.card, s.net, s.precision) not in keys]
    rows = [s.row() for s in sorted(kept + new, key=lambda s: (s.card, s.net, s.precision))]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines[:start] + rows + lines[end:]) + "\n")
    os.replace(tmp, path)


def per_op(rows: list[GpuStep], net: str, precision: str) -> dict[str, GpuStep]:
    """Per card, the row whose microseconds an op price a G step of `net`: its own row where measured, else the
    card's dearest op (an upper figure for a lower-bound model)."""
    out: dict[str, GpuStep] = {}
    for card in dict.fromkeys(s.card for s in rows):
        mine = [s for s in rows if s.card == card]
        same = [s for s in mine if s.net == net and s.precision == precision]
        out[card] = same[0] if same else max(mine, key=lambda s: s.us_per_op)
    return out
