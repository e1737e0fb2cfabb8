"""Variants are named presets: model + loss + remedies + optimiser defaults (PROTOCOLS.md)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Variant:
    """A preset merged under the trial config; `doc` cites the paper."""

    doc: str
    config: Mapping[str, Any]


VARIANTS: dict[str, Variant] = {
    "gan": Variant("Goodfellow et al. 2014, minimax loss", {"loss": "minimax"}),
    "ns_gan": Variant("Goodfellow et al. 2014, non-saturating loss", {"loss": "nonsaturating"}),
}
