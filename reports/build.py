"""Build the report notebooks from their jupytext sources, or check that the committed ones match.

    python reports/build.py            # write reports/<name>.ipynb from reports/<name>.py (`make notebooks`)
    python reports/build.py --check    # exit 1 naming each stale notebook (`make notebooks-check`)

The sources are jupytext percent files (`# %%` code cells, `# %% [markdown]` cells, the cell tagged
`parameters` holding EXPERIMENT and TRACKING_URI). A built notebook has no outputs, stable cell ids and one
kernelspec, so building twice gives the same bytes and a diff shows only source changes.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

HERE = Path(__file__).resolve().parent
SOURCES = ("label_noise.py", "remedies.py", "stacked_mnist.py")
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def build(source: Path) -> str:
    """The notebook text of a jupytext percent source: no outputs, ids cell-0, cell-1, ..., fixed metadata."""
    nb = jupytext.read(source, fmt="py:percent")
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
        cell.metadata = {k: v for k, v in cell.metadata.items() if k == "tags"}
        if cell.cell_type == "code":
            cell["outputs"], cell["execution_count"] = [], None
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python reports/build.py", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; fail when a notebook is stale")
    args = parser.parse_args(argv)
    stale: list[Path] = []
    for name in SOURCES:
        source, target = HERE / name, (HERE / name).with_suffix(".ipynb")
        text = build(source)
        if args.check:
            if not target.is_file() or target.read_text() != text:
                stale.append(target.relative_to(HERE.parent))
        elif not target.is_file() or target.read_text() != text:
            target.write_text(text)
            print(f"wrote {target.relative_to(HERE.parent)}")
    for target in stale:
        print(f"{target} is stale: it differs from what {target.with_suffix('.py')} builds; run `make notebooks` "
              "and commit the result", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
