"""Shared by the benchmarks: print a markdown table and write it to benchmarks/out/<name>."""
from __future__ import annotations

from pathlib import Path


def publish(lines: list[str], name: str) -> None:
    """Print the table and keep it in benchmarks/out/ (the README quotes these files)."""
    text = "\n".join(lines)
    print(text)
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / name).write_text(text + "\n")
