"""The throughput benchmark's quick form runs on the CPU and prints every section (benchmarks/throughput.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.verify  # 3.6 minutes in CI (2026-12-04): make verify runs it
def test_the_quick_throughput_benchmark_prints_each_section(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_", "GAN_STUDY_"))}
    env.update(GAN_STUDY_HOME=str(tmp_path / "home"), GAN_STUDY_DATA=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    out = subprocess.run([sys.executable, "benchmarks/throughput.py", "--device", "cpu", "--quick"], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    text = out.stdout
    for section in ("(a) platform step vs bare loop", "(b) ring8 seed-steps/s", "(c) trials through Ray Tune"):
        assert section in text, text
    rows = [line for line in text.splitlines() if line.startswith("| ring8 MLP | fp32")]
    ratio = float(rows[-1].split("|")[6])
    assert 0.3 < ratio < 3.0  # a real measurement, whatever the machine's load
    seeds = [line.split("|") for line in text.splitlines() if line.startswith("| 10 |")]
    assert seeds and float(seeds[-1][3].replace(",", "")) > 0  # seed-batched seed-steps/s at S = 10
    assert "mean concurrency" in text
