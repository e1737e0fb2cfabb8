"""The training step never reads a tensor on the host: per-step statistics and the divergence check stay on the
device and are read a constant number of times an epoch, whatever the number of steps."""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import trainables
from trainables.run import GANRun

READS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__")
MLP = {"name": "mlp", "g_hidden": 16, "g_layers": 2, "d_hidden": 16, "d_layers": 2, "maxout": 2}


PROJECT = str(Path(trainables.__file__).resolve().parent)


@contextlib.contextmanager
def counting_host_reads() -> Iterator[list[str]]:
    """Every call, from the project's own code, of a Tensor method that moves a value to the host.

    PyTorch's own non-fused Adam reads its step counter, a CPU tensor on every device (not a device sync), and
    is left out by counting only calls made from trainables/."""
    calls: list[str] = []
    saved = {name: getattr(torch.Tensor, name) for name in READS}

    def wrap(name, fn):
        def counted(self, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(PROJECT):
                calls.append(f"{name} {Path(caller).name}:{sys._getframe(1).f_lineno}")
            return fn(self, *args, **kwargs)
        return counted

    for name, fn in saved.items():
        setattr(torch.Tensor, name, wrap(name, fn))
    try:
        yield calls
    finally:
        for name, fn in saved.items():
            setattr(torch.Tensor, name, fn)


def _reads(remedies: dict, steps: int) -> list[str]:
    run = GANRun({"data": {"name": "ring8", "n_points": 2000}, "model": MLP, "remedies": remedies,
                  "train": {"epochs": 1, "batch_size": 20, "steps_per_epoch": steps},
                  "eval": {"n_samples": 200, "metrics": []}})
    with counting_host_reads() as calls:
        run.train_epoch()
    return calls


@pytest.mark.parametrize("remedies", [
    {}, {"label_flip": {"rate": 0.1}, "instance_noise": {}},
    {"packing": {"m": 2}, "gradient_penalty": {}, "minibatch_stddev": {}},
    {"r1": {}, "n_critic": {"n": 2}}, {"weight_clipping": {}}, {"spectral_norm": {}, "two_timescale": {}},
    {"feature_matching": {}, "minibatch_discrimination": {}}, {"veegan": {}},
], ids=["plain", "labels+noise", "pack+gp+stddev", "r1+ncritic", "clip", "sn+ttur", "fm+mbd", "veegan"])
def test_host_reads_per_epoch_do_not_grow_with_steps(remedies):
    few, many = _reads(remedies, 8), _reads(remedies, 40)
    assert len(few) == len(many) <= 4, (few, many)  # the divergence check and the epoch's means


def test_divergence_is_found_at_the_epoch_check_with_its_step():
    run = GANRun({"data": {"name": "ring8", "n_points": 400}, "model": MLP,
                  "train": {"epochs": 1, "batch_size": 20, "steps_per_epoch": 6}, "eval": {"n_samples": 200}})
    run.x[:] = float("nan")
    result = run.step()
    assert result["diverged"] == 1 and "D loss is nan at D step 0" in result["error"]
