"""Adding a metric or a remedy is one function plus one registry entry: nothing else in the code changes."""
from __future__ import annotations

import pytest
import torch

from trainables.config import resolve
from trainables.hooks import Remedy, params
from trainables.metrics import registry
from trainables.remedies import REMEDIES
from trainables.run import GANRun

MLP = {"name": "mlp", "g_hidden": 16, "g_layers": 2, "d_hidden": 16, "d_layers": 2, "maxout": 2}
RUN = {"data": {"name": "ring8", "n_points": 400}, "model": MLP, "train": {"epochs": 1, "batch_size": 50},
       "eval": {"n_samples": 200}}


@pytest.fixture
def mean_norm():
    def fit_mean_norm(ref: registry.Reference) -> registry.Scorer:
        """Mean feature norm of G's samples (a made-up metric for this test)."""
        return lambda e: {"eval/mean_norm": float(e.features.norm(dim=1).mean())}

    registry.METRICS["mean_norm"] = registry.Metric(fit_mean_norm.__doc__ or "", ("eval/mean_norm",), fit_mean_norm)
    yield
    del registry.METRICS["mean_norm"]


def test_a_new_metric_is_one_function_and_one_registry_line(mean_norm):
    cfg = {**RUN, "eval": {**RUN["eval"], "metrics": ["mean_norm"]},
           "collapse": {"metric": "eval/mean_norm", "direction": "above", "threshold": 10.0}}
    m = GANRun(cfg).step()
    assert m["eval/mean_norm"] > 0  # reported, and accepted as the collapse metric


@params
class Scale:
    factor: float = 0.5


def _scaled_targets(ctx, p: Scale, rt, ft):
    """Real targets times `factor` (a made-up remedy for this test)."""
    return rt * p.factor, ft, {"remedy/scaled/factor": torch.tensor(p.factor)}


def test_a_new_remedy_is_one_hook_and_one_registry_entry():
    REMEDIES["scaled"] = Remedy(doc="scaled targets (test only)", params=Scale, targets=_scaled_targets,
                                needs_targets=True)
    try:
        assert resolve({"remedies": {"scaled": {"factor": 0.7}}}).remedies["scaled"].factor == 0.7
        with pytest.raises(ValueError, match="unknown parameter 'facter'"):
            resolve({"remedies": {"scaled": {"facter": 0.7}}})
        logs = GANRun({**RUN, "remedies": {"scaled": {"factor": 0.7}}}).train_epoch()
        assert logs["remedy/scaled/factor"] == pytest.approx(0.7)
    finally:
        del REMEDIES["scaled"]
