"""Seeds as a batch dimension: S seeds in one seed-batched model give what S runs of their own give.

Tolerance: every per-epoch metric of each seed within 1e-4 relative (1e-6 absolute) of the same seed's own run,
and every verdict (state, outcome, collapse epoch) equal. The only difference is floating-point summation order
(one batched matmul instead of S), which Adam's normalisation can amplify over long runs in GAN training,
as it would between two BLAS builds; the horizons here are those the tests can pin.
"""
from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from tests.trainables.test_host_sync import counting_host_reads
from trainables.models.seeded import SeedBatchError, stack_seeds, unstack_seed
from trainables.run import GANRun
from trainables.seeds import SeedGroup, check_seed_batch, seed_configs

MLP = {"name": "mlp", "g_hidden": 32, "g_layers": 2, "d_hidden": 32, "d_layers": 2, "maxout": 2}
RING = {"data": {"name": "ring8", "n_points": 1000}, "model": MLP, "remedies": {"label_flip": {"rate": 0.1}},
        "train": {"epochs": 3, "batch_size": 100, "lr": 1e-3}, "eval": {"n_samples": 400, "probe_points": 64,
                                                                         "ndb_bins": 10}}
SEEDS = [1, 2, 3]
TIMING = ("time/train_s", "time/eval_s", "compute/seconds")


def _close(a: dict, b: dict, rel: float = 1e-4) -> list[str]:
    """The keys whose values differ beyond the stated tolerance (NaN equals NaN)."""
    bad = [k for k in set(a) ^ set(b)]
    for k in set(a) & set(b):
        x, y = a[k], b[k]
        if k in TIMING:
            continue
        if isinstance(x, float) and math.isnan(x):
            ok = isinstance(y, float) and math.isnan(y)
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            ok = math.isclose(x, y, rel_tol=rel, abs_tol=1e-6)
        else:
            ok = x == y
        if not ok:
            bad.append(f"{k}: {x} vs {y}")
    return bad


def _alone(config: dict, seeds: list[int]) -> list[list[dict]]:
    out = []
    for cfg in seed_configs(config, seeds):
        run = GANRun(cfg)
        out.append([run.step() for _ in range(run.epochs)])
    return out


def _together(group: SeedGroup) -> list[list[dict]]:
    out: list[list[dict]] = [[] for _ in group.members]
    while not group.done:
        for i, result in enumerate(group.step()):
            if result is not None:
                out[i].append(result)
    return out


@pytest.mark.parametrize("remedies", [{"label_flip": {"rate": 0.1}},
                                      {"packing": {"m": 2}, "instance_noise": {"std": 0.1}, "label_smoothing": {}}],
                         ids=["flip", "pack+noise+smooth"])
def test_seeds_batched_give_the_metrics_of_seeds_run_alone(remedies):
    config = {**RING, "remedies": remedies}
    alone, together = _alone(config, SEEDS), _together(SeedGroup(seed_configs(config, SEEDS)))
    for seed, a, b in zip(SEEDS, alone, together, strict=True):
        assert len(a) == len(b) == 3
        for epoch, (x, y) in enumerate(zip(a, b), 1):
            assert not _close(x, y), (seed, epoch, _close(x, y))


def test_each_seed_draws_from_its_own_stream_as_its_own_run_would():
    configs = seed_configs(RING, SEEDS)
    group = SeedGroup(configs)
    z = group.ctx.z(4 * len(SEEDS))  # (S * 4, nz): seed after seed
    for i, cfg in enumerate(configs):
        assert torch.equal(z[4 * i : 4 * (i + 1)], GANRun(cfg).ctx.z(4))


def test_stacked_nets_are_the_nets_side_by_side():
    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2)) for _ in range(3)]
    stacked = stack_seeds(nets)
    x = torch.randn(3 * 7, 3)
    together = stacked(x)  # training mode: BatchNorm per seed, on that seed's 7 rows
    alone = torch.cat([net(x[7 * i : 7 * (i + 1)]) for i, net in enumerate(nets)])
    assert torch.allclose(together, alone, atol=1e-6)
    for i, net in enumerate(nets):  # running statistics updated per seed, as each net's own
        assert all(torch.allclose(v, net.state_dict()[k].to(v.dtype)) for k, v in unstack_seed(stacked, i).items())


def test_layers_that_cannot_be_batched_are_refused_by_name():
    with pytest.raises(SeedBatchError, match="Conv2d"):
        stack_seeds([nn.Sequential(nn.Conv2d(1, 2, 3)) for _ in range(2)])
    with pytest.raises(ValueError, match="remedy 'gradient_penalty'"):
        check_seed_batch(seed_configs({**RING, "remedies": {"gradient_penalty": {}}}, [0])[0], 2)
    with pytest.raises(ValueError, match="model 'dcgan'"):
        check_seed_batch(seed_configs({"data": {"name": "digits"}, "model": {"name": "dcgan"}}, [0])[0], 2)
    check_seed_batch(seed_configs({**RING, "remedies": {"gradient_penalty": {}}}, [0])[0], 1)  # one seed: any


def test_a_diverging_seed_ends_alone_and_leaves_the_others_untouched():
    config = {**RING, "train": {**RING["train"], "epochs": 2}}
    clean = _together(SeedGroup(seed_configs(config, SEEDS)))
    group = SeedGroup(seed_configs(config, SEEDS))
    with torch.no_grad():
        group.ctx.d.head.weight[1].fill_(float("nan"))  # seed 2's D only
    poisoned = _together(group)
    assert poisoned[1][0]["diverged"] == 1 and "D loss is nan at D step 0" in poisoned[1][0]["error"]
    assert len(poisoned[1]) == 1 and group.members[1].outcome == "diverged"
    for i in (0, 2):
        assert len(poisoned[i]) == 2 and all(not _close(x, y) for x, y in zip(clean[i], poisoned[i]))


def test_a_restored_group_continues_exactly():
    configs = seed_configs(RING, SEEDS)
    group = SeedGroup(configs)
    group.step()
    state = copy.deepcopy(group.state_dict())  # a checkpoint: torch.save copies the live tensors
    expected = group.step()
    restored = SeedGroup(configs)
    restored.load_state_dict(state)
    for x, y in zip(expected, restored.step(), strict=True):
        assert x is not None and y is not None and not _close(x, y, rel=0.0)


def test_a_group_reads_the_host_a_constant_number_of_times_an_epoch():
    def reads(steps: int) -> int:
        config = {**RING, "train": {**RING["train"], "steps_per_epoch": steps}}
        group = SeedGroup(seed_configs(config, SEEDS))
        with counting_host_reads() as calls:
            group.train_epoch()
            group.ctx.watch.found()
        return len(calls)

    assert reads(4) == reads(20) <= 4
