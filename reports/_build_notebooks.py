"""Write the report notebooks from source, so they can be regenerated: python reports/_build_notebooks.py"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

PARAMETERS = '''\
EXPERIMENT = "label_noise"
TRACKING_URI = None  # None: $GAN_STUDY_TRACKING_URI, else sqlite:///<repo>/.studies/mlflow.db
'''

SETUP = '''\
import io
import os
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from IPython.display import Image, display

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm, imported by mlflow


def find_root(start=Path.cwd()):
    """Repository root: the notebook runs with cwd = reports/ (../pyproject.toml) or from the root."""
    for candidate in [start.parent, start, *start.parents]:
        if (candidate / "pyproject.toml").is_file() and (candidate / "study").is_dir():
            return candidate.resolve()
    raise FileNotFoundError(f"no gan-study checkout (pyproject.toml + study/) above {start}")


ROOT = find_root()
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from study import report

EXPERIMENT = os.environ.get("GAN_STUDY_EXPERIMENT") or EXPERIMENT
TRACKING_URI = (TRACKING_URI or os.environ.get("GAN_STUDY_TRACKING_URI")
                or "sqlite:///" + str(ROOT / ".studies" / "mlflow.db"))


def show(fig):
    """Render a figure as PNG output (works headless with the Agg backend)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    display(Image(data=buf.getvalue()))


print(f"experiment {EXPERIMENT!r} at {TRACKING_URI}")
'''

LOAD = '''\
trials = report.load_trials(EXPERIMENT, tracking_uri=TRACKING_URI)
KEYS = trials.attrs["search_keys"]
FLIP = "remedies.label_flip.rate"
print(f"parent run {trials.attrs['parent_run_id']}: {len(trials)} trials, search keys {KEYS}")
print(trials["outcome"].value_counts().to_string())
'''

TABLE = '''\
table = report.summary_table(trials)
print(report.format_table(table, title="label-flip rate -> epochs until collapse"))
'''

SURVIVAL = '''\
by = [FLIP] if FLIP in trials.columns else None
fig, ax = plt.subplots(figsize=(7, 4.5))
report.plot_survival(trials, ax=ax, by=by)
ax.set_title("Kaplan-Meier: seeds not yet collapsed, per label-flip rate")
show(fig)
'''

CURVES = '''\
fig, ax = plt.subplots(figsize=(7, 4.5))
report.plot_metric_curves(trials, "eval/diversity", tracking_uri=TRACKING_URI, ax=ax, by=by)
ax.set_title("diversity per epoch, mean over seeds")
show(fig)
'''

# Model-free diversity (PROTOCOLS.md "Sample-based metrics"): `__BY__` is the notebook's grouping variable.
DIVERSITY = '''\
DIVERSITY_METRICS = ["eval/coverage", "eval/precision", "eval/recall", "eval/ndb", "eval/duplicate_rate",
                     "eval/forgetting"]
present = report.available_metrics(trials, DIVERSITY_METRICS, tracking_uri=TRACKING_URI)
if not present:
    print("no model-free diversity metrics in these runs (eval.prdc/ndb/duplicates/probes off, or logged "
          "before they existed): section skipped")
else:
    missing = [m for m in DIVERSITY_METRICS if m not in present]
    if missing:
        print(f"not logged, left out: {', '.join(missing)}")
    ncols = min(3, len(present))
    nrows = -(-len(present) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.5 * ncols, 4 * nrows), squeeze=False)
    for ax, metric in zip(axes.flat, present):
        report.plot_metric_curves(trials, metric, tracking_uri=TRACKING_URI, ax=ax, by=__BY__)
        ax.set_title(f"{metric} per epoch, mean over trials")
    for ax in list(axes.flat)[len(present):]:
        ax.set_visible(False)
    fig.tight_layout()
    show(fig)
'''

DIVERSITY_NOTE = (
    "## Model-free diversity\n\n"
    "Per-epoch means over trials of the sample-based metrics in the classifier's feature space "
    "(PROTOCOLS.md): coverage and recall fall and `ndb` (share of k-means bins whose frequency differs "
    "significantly from the real data's) and `duplicate_rate` rise as the generator collapses; precision "
    "tracks sample quality; `forgetting` is the mean change of D's score on a fixed real probe set between "
    "epochs. Metrics absent from the runs are left out.")


def diversity_cells(by: str) -> list:
    """The "Model-free diversity" section, grouped by the notebook variable `by`."""
    return [new_markdown_cell(DIVERSITY_NOTE), new_code_cell(DIVERSITY.replace("__BY__", by))]


REMEDIES_PARAMETERS = '''\
EXPERIMENT = "remedies"  # or ring8_pacgan, grid25_pacgan, ring8_unrolled, wgan (and their *_quick)
TRACKING_URI = None  # None: $GAN_STUDY_TRACKING_URI, else sqlite:///<repo>/.studies/mlflow.db
'''

REMEDIES_LOAD = '''\
SETTINGS = ["loss", "train.optimizer", "train.lr", "train.lr_d", "train.lr_g", "train.n_critic", "train.epochs"]
trials = report.load_trials(EXPERIMENT, tracking_uri=TRACKING_URI, params=SETTINGS)
KEYS = report.comparison_keys(trials)
print(f"parent run {trials.attrs['parent_run_id']}: {len(trials)} trials, search keys {trials.attrs['search_keys']}")
print(f"one row per {' x '.join(KEYS) or 'study'}")
print(trials["outcome"].value_counts().to_string())
'''

REMEDIES_TABLE = '''\
table = report.comparison_table(trials, KEYS)
print(report.format_table(table, title="remedy -> collapse across seeds and epochs survived"))
'''

REMEDIES_SETTINGS = '''\
print(report.format_table(report.settings_table(trials, KEYS, SETTINGS), title="what each row ran with"))
'''

REMEDIES_CONFIGS = '''\
# Optuna studies sample several configurations per row (learning rate, remedy parameters): one line each
if list(KEYS) != list(trials.attrs["search_keys"]):
    per_config = report.summary_table(trials)
    print(report.format_table(per_config, title="per configuration (all search keys)"))
else:
    print("every row above is one configuration")
'''

REMEDIES_SURVIVAL = '''\
fig, ax = plt.subplots(figsize=(7, 4.5))
report.plot_survival(trials, ax=ax, by=KEYS)
ax.set_title("Kaplan-Meier: trials not yet collapsed ('+' censored)")
show(fig)
'''

REMEDIES_CURVES = '''\
fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
report.plot_metric_curves(trials, "eval/diversity", tracking_uri=TRACKING_URI, ax=axes[0], by=KEYS)
axes[0].set_title("diversity per epoch, mean over trials")
report.plot_metric_curves(trials, "eval/modes_covered", tracking_uri=TRACKING_URI, ax=axes[1], by=KEYS)
axes[1].set_title("modes covered per epoch, mean over trials")
show(fig)
'''


def _parameters_cell(source: str) -> nbformat.NotebookNode:
    """The cell tagged `parameters` (papermill's convention): experiment name and tracking URI."""
    cell = new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    return cell


def _notebook(cells: list) -> nbformat.NotebookNode:
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"  # stable ids: regenerating gives no spurious diff
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def remedies() -> nbformat.NotebookNode:
    """The remedy-catalogue report: one row per remedy set or variant, Kaplan-Meier and metric curves."""
    params = _parameters_cell(REMEDIES_PARAMETERS)
    return _notebook([
        params,
        new_markdown_cell(
            "# Remedies: which remedy keeps the generator from collapsing?\n\n"
            "Reads MLflow only, for any remedy study: `remedies` (Optuna over remedy sets on MNIST), "
            "`ring8_pacgan` / `grid25_pacgan` (GAN vs PacGAN2/3/4), `ring8_unrolled` (0/1/5/10 unrolling steps), "
            "`wgan` (GAN vs WGAN vs WGAN-GP); set `EXPERIMENT` or `$GAN_STUDY_EXPERIMENT`.\n\n"
            "One row per arm: the grid or choice search keys (a searched remedy set is read back from the "
            "`remedies.<name>.*` params each trial logged; its per-remedy parameters and the learning rate are "
            "pooled within the row). Collapse rate = collapsed / trials with a collapse time (`never_diverse` "
            "trials are counted apart). Epochs survived are right-censored: medians and quartiles are "
            "Kaplan-Meier estimates, \"N+\" = no collapse within N epochs. Final diversity and modes covered: "
            "mean ± sd over trials."),
        new_code_cell(SETUP),
        new_code_cell(REMEDIES_LOAD),
        new_markdown_cell("## Remedy -> collapse"),
        new_code_cell(REMEDIES_TABLE),
        new_code_cell(REMEDIES_SETTINGS),
        new_code_cell(REMEDIES_CONFIGS),
        new_markdown_cell("## Survival: fraction of trials not yet collapsed"),
        new_code_cell(REMEDIES_SURVIVAL),
        new_markdown_cell("## Diversity and modes covered per epoch"),
        new_code_cell(REMEDIES_CURVES),
        *diversity_cells("KEYS"),
    ])


def label_noise() -> nbformat.NotebookNode:
    """The label-noise study report: table, Kaplan-Meier curves per flip rate, diversity curves."""
    params = _parameters_cell(PARAMETERS)
    cells = [
        params,
        new_markdown_cell("# Label noise: does flipping D's labels delay mode collapse?\n\n"
                          "Reads MLflow only. Collapse epochs of trials that did not collapse are right-censored "
                          "(\"70+\"); medians and quartiles are Kaplan-Meier estimates; `never_diverse` trials "
                          "are counted but left out of the survival estimate."),
        new_code_cell(SETUP),
        new_code_cell(LOAD),
        new_markdown_cell("## Label-flip rate -> epochs until collapse"),
        new_code_cell(TABLE),
        new_markdown_cell("## Survival: fraction of seeds not yet collapsed"),
        new_code_cell(SURVIVAL),
        new_markdown_cell("## Diversity per epoch"),
        new_code_cell(CURVES),
        *diversity_cells("by"),
    ]
    return _notebook(cells)


STACKED_PARAMETERS = '''\
EXPERIMENT = "stacked_mnist"  # or stacked_mnist_quick
TRACKING_URI = None  # None: $GAN_STUDY_TRACKING_URI, else sqlite:///<repo>/.studies/mlflow.db
N_MODES = 1000  # stacked MNIST: 10 x 10 x 10 digit triples
'''

STACKED_LOAD = '''\
trials = report.load_trials(EXPERIMENT, tracking_uri=TRACKING_URI, params=["data.name", "eval.n_samples"],
                            metrics=["eval/kl_to_uniform"])
KEYS = report.comparison_keys(trials)
print(f"parent run {trials.attrs['parent_run_id']}: {len(trials)} trials, search keys {trials.attrs['search_keys']}")
datasets = sorted(set(trials["data.name"].dropna().astype(str)))
if datasets != ["stacked_mnist"]:
    print(f"warning: data {datasets}, not stacked_mnist: modes are still counted out of N_MODES = {N_MODES}")
print(f"modes counted among {'/'.join(map(str, sorted(set(trials['eval.n_samples'].dropna().astype(int)))))} "
      "samples per evaluation")
print(trials["outcome"].value_counts().to_string())
'''

STACKED_TRIALS = '''\
per_trial = report.trial_table(trials, KEYS, n_modes=N_MODES)
print(report.format_table(per_trial, title=f"per trial: final modes covered (of {N_MODES}) and KL to uniform"))
'''

STACKED_SUMMARY = '''\
modes = report.mode_table(trials, KEYS, n_modes=N_MODES)
print(report.format_table(modes, title="per configuration: modes covered and KL to uniform, mean ± sd over seeds"))
print()
collapse = report.comparison_table(trials, KEYS)
print(report.format_table(collapse, title="per configuration: collapse across seeds and epochs survived"))
'''

STACKED_CURVES = '''\
fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
report.plot_metric_curves(trials, "eval/modes_covered", tracking_uri=TRACKING_URI, ax=axes[0], by=KEYS)
axes[0].axhline(N_MODES, color="grey", lw=0.8, ls="--")
axes[0].set_title(f"modes covered (of {N_MODES}) per epoch, mean over seeds")
report.plot_metric_curves(trials, "eval/kl_to_uniform", tracking_uri=TRACKING_URI, ax=axes[1], by=KEYS)
axes[1].set_title("KL to uniform per epoch, mean over seeds (ln 1000 = 6.91: one mode)")
show(fig)
'''


def stacked_mnist() -> nbformat.NotebookNode:
    """The stacked MNIST report: modes covered of 1,000 and KL per trial and per arm, curves per epoch."""
    params = _parameters_cell(STACKED_PARAMETERS)
    return _notebook([
        params,
        new_markdown_cell(
            "# Stacked MNIST: how many of the 1,000 modes does each GAN cover?\n\n"
            "PacGAN's stacked MNIST experiment (PROTOCOLS.md; Lin et al. 2018): three MNIST digits as the RGB "
            "channels, mode = 100 d0 + 10 d1 + d2 from the cached MNIST classifier applied to each channel. Reads "
            "MLflow only (`search_spaces/stacked_mnist.yaml`; set `EXPERIMENT` or `$GAN_STUDY_EXPERIMENT`, "
            "e.g. `stacked_mnist_quick`).\n\n"
            "Values are each trial's final evaluation (`eval.n_samples` samples from a fixed latent batch). "
            "`modes_covered` is the platform's `eval/modes_covered`: for stacked MNIST the number of distinct "
            "argmax triples among the samples (PacGAN's count, no confidence threshold). `kl_to_uniform` = ln 1000 - H(mode histogram over every sample), "
            "6.91 at total collapse, 0 when all modes are equally frequent; `diversity` = exp(H) / 1000."),
        new_code_cell(SETUP),
        new_code_cell(STACKED_LOAD),
        new_markdown_cell("## Modes covered and KL per trial"),
        new_code_cell(STACKED_TRIALS),
        new_markdown_cell("## Per configuration"),
        new_code_cell(STACKED_SUMMARY),
        new_markdown_cell("## Modes covered and KL per epoch"),
        new_code_cell(STACKED_CURVES),
        *diversity_cells("KEYS"),
    ])


NOTEBOOKS = {"label_noise.ipynb": label_noise, "remedies.ipynb": remedies, "stacked_mnist.ipynb": stacked_mnist}


def main() -> None:
    """Write every notebook next to this script."""
    for name, build in NOTEBOOKS.items():
        nb = build()
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
