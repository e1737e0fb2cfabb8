"""End to end: the grid25 PacGAN quick study (GAN vs PacGAN2/3/4) as shipped, its published ordering, then the
reproduction report beside PacGAN's Table 1 (2D-grid)."""
from __future__ import annotations

import re

import pytest
from tests_support import quick_spec, reproduce_report, run_arms

VARIANTS = ["gan", "pacgan2", "pacgan3", "pacgan4"]
SEEDS = 4


@pytest.mark.slow
@pytest.mark.verify
def test_grid25_pacgan_quick_study_orders_the_arms_as_published(ray_local, tmp_path):
    """The quick form's calibrated claim (docs/protocols.md, "Calibration"): the GAN collapses or loses modes in at
    least half its seeds, and each packed arm ends with more modes and a lower reverse KL on average (PacGAN Table
    1, 2D-grid: 17.3 modes for GAN, 23.8 for PacGAN2, 24.6 for PacGAN3), collapses in no more seeds and survives
    longer on average. The ordering against the GAN, not the numbers, and not the order of the packed arms among
    themselves (measured on the AMD EPYC: modes 10.0 / 17.5 / 20.5, collapses 4 / 4 / 0 of 4, mean epochs
    survived 57 / 110 / 200; on the earlier Xeon PacGAN2 collapsed in 2 of 4: float32 rounding differs).
    PacGAN4's KL is not asserted: its seed 3 never learns the grid (KL ln 25), which puts its mean KL below the
    GAN's on the AMD EPYC (1.21 against 1.52, calibration) and above it on the Xeon (1.25 against 0.96)."""
    spec = quick_spec("grid25_pacgan.yaml", "grid25_e2e")
    assert spec["search"] == {"variant": {"grid": VARIANTS}} and spec["seeds"] == SEEDS
    uri, trials, collapsed, modes, kl = run_arms(tmp_path, spec, VARIANTS)
    assert set(trials["params.loss"]) == {"nonsaturating"} and set(trials["params.data.name"]) == {"grid25"}
    seen = f"collapsed {collapsed}, mean final modes {modes}, mean reverse KL {kl}"
    gan = trials[trials["params.variant"] == "gan"]
    lost = (gan["tags.gan_study.outcome"] == "collapsed") | (gan["metrics.eval/modes_covered"] < 25)
    assert lost.sum() >= SEEDS / 2, seen
    survived = {v: float(trials[trials["params.variant"] == v]["metrics.epochs_survived"].mean()) for v in VARIANTS}
    seen += f", mean epochs survived {survived}"
    for packed in VARIANTS[1:]:
        assert modes[packed] > modes["gan"] and (packed == "pacgan4" or kl[packed] < kl["gan"]), seen
        assert collapsed[packed] <= collapsed["gan"] and survived[packed] > survived["gan"], seen
    print(seen)

    text = reproduce_report("grid25_pacgan", "grid25_e2e", uri)
    assert text.startswith("PacGAN (Lin et al. 2018, NeurIPS), Table 1, 2D-grid")
    rows = [line for line in text.splitlines() if line.split()[:1] in (["GAN"], ["PacGAN2"], ["PacGAN3"], ["PacGAN4"])]
    assert len(rows) == 4 and "17.3 ± 0.8" in rows[0] and "23.8 ± 0.7" in rows[1] and "24.6 ± 0.4" in rows[2]
    assert "24.8 ± 0.2" in rows[3]
    assert all(re.search(rf"\b{SEEDS}\b", r) and len(re.findall(r"\b(ok|low|high)\b", r)) == 3 for r in rows)
