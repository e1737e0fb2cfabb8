# %% [markdown]
# # Stacked MNIST: how many of the 1,000 modes does each GAN cover?
#
# PacGAN's stacked MNIST experiment (docs/protocols.md; Lin et al. 2018): three MNIST digits as the RGB
# channels, mode = 100 d0 + 10 d1 + d2 from the cached MNIST classifier applied to each channel. Reads MLflow
# only (`search_spaces/stacked_mnist.yaml`; set `EXPERIMENT` or `$GAN_STUDY_EXPERIMENT`, e.g.
# `stacked_mnist_quick`).
#
# Values are each trial's final evaluation (`eval.n_samples` samples from a fixed latent batch).
# `modes_covered` is the platform's `eval/modes_covered`: for stacked MNIST the number of distinct argmax
# triples among the samples (PacGAN's count, no confidence threshold). `kl_to_uniform` = ln 1000 - H(mode
# histogram over every sample), 6.91 at total collapse, 0 when all modes are equally frequent;
# `diversity` = exp(H) / 1000 (docs/metrics.md).

# %%
import matplotlib.pyplot as plt

from study import notebook, report

# %% tags=["parameters"]
EXPERIMENT = None  # None: $GAN_STUDY_EXPERIMENT, else "stacked_mnist" (or "stacked_mnist_quick")
TRACKING_URI = None  # None: $GAN_STUDY_TRACKING_URI, $MLFLOW_TRACKING_URI, else the study runner's default store
N_MODES = 1000  # stacked MNIST: 10 x 10 x 10 digit triples

# %%
EXPERIMENT, TRACKING_URI = notebook.setup(EXPERIMENT, TRACKING_URI, default="stacked_mnist")

# %%
trials = report.load_trials(EXPERIMENT, tracking_uri=TRACKING_URI, params=["data.name", "eval.n_samples"],
                            metrics=["eval/kl_to_uniform"])
KEYS = report.comparison_keys(trials)
print(f"parent run {trials.attrs['parent_run_id']}: {len(trials)} trials, search keys {trials.attrs['search_keys']}")
datasets = sorted(set(trials["data.name"].dropna().astype(str)))
if datasets != ["stacked_mnist"]:
    print(f"warning: data {datasets}, not stacked_mnist: modes are still counted out of N_MODES = {N_MODES}")
n_samples = sorted(set(trials["eval.n_samples"].dropna().astype(int)))
print(f"modes counted among {'/'.join(map(str, n_samples))} samples per evaluation")
print(trials["outcome"].value_counts().to_string())

# %% [markdown]
# ## Modes covered and KL per trial

# %%
per_trial = report.trial_table(trials, KEYS, n_modes=N_MODES)
print(report.format_table(per_trial, title=f"per trial: final modes covered (of {N_MODES}) and KL to uniform"))

# %% [markdown]
# ## Per configuration

# %%
modes = report.mode_table(trials, KEYS, n_modes=N_MODES)
print(report.format_table(modes, title="per configuration: modes covered and KL to uniform, mean ± sd over seeds"))
print()
collapse = report.comparison_table(trials, KEYS)
print(report.format_table(collapse, title="per configuration: collapse across seeds and epochs survived"))

# %% [markdown]
# ## Modes covered and KL per epoch

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
report.plot_metric_curves(trials, "eval/modes_covered", tracking_uri=TRACKING_URI, ax=axes[0], by=KEYS)
axes[0].axhline(N_MODES, color="grey", lw=0.8, ls="--")
axes[0].set_title(f"modes covered (of {N_MODES}) per epoch, mean over seeds")
report.plot_metric_curves(trials, "eval/kl_to_uniform", tracking_uri=TRACKING_URI, ax=axes[1], by=KEYS)
axes[1].set_title("KL to uniform per epoch, mean over seeds (ln 1000 = 6.91: one mode)")
notebook.show(fig)

# %% [markdown]
# ## Model-free diversity
#
# Per-epoch means over trials of the sample-based metrics in the classifier's feature space
# (docs/metrics.md): coverage and recall fall and `ndb` (share of k-means bins whose frequency differs
# significantly from the real data's) and `duplicate_rate` rise as the generator collapses; precision tracks
# sample quality; `forgetting` is the mean change of D's score on a fixed real probe set between epochs.
# Metrics absent from the runs are left out.

# %%
notebook.diversity_section(trials, by=KEYS, tracking_uri=TRACKING_URI)
