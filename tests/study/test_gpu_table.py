"""study.gpu_table and the dry run's GPU line: the measured GPU step table and the launch-bound price of a step."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from study import gpu_table
from study.cost import ArmCost, gpu_lines
from study.gpu_table import GpuStep

H200 = "NVIDIA H200"


def _table(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "gpu_costs.md"
    path.write_text("# t\n\nprose\n\n" + "\n".join([gpu_table.HEADER, "|---|---|---|---:|---:|---|---|", *rows])
                    + "\n\nafter the table\n")
    return path


def test_the_shipped_table_parses_and_its_two_nets_agree_on_the_time_an_op():
    rows = gpu_table.read()
    assert {(r.card, r.net, r.precision) for r in rows} >= {(H200, "mlp", "fp32"), (H200, "dcgan", "fp32")}
    us = sorted(r.us_per_op for r in rows if r.card == H200 and r.precision == "fp32")
    assert us[0] > 10 and us[-1] / us[0] < 1.15  # the launch-bound model's premise (docs/gpu_costs.md)


def test_count_ops_counts_each_dispatched_op():
    x = torch.ones(3)
    base = gpu_table.count_ops(lambda: None)
    assert base == 0 and gpu_table.count_ops(lambda: [x + 1 for _ in range(5)]) == 5


def test_record_replaces_the_rows_of_its_card_net_and_precision_and_keeps_the_rest(tmp_path):
    path = _table(tmp_path, [GpuStep(H200, "mlp", "fp32", 13.5, 663, "aaaaaaa", "2026-12-04").row(),
                             GpuStep(H200, "dcgan", "fp32", 10.6, 571, "aaaaaaa", "2026-12-04").row()])
    gpu_table.record([GpuStep(H200, "mlp", "fp32", 12.0, 600, "bbbbbbb", "2026-12-07"),
                      GpuStep("NVIDIA H100", "mlp", "bf16", 9.0, 700, "bbbbbbb", "2026-12-07")], path)
    rows = gpu_table.read(path)
    assert [(r.card, r.net, r.precision, r.ms, r.commit) for r in rows] == [
        ("NVIDIA H100", "mlp", "bf16", 9.0, "bbbbbbb"), (H200, "dcgan", "fp32", 10.6, "aaaaaaa"),
        (H200, "mlp", "fp32", 12.0, "bbbbbbb")]
    text = path.read_text()
    assert text.startswith("# t\n\nprose") and text.endswith("\n\nafter the table\n") and "13.5" not in text


def test_a_malformed_row_is_refused_naming_it(tmp_path):
    path = _table(tmp_path, [f"| {H200} | mlp | fp32 | fast | 663 | aaaaaaa | 2026-12-04 |"])
    with pytest.raises(ValueError, match="malformed GPU step row .*fast"):
        gpu_table.read(path)
    assert gpu_table.read(tmp_path / "absent.md") == []


def test_an_arm_is_priced_by_its_own_net_or_else_the_cards_dearest_op():
    rows = [GpuStep(H200, "mlp", "fp32", 20.0, 1000, "c", "d"), GpuStep(H200, "dcgan", "fp32", 10.0, 1000, "c", "d")]
    assert gpu_table.per_op(rows, "dcgan", "fp32")[H200].us_per_op == 10.0
    assert gpu_table.per_op(rows, "dcgan", "bf16")[H200].us_per_op == 20.0  # no bf16 row: the dearest op
    assert gpu_table.per_op(rows, "bigan_mlp", "fp32")[H200].us_per_op == 20.0


def test_gpu_line_is_trials_x_epochs_x_steps_x_ops_x_time_an_op():
    rows = [GpuStep(H200, "mlp", "fp32", 10.0, 500, "c", "2026-12-04")]  # 20 us an op
    costs = [ArmCost("a", 10, 400, 1000, 0.01, 1.0, ops=500, net="mlp"), ArmCost("b", 10, 4, 100, note="not measured")]
    (line,) = gpu_lines(costs, rows)
    # 10 trials x 400 epochs x 1,000 G steps x 500 ops x 20 us = 40,000 s
    assert line.startswith("GPU: about 11.1 h of training steps (the 1 measured arms) on one NVIDIA H200")
    assert "500 aten ops a G step x 20.0 us an op, measured 2026-12-04" in line
    assert gpu_lines(costs, []) == ["GPU: no measured GPU step yet (docs/gpu_costs.md)"]
    assert gpu_lines(costs[1:], rows) == []
