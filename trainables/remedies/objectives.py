"""Remedies that replace G's objective: feature matching."""
from __future__ import annotations

import torch
from torch import Tensor

from trainables.hooks import DFn, Logs, NoParams, Remedy, StepContext, d_view


def _feature_matching(ctx: StepContext, p: NoParams, real: Tensor, fake: Tensor, d_fn: DFn) -> tuple[Tensor, Logs]:
    """G loss ||E f(x) - E f(G(z))||_2^2 over D's features, the layer before the output (Salimans et al. 2016)."""
    with torch.no_grad():
        f_real = ctx.d.features(d_view(ctx, real)).mean(dim=0)
    f_fake = ctx.d.features(d_view(ctx, fake)).mean(dim=0)
    loss = (f_real - f_fake).pow(2).sum()
    return loss, {"remedy/feature_matching/distance": loss.detach()}


REMEDIES: dict[str, Remedy] = {
    "feature_matching": Remedy(
        doc="G matches the mean of D's last features on real data (Salimans et al. 2016), the features before "
            "D's head (with minibatch_discrimination, before the MBD layer); not with unrolled: it ignores D's "
            "output, so a look-ahead critic would be computed and never used; not with veegan or bigan (joint D)",
        g_loss=_feature_matching, conflicts=("unrolled", "veegan", "bigan")),
}
