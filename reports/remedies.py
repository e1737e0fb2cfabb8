# %% [markdown]
# # Remedies: which remedy keeps the generator from collapsing?
#
# Reads MLflow only, for any remedy study: `remedies` (Optuna over remedy sets on MNIST), `ring8_pacgan` /
# `grid25_pacgan` (GAN vs PacGAN2/3/4), `ring8_unrolled` and `ring8_unrolled_paper` (0/1/5/10 unrolling steps),
# `wgan` (GAN vs WGAN vs WGAN-GP); set `EXPERIMENT` or `$GAN_STUDY_EXPERIMENT`. Each remedy's canonical settings:
# docs/protocols.md.
#
# One row per arm: the grid or choice search keys (a searched remedy set is read back from the
# `search.remedies` param each trial logged; its per-remedy parameters and the learning rate are pooled
# within the row). `collapse_rate` = collapsed / trials with a collapse time (`never_diverse` trials are counted
# apart); `diverged` counts divergences before any collapse, a competing event. Collapse epochs are
# right-censored at the last epoch a collapse could still have been confirmed: `median_collapse_epoch` and
# `quartiles` are Kaplan-Meier estimates, "N+" = no collapse by epoch N; `collapse_incidence` and
# `divergence_incidence` are Aalen-Johansen cumulative incidences by the end of the study (docs/collapse.md).
# `final_diversity` (eval/diversity) and `final_modes_covered`: mean ± sd over trials at the last evaluation;
# `final_quality`: mean eval/hq_fraction there, the share of samples good enough to count. `logrank_p` (the same
# on every row): the p-value of the log-rank test (lifelines' `multivariate_logrank_test`) that every arm has the
# same collapse-free survival, divergence censored; "n/a" with one arm or no collapse.

# %%
import matplotlib.pyplot as plt

from study import notebook, report

# %% tags=["parameters"]
EXPERIMENT = None  # None: $GAN_STUDY_EXPERIMENT, else "remedies"; or ring8_pacgan, ring8_unrolled_paper, wgan, ...
TRACKING_URI = None  # None: $GAN_STUDY_TRACKING_URI, $MLFLOW_TRACKING_URI, else the study runner's default store

# %%
EXPERIMENT, TRACKING_URI = notebook.setup(EXPERIMENT, TRACKING_URI, default="remedies")

# %%
SETTINGS = ["loss", "train.optimizer", "train.lr", "train.lr_d", "train.lr_g", "train.n_critic", "train.epochs"]
trials = report.load_trials(EXPERIMENT, tracking_uri=TRACKING_URI, params=SETTINGS + notebook.RULE_PARAMS)
KEYS = report.comparison_keys(trials)
print(f"parent run {trials.attrs['parent_run_id']}: {len(trials)} trials, search keys {trials.attrs['search_keys']}")
print(f"one row per {' x '.join(KEYS) or 'study'}")
print(trials["outcome"].value_counts().to_string())

# %% [markdown]
# ## Remedy -> collapse

# %%
table = report.comparison_table(trials, KEYS)
print(report.format_table(table, title="remedy -> collapse across seeds and epochs survived"))

# %%
print(report.format_table(report.settings_table(trials, KEYS, SETTINGS), title="what each row ran with"))

# %%
# Optuna studies sample several configurations per row (learning rate, remedy parameters): one line each
if list(KEYS) != list(trials.attrs["search_keys"]):
    per_config = report.summary_table(trials)
    print(report.format_table(per_config, title="per configuration (all search keys)"))
else:
    print("every row above is one configuration")

# %% [markdown]
# ## Survival and cumulative incidence
#
# Left: Kaplan-Meier, the fraction of trials not yet collapsed (divergence censored, '+' = censored), with its 95%
# band (exponential Greenwood) shaded and, under the axes, the trials still at risk after each epoch. Right: the
# cumulative incidence of collapse (solid) and of divergence (dashed, in arms where a trial diverged first).

# %%
notebook.survival_section(trials, KEYS, KEYS, "Kaplan-Meier: trials not yet collapsed ('+' censored)")

# %% [markdown]
# ## Collapse states per epoch
#
# Per arm, the share of trials in each state at each epoch (not_learned, diverse, collapsed, degraded);
# "ended": the trial had stopped before that epoch (stop-on-collapse, ASHA, divergence).

# %%
notebook.states_section(trials, by=KEYS, tracking_uri=TRACKING_URI)

# %% [markdown]
# ## Spread, diversity, quality and modes covered per epoch
#
# The verdict's inputs beside the published metrics: `eval/spread` against the collapse threshold,
# `eval/diversity`, the quality `eval/hq_fraction` against the quality floor; then `eval/modes_covered`.

# %%
notebook.verdict_section(trials, by=KEYS, tracking_uri=TRACKING_URI)

# %%
fig, ax = plt.subplots(figsize=(7, 4.5))
report.plot_metric_curves(trials, "eval/modes_covered", tracking_uri=TRACKING_URI, ax=ax, by=KEYS)
ax.set_title("modes covered per epoch, mean over trials")
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
