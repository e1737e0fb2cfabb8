"""The study's console (study/console.py) and the names of trials and runs (trainables/naming.py)."""
from __future__ import annotations

import re
import time

import pandas as pd
import pytest
import yaml
from tests_support import run_study, tiny_spec

from study.console import (
    StudyConsole,
    TrialNamer,
    counts_line,
    finished_line,
    outcome_counts,
    state_name,
    table,
    trial_row,
)
from study.space import TrialBuilder
from study.spec import load_spec
from study.tracking import arm_metrics, description
from trainables import names
from trainables.naming import compact, run_name, seeds_text, short_keys, trial_label


class FakeTrial:
    def __init__(self, name: str, status: str = "RUNNING", **result):
        self.name, self.status, self.last_result, self.config = name, status, result, {}

    def __str__(self) -> str:
        return self.name


def test_values_are_compact_and_keys_short():
    assert [compact(v) for v in ("0.0", "0.05", "0.0012523", "1e+30", "8", "[0.5, 0.9]", "none")] == [
        "0", "0.05", "0.00125", "1e+30", "8", "[0.5, 0.9]", "none"]
    assert compact("0.0012523", 4) == "0.001252" and compact("x" * 60).endswith("...") and len(compact("x" * 60)) == 40
    assert short_keys(["remedies.label_flip.rate", "train.lr", "remedies"]) == {
        "remedies.label_flip.rate": "flip", "train.lr": "lr", "remedies": "remedies"}
    # two parameters of one remedy keep their names; a short name two keys share stays the full key
    assert short_keys(["remedies.unrolled.steps", "remedies.unrolled.lr", "train.lr"]) == {
        "remedies.unrolled.steps": "unrolled.steps", "remedies.unrolled.lr": "unrolled.lr", "train.lr": "lr"}
    assert short_keys(["train.lr", "model.lr"]) == {"train.lr": "train.lr", "model.lr": "model.lr"}


def test_trial_and_run_names_carry_the_configuration_and_seed():
    values = {"remedies.label_flip.rate": "0.05", "train.lr": "0.00125234"}
    assert trial_label(values, 1) == "flip=0.05 lr=0.00125 s1"
    assert run_name(values, 1) == "remedies.label_flip.rate=0.05 train.lr=0.001252 seed=1"
    assert trial_label({}, 3) == "seed 3" and run_name({}, 3) == "seed=3"
    many = {f"remedies.{r}.weight": "0.5" for r in ("gradient_penalty", "r1", "instance_noise", "feature_matching",
                                                    "label_smoothing")}
    assert len(run_name(many, 0)) <= 120 and run_name(many, 0).startswith("penalty=0.5 r1=0.5")


def test_trial_namer_decodes_the_sampled_indices(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(tiny_spec("names")))
    namer = TrialNamer(TrialBuilder(load_spec(path)))
    trial = FakeTrial("?")
    trial.config = {"remedies.label_flip.rate": 1, "train.lr": 0.0031415, "__trial_index__": 1}  # grid index 1
    assert namer(trial) == "flip=0.2 lr=0.00314 s1"


def test_rows_and_lines_show_epoch_quality_spread_and_state():
    running = FakeTrial("flip=0.05 s1", epoch=3, state=1, **{names.HQ_FRACTION: 0.91234, names.SPREAD: 0.75})
    assert trial_row(running, epochs=12) == ["flip=0.05 s1", "3/12", "0.912", "0.750", "diverse"]
    assert state_name({"state": 2}) == "collapsed" and state_name({}) == "-"
    collapsed = FakeTrial("flip=0.2 s0", "TERMINATED", epoch=7, collapse_epoch=5, outcome="collapsed",
                          **{names.HQ_FRACTION: 0.9, names.SPREAD: 0.25})
    assert trial_row(collapsed)[1:] == ["7", "0.900", "0.250", "collapsed"]
    assert finished_line(collapsed) == "flip=0.2 s0: collapsed at epoch 5 (quality 0.900, spread 0.250)"
    stopped = FakeTrial("flip=0 s0", "TERMINATED", epoch=2, outcome="running", collapsed=0)
    failed = FakeTrial("flip=0 s1", "ERROR")
    assert finished_line(stopped).startswith("flip=0 s0: stopped at epoch 2") and trial_row(failed)[-1] == "failed"
    line = counts_line([running, collapsed, stopped, failed, FakeTrial("x", "PENDING")], 65.0, total=12)
    assert line == "[1min 05s] 3 of 12 trials done (1 collapsed, 1 failed, 1 stopped), 1 running, 1 pending"
    text = table([trial_row(running, 12), trial_row(collapsed)])
    assert text.splitlines()[0].split() == ["trial", "epoch", "quality", "spread", "state"]
    assert len(text.splitlines()) == 3 and not re.search("[╭│+|]", text)


def test_a_seed_batched_trial_is_named_by_its_seeds_and_counted_by_seed():
    assert trial_label({"remedies.label_flip.rate": "0.1"}, [0, 1, 2, 3]) == "flip=0.1 s0-3"
    assert trial_label({}, [2, 7]) == "seed 2,7" and seeds_text(5) == "5"
    group = FakeTrial("flip=0.1 s0-3", "TERMINATED", epoch=10, outcome="1 censored, 3 never_diverse",
                      **{names.HQ_FRACTION: 0.33, names.SPREAD: 0.75})
    assert outcome_counts(group.last_result["outcome"]) == {"censored": 1, "never_diverse": 3}
    assert finished_line(group) == ("flip=0.1 s0-3: 1 censored, 3 never_diverse after 10 epochs (mean quality "
                                    "0.330, mean spread 0.750)")
    alone = FakeTrial("flip=0 s4", "TERMINATED", epoch=10, outcome="collapsed")
    assert counts_line([group, alone], 5.0, total=2) == "[5s] 2 of 2 trials done (1 censored, 1 collapsed, " \
                                                        "3 never_diverse)"


def test_console_prints_a_table_per_interval_and_one_final_table(capsys):
    console = StudyConsole(epochs=4, interval_s=0.05)
    console.setup(stop=None, num_samples=2, total_num_samples=2)  # as Tune's callback list calls it
    a = FakeTrial("flip=0 s0", epoch=1, state=0, **{names.HQ_FRACTION: 0.1, names.SPREAD: 0.2})
    b = FakeTrial("flip=0 s1", "PENDING")
    console.on_trial_result(0, [a, b], a, a.last_result)
    console.on_step_end(0, [a, b])
    assert capsys.readouterr().out == ""  # not before the interval
    time.sleep(0.06)
    console.on_step_end(1, [a, b])
    console.on_step_end(2, [a, b])  # nothing new: no second table
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "[0s] 0 of 2 trials done, 1 running, 1 pending" and len(out) == 3
    assert out[2].split() == ["flip=0", "s0", "1/4", "0.100", "0.200", "not_learned"]
    a.status, a.last_result = "TERMINATED", {**a.last_result, "epoch": 4, "outcome": "censored"}
    console.on_trial_complete(0, [a, b], a)
    assert capsys.readouterr().out == "flip=0 s0: censored (no collapse in 4 epochs) (quality 0.100, spread 0.200)\n"
    console.on_experiment_end([b, a])
    console.final([b, a])  # the final table once
    final = capsys.readouterr().out.splitlines()
    assert final[1].split()[-1] == "outcome" and [r.split()[1] for r in final[2:]] == ["s0", "s1"] and len(final) == 4


def test_trials_a_ctrl_c_stopped_are_interrupted_not_done(capsys):
    console = StudyConsole(interval_s=1e9)
    console.setup(total_num_samples=3)
    a, b = FakeTrial("flip=0 s0"), FakeTrial("flip=0 s1")
    restored = FakeTrial("flip=0.2 s0", "TERMINATED", epoch=3, outcome="censored")  # ended in an earlier session
    console.on_step_begin(0, [a, b, restored])
    a.status, a.last_result = "TERMINATED", {"epoch": 3, "outcome": "censored"}
    console.on_trial_complete(0, [a, b], a)
    b.status, b.last_result = "TERMINATED", {"epoch": 1, "outcome": "running"}  # what Tune leaves after Ctrl-C
    console.on_experiment_end([a, b, restored])
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("[0s] 2 of 3 trials done (2 censored), 1 interrupted")
    assert [r.split()[-1] for r in out[3:]] == ["censored", "interrupted", "censored"]


def test_parent_description_and_arm_metrics():
    table_df = pd.DataFrame({"remedies.label_flip.rate": [0.0, 0.2], "seeds": [2, 2], "collapsed": [1, 0],
                             "median_collapse_epoch": ["3", "3+"], "collapse_incidence": ["0.50", "n/a"]})
    table_df.attrs["search_keys"] = ["remedies.label_flip.rate"]
    metrics = {m.key: m.value for m in arm_metrics(table_df)}
    assert metrics["arm/flip 0/collapsed"] == 1 and metrics["arm/flip 0.2/seeds"] == 2
    assert metrics["arm/flip 0/median_collapse_epoch"] == 3 and "arm/flip 0.2/median_collapse_epoch" not in metrics
    assert "arm/flip 0.2/collapse_incidence" not in metrics  # text cells are left out
    assert "```\nsome table\n```" in description("some table")


@pytest.mark.slow
def test_console_of_a_12_trial_study_is_short_and_ends_with_the_summary(ray_local, tmp_path, capfd):
    rates = [0.0, 0.05, 0.1, 0.15, 0.2, 0.3]
    spec = tiny_spec("tiny_console", search={"remedies.label_flip.rate": {"grid": rates},
                                             "train.lr": {"loguniform": [1e-4, 1e-2]}}, trials=6, seeds=2)
    spec["fixed"]["train"]["epochs"] = 2
    code, _ = run_study(tmp_path, spec)
    time.sleep(3)  # Ray forwards worker output asynchronously: let late lines arrive
    captured = capfd.readouterr()
    assert code == 0
    lines = captured.out.splitlines() + captured.err.splitlines()
    assert len(lines) < 100, "\n".join(lines)  # Tune's own reporter printed 801 lines for this study
    text = captured.out + captured.err
    assert text.count("╭") == 1  # Tune's experiment header (search algorithm, scheduler, trials), no other box
    for noise in ("__trial_index__", "GANTrainable_", "TensorBoard", "reuse_actors", "Checkpoint successfully",
                  "Trial status:", " result ", "Wrote the latest version", "ExperimentalWarning"):
        assert noise not in text, noise
    finished = re.findall(r"^(flip=(\S+) lr=\S+ s(\d)): ", captured.out, re.M)
    assert len(finished) == 12 and {(compact(str(r)), s) for r in rates for s in "01"} == {f[1:] for f in finished}
    out = captured.out.rstrip("\n").splitlines()
    start = next(i for i, line in enumerate(out) if line.startswith("Study summary"))
    assert len(out) - start == 1 + 1 + len(rates) + 2  # title, header, one row per configuration, 2 closing lines
    assert out[-2].startswith("12 trials, 0 failed") and out[-1].startswith("Open the UI: mlflow ui")
