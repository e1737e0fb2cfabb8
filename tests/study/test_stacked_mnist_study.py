"""End to end: the stacked MNIST quick study (1,000 modes), shrunk further, then reports/stacked_mnist.ipynb."""
from __future__ import annotations

import re

import pytest
from tests_support import REPO, child_runs, execute_notebook, mnist_or_skip, run_study

from study.spec import load_raw
from trainables.config import deep_merge


@pytest.mark.slow
def test_stacked_mnist_quick_study_and_report(ray_local, tmp_path):
    mnist_or_skip()
    raw = load_raw(REPO / "search_spaces" / "stacked_mnist.yaml")
    assert raw["fixed"]["data"] == {"name": "stacked_mnist", "stacked_n": 60000}
    assert raw["fixed"]["eval"]["n_samples"] == 26000
    assert raw["search"] == {"variant": {"grid": ["ns_gan", "pacgan2", "pacgan3", "pacgan4"]}}
    spec = deep_merge(raw, raw.pop("quick"))  # the spec's own quick block, then smaller still
    variants = spec["search"]["variant"]["grid"]
    spec = deep_merge(spec, {"name": "stacked_e2e", "seeds": 2, "tracking": {"experiment": "stacked_e2e"},
                             "checkpoint": {"every": 2, "keep": 1},
                             "fixed": {"data": {"stacked_n": 1024}, "train": {"epochs": 2},
                                       "eval": {"n_samples": 500, "grid_every": 2, "grid_size": 16,
                                                "probe_points": 64, "metrics": ["prdc", "probes"]},
                                       # 500 samples cannot support a spread verdict over 1,000 modes
                                       "collapse": {"metric": "eval/coverage"}}})
    code, uri = run_study(tmp_path, spec)
    assert code == 0

    _, trials = child_runs(uri, "stacked_e2e")
    assert len(trials) == 2 * len(variants) and (trials["status"] == "FINISHED").all()
    assert sorted(trials["params.variant"]) == sorted(variants * 2)
    assert set(trials["params.data.name"]) == {"stacked_mnist"}

    text = execute_notebook(uri, "stacked_e2e", "stacked_mnist.ipynb")
    table = text.split("per trial: final modes covered (of 1000) and KL to uniform", 1)[1].split("\n\n")[0]
    header, *rows = table.strip().splitlines()
    assert header.split()[:4] == ["variant", "seed", "outcome", "modes_covered"]
    assert len(rows) == 2 * len(variants)
    assert sorted(row.split()[0] for row in rows) == sorted(variants * 2)
    for row in rows:
        modes, kl = re.search(r"\b(\d+) / 1000\s+(\d+\.\d{3})\b", row).groups()
        assert 0 <= int(modes) <= 1000 and 0.0 <= float(kl) <= 6.908 + 1e-3  # KL <= ln 1000
    assert "per configuration: modes covered and KL to uniform" in text
