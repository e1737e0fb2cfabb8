# %% [markdown]
# # Label noise: does flipping D's labels delay mode collapse?
#
# Reads MLflow only. Collapse epochs of trials that did not collapse are right-censored ("70+"); medians and
# quartiles are Kaplan-Meier estimates; `never_diverse` trials are counted but left out of the survival
# estimate (docs/collapse.md). The study: `search_spaces/label_noise.yaml` (`make study` runs its quick
# budget, experiment `label_noise_quick`); its protocol: docs/protocols.md.

# %%
import matplotlib.pyplot as plt

from study import notebook, report

# %% tags=["parameters"]
EXPERIMENT = None  # None: $GAN_STUDY_EXPERIMENT, else "label_noise" (or "label_noise_quick")
TRACKING_URI = None  # None: $GAN_STUDY_TRACKING_URI, $MLFLOW_TRACKING_URI, else the study runner's default store

# %%
EXPERIMENT, TRACKING_URI = notebook.setup(EXPERIMENT, TRACKING_URI, default="label_noise")

# %%
trials = report.load_trials(EXPERIMENT, tracking_uri=TRACKING_URI)
KEYS = trials.attrs["search_keys"]
FLIP = "remedies.label_flip.rate"
print(f"parent run {trials.attrs['parent_run_id']}: {len(trials)} trials, search keys {KEYS}")
print(trials["outcome"].value_counts().to_string())

# %% [markdown]
# ## Label-flip rate -> epochs until collapse

# %%
table = report.summary_table(trials)
print(report.format_table(table, title="label-flip rate -> epochs until collapse"))

# %% [markdown]
# ## Survival: fraction of seeds not yet collapsed

# %%
by = [FLIP] if FLIP in trials.columns else None
fig, ax = plt.subplots(figsize=(7, 4.5))
report.plot_survival(trials, ax=ax, by=by)
ax.set_title("Kaplan-Meier: seeds not yet collapsed, per label-flip rate")
notebook.show(fig)

# %% [markdown]
# ## Diversity per epoch

# %%
fig, ax = plt.subplots(figsize=(7, 4.5))
report.plot_metric_curves(trials, "eval/diversity", tracking_uri=TRACKING_URI, ax=ax, by=by)
ax.set_title("diversity per epoch, mean over seeds")
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
notebook.diversity_section(trials, by=by, tracking_uri=TRACKING_URI)
