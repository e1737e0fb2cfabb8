"""How many of the project's functions one spec value passes through, from the YAML file to the training step.

Usage: python benchmarks/value_path.py
Writes a spec whose `remedies.label_flip.rate` is a distinctive float, then follows it by identity: a profiler
records every project function (trainables/, study/) whose arguments hold that very object (directly or inside
dicts, lists, tuples and dataclass/pydantic records, 4 levels deep), through spec loading and validation, the
study's per-trial build (study.space.TrialBuilder, as a Tune worker runs it), GANRun construction and one
training step. Prints the functions and files in call order; writes benchmarks/out/value_path.md.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from _out import publish  # benchmarks/ is on sys.path when a benchmark runs as a script

ROOT = Path(__file__).resolve().parents[1]
RATE = 0.0731  # distinctive: the float object YAML makes for it is followed by identity


def holds(obj: Any, target: Any, depth: int = 4) -> bool:
    if obj is target:
        return True
    if depth == 0:
        return False
    if isinstance(obj, dict):
        return any(holds(v, target, depth - 1) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(holds(v, target, depth - 1) for v in obj)
    fields = getattr(obj, "__dict__", None)
    return isinstance(fields, dict) and any(holds(v, target, depth - 1) for v in fields.values())


def main() -> None:
    from study.space import TrialBuilder
    from study.spec import load_raw, load_spec
    from trainables.run import GANRun
    from trainables.step import train_step

    spec_yaml = {"name": "path", "fixed": {"data": {"name": "ring8", "n_points": 400},
                                            "model": {"name": "mlp", "g_hidden": 8, "g_layers": 1, "d_hidden": 8,
                                                      "d_layers": 1, "maxout": 2},
                                            "remedies": {"label_flip": {"rate": RATE}},
                                            "train": {"epochs": 1, "batch_size": 20},
                                            "eval": {"n_samples": 200, "metrics": []}}}
    seen: list[str] = []
    passed: set[str] = set()  # functions that get it through an argument other than `self`
    target: list[Any] = []

    def profile(frame, event, arg):
        if event != "call" or not target:
            return
        path = frame.f_code.co_filename
        if not path.startswith(str(ROOT)) or "/benchmarks/" in path or "/.venv/" in path:
            return
        args = frame.f_code.co_varnames[: frame.f_code.co_argcount + frame.f_code.co_kwonlyargcount]
        held = [a for a in args if a in frame.f_locals and holds(frame.f_locals[a], target[0])]
        if held:
            name = f"{Path(path).relative_to(ROOT)}:{frame.f_code.co_qualname}"
            if name not in seen:
                seen.append(name)
            if any(a not in ("self", "cls") for a in held):
                passed.add(name)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_text(yaml.safe_dump(spec_yaml))
        target.append(load_raw(path)["fixed"]["remedies"]["label_flip"]["rate"])  # the float YAML makes
        # YAML makes a new float each load: follow the one the run reads, from the loader on
        import study.spec as spec_module

        original = spec_module.load_raw

        def load_raw_following(p):
            raw = original(p)
            target[0] = raw["fixed"]["remedies"]["label_flip"]["rate"]
            return raw

        spec_module.load_raw = load_raw_following
        sys.setprofile(profile)
        try:
            spec = load_spec(path)
            cfg = TrialBuilder(spec)({"__trial_index__": 0})
            run = GANRun(cfg)
            train_step(run.ctx, lambda: run.x[:20])
        finally:
            sys.setprofile(None)
            spec_module.load_raw = original
    files = sorted({s.split(":")[0] for s in seen})
    publish([f"`remedies.label_flip.rate` reaches {len(seen)} project functions in {len(files)} files "
             f"(YAML -> spec -> TrialBuilder -> GANRun -> train_step); {len(passed)} of them get it through an "
             "argument other than `self` (marked *), the rest are methods of a record that holds it:", ""]
            + [f"{i + 1}. {s}{' *' if s in passed else ''}" for i, s in enumerate(seen)], "value_path.md")


if __name__ == "__main__":
    main()
