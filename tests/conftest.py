"""Shared fixtures: one local Ray session for the whole test run (real Ray, 2 CPUs, no dashboard)."""
from __future__ import annotations

import os
import sys
import tempfile

import pytest

os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "1")
# the records of what each test study wrote (study/seal.py) stay out of the user's ~/.local/state
os.environ.setdefault("GAN_STUDY_TRUST_DIR", tempfile.mkdtemp(prefix="gan-study-trusted-"))


@pytest.fixture(scope="session")
def ray_local():
    """`ray.init(address="local")` keeps tests off any running cluster (docs/stack.md)."""
    import ray

    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False,
             object_store_memory=100 * 1024**2, ignore_reinit_error=True)
    yield ray
    ray.shutdown()


sys.path.insert(0, os.path.dirname(__file__))  # tests_support.py: helpers shared by the end-to-end tests
