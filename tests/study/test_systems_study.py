"""End to end: the 2D systems comparison (search_spaces/systems_2d.yaml), its quick form shrunk to one seed and
100 G steps a trial: every system runs through Tune and MLflow with its own mechanism visible in its metrics, and
the reproduction report lays VEEGAN's Table 1 beside it; then the whole quick form (make verify)."""
from __future__ import annotations

import contextlib
import io

import mlflow
import pytest
from tests_support import REPO, child_runs, quick_spec, run_arms, run_study

from study.spec import load_raw
from trainables.config import deep_merge

SYSTEMS = ["ns_gan", "pacgan2", "unrolled5", "veegan", "ali", "bigan", "mdgan", "mdgan_md", "adagan", "gmmn_2d",
           "mmd_gan"]
QUICK = [*SYSTEMS[:8], "adagan_ns", *SYSTEMS[9:]]  # the quick form boosts its own GAN (systems_2d.yaml)
# a metric only that system's mechanism logs (trainables/remedies/*)
OWN_METRIC = {"unrolled5": "remedy/unrolled/lookahead_d_loss", "adagan_ns": "adagan/round",
              "veegan": "remedy/veegan/recon", "mdgan": "remedy/mdgan/geometric",
              "mdgan_md": "remedy/manifold_diffusion/d_manifold", "bigan": "remedy/bigan/encoder",
              "ali": "remedy/bigan/encoder", "gmmn_2d": "remedy/mmd/mmd2", "mmd_gan": "remedy/mmd_critic/mmd2_d"}


def _spec(**overrides) -> dict:
    raw = load_raw(REPO / "search_spaces" / "systems_2d.yaml")
    spec = deep_merge(raw, raw.pop("quick"))
    return deep_merge(spec, overrides)


@pytest.mark.slow
def test_every_system_runs_under_the_same_seed_and_verdict_and_meets_veegans_table(ray_local, tmp_path):
    spec = _spec(name="systems_e2e", seeds=1, tracking={"experiment": "systems_e2e"},
                 checkpoint={"every": 10, "keep": 1},
                 fixed={"data": {"n_points": 1000}, "train": {"epochs": 10, "steps_per_epoch": 10},
                        "eval": {"n_samples": 500, "grid_every": 10, "grid_size": 500}})
    assert spec["search"] == {"variant": {"grid": QUICK}}
    code, uri = run_study(tmp_path, spec)
    assert code == 0
    _, trials = child_runs(uri, "systems_e2e")
    assert sorted(trials["params.variant"]) == sorted(QUICK) and (trials["status"] == "FINISHED").all()
    assert set(trials["params.seed"]) == {"0"} and set(trials["params.data.name"]) == {"ring"}
    client = mlflow.MlflowClient(uri)
    for run_id in trials["run_id"]:  # every system evaluated at each of its 10 epochs under the same verdict
        assert [m.step for m in client.get_metric_history(run_id, "eval/spread")] == list(range(1, 11))
    by = trials.set_index("params.variant")
    for system, metric in OWN_METRIC.items():  # each mechanism visible in its own metric, in its arm only
        assert by[f"metrics.{metric}"].notna().loc[system] and by[f"metrics.{metric}"].isna().loc["ns_gan"], system
    assert by.loc["adagan_ns", "metrics.adagan/round"] == 2  # 2 rounds of 5 epochs each
    assert by.loc["adagan_ns", "params.train.optimizer"] == "adam"  # the spec's own GAN, boosted
    assert by.loc["pacgan2", "params.remedies.packing.m"] == "2"
    # MMD-GAN keeps its code's RMSprop 5e-5 under the spec's Adam rate; GMMN takes the spec's rate
    mmd_gan = by.loc["mmd_gan"]
    assert (mmd_gan["params.train.optimizer"], float(mmd_gan["params.train.lr_d"])) == ("rmsprop", 5e-5)
    assert float(by.loc["gmmn_2d", "params.train.lr"]) == 2e-3 and by.loc["gmmn_2d", "params.loss"] != "none"

    from study.reproduce import main as reproduce

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert reproduce([str(REPO / "search_spaces" / "systems_2d.yaml"), "--quick", "--experiment", "systems_e2e",
                          "--tracking-uri", uri]) == 0
    text = out.getvalue()
    assert text.startswith("VEEGAN (Srivastava et al. 2017, NeurIPS), Table 1, 2D Ring")
    for row in ("GAN", "ALI", "Unrolled GAN", "VEEGAN"):
        assert any(line.split()[:len(row.split())] == row.split() for line in text.splitlines()), row


def test_the_full_form_follows_veegans_2d_protocol():
    from study.spec import load_spec

    spec = load_spec(REPO / "search_spaces" / "systems_2d.yaml")
    assert spec.search["variant"].values == SYSTEMS and len(spec.seed_list) == 5
    train = spec.fixed["train"]
    assert (train["epochs"], train["steps_per_epoch"], train["batch_size"], train["lr"]) == (100, 1000, 500, 1e-3)
    assert spec.fixed["model"]["g_hidden"] == 128 and spec.fixed["model"]["d_layers"] == 1
    assert spec.fixed["eval"]["n_samples"] == 2500


@pytest.mark.slow
@pytest.mark.verify
def test_the_whole_quick_form_compares_every_system_under_one_verdict(ray_local, tmp_path):
    """The quick form as shipped: 11 systems x 2 seeds through Tune and MLflow (about 12 minutes on 2 cores).
    Measured (docs/protocols.md, "The systems comparison"): nine of the eleven learn the ring in at least one seed;
    VEEGAN keeps all 8 modes in both seeds, where the GAN collapses in one. Asserted: what does not hinge on one
    seed's float rounding: at least half the systems reach 6 of the 8 modes in some seed, and VEEGAN is ordered as
    in its Table 1 against the GAN (no more collapses, no fewer modes)."""
    spec = quick_spec("systems_2d.yaml", "systems_quick_e2e")
    assert spec["search"] == {"variant": {"grid": QUICK}} and spec["seeds"] == 2
    uri, trials, collapsed, modes, kl = run_arms(tmp_path, spec, QUICK)
    seen = f"collapsed {collapsed}, mean final modes {modes}, mean reverse KL {kl}"
    assert set(trials["tags.gan_study.outcome"]) <= {"collapsed", "censored", "never_diverse", "diverged"}, seen
    best = trials.groupby("params.variant")["metrics.eval/modes_covered"].max()
    assert (best >= 6).sum() >= len(QUICK) / 2, seen
    assert collapsed["veegan"] <= collapsed["ns_gan"] and modes["veegan"] >= modes["ns_gan"], seen
    print(seen)
