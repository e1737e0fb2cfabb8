"""The remedy catalogue: every remedy beyond the label remedies, by short name (DESIGN.md, PROTOCOLS.md)."""
from __future__ import annotations

from trainables.remedies import Remedy, architecture, inputs, objectives, penalties, schedule, unrolled

REMEDIES: dict[str, Remedy] = {
    **objectives.REMEDIES,  # feature_matching
    **architecture.REMEDIES,  # spectral_norm, minibatch_discrimination, minibatch_stddev
    **inputs.REMEDIES,  # packing, instance_noise
    **penalties.REMEDIES,  # gradient_penalty, r1, weight_clipping
    **unrolled.REMEDIES,  # unrolled
    **schedule.REMEDIES,  # two_timescale, n_critic
}
