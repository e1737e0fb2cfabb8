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


def _notebook(cells: list) -> nbformat.NotebookNode:
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"  # stable ids: regenerating gives no spurious diff
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def remedies() -> nbformat.NotebookNode:
    """The remedy-catalogue report: one row per remedy set or variant, Kaplan-Meier and metric curves."""
    params = new_code_cell(REMEDIES_PARAMETERS)
    params.metadata["tags"] = ["parameters"]
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
    ])


def label_noise() -> nbformat.NotebookNode:
    """The label-noise study report: table, Kaplan-Meier curves per flip rate, diversity curves."""
    params = new_code_cell(PARAMETERS)
    params.metadata["tags"] = ["parameters"]
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
    ]
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"  # stable ids: regenerating gives no spurious diff
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


NOTEBOOKS = {"label_noise.ipynb": label_noise, "remedies.ipynb": remedies}


def main() -> None:
    """Write every notebook next to this script."""
    for name, build in NOTEBOOKS.items():
        nb = build()
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
