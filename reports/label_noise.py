# %% [markdown]
# # Label noise: does flipping D's labels delay mode collapse?
#
# Reads MLflow only. Each evaluation puts a trial in one state (not_learned, diverse, collapsed, degraded) from
# the spread of its high-quality samples over the modes and their share; a collapse is `patience` collapsed
# evaluations in a row after a diverse one, or from the first judged one with `collapse.from_start` (the
# `make study` demo; docs/collapse.md). Trials that did not collapse are right-censored
# at the last epoch a collapse could still have been confirmed ("69+"); medians and quartiles are Kaplan-Meier
# estimates (lifelines), compared between flip rates by a log-rank test; a divergence before any collapse is a
# competing event (Aalen-Johansen cumulative incidence); `never_diverse` trials are counted but left out of all
# three. The study: `search_spaces/label_noise.yaml` (experiment `label_noise`, quick `label_noise_quick`), or its
# 2D form `search_spaces/ring8_label_noise.yaml` (`make study` runs its quick block, experiment
# `ring8_label_noise_quick`; `make report` reads that one); protocols: docs/protocols.md.

# %%

from study import notebook, report

# %% tags=["parameters"]
EXPERIMENT = None  # None: $GAN_STUDY_EXPERIMENT, else "label_noise" (or "label_noise_quick")
TRACKING_URI = None  # None: $GAN_STUDY_TRACKING_URI, $MLFLOW_TRACKING_URI, else the study runner's default store

# %%
EXPERIMENT, TRACKING_URI = notebook.setup(EXPERIMENT, TRACKING_URI, default="label_noise")

# %%
trials = report.load_trials(EXPERIMENT, tracking_uri=TRACKING_URI, params=notebook.RULE_PARAMS)
KEYS = trials.attrs["search_keys"]
FLIP = "remedies.label_flip.rate"
print(f"parent run {trials.attrs['parent_run_id']}: {len(trials)} trials, search keys {KEYS}")
print(trials["outcome"].value_counts().to_string())

# %% [markdown]
# ## Label-flip rate -> epochs until collapse
#
# One row per flip rate: `collapsed`, `never_diverse`, `diverged` (before any collapse) counts;
# `median_collapse_epoch` and `quartiles` (Kaplan-Meier, "N+" = not reached by the last confirmable epoch N);
# `collapse_incidence` and `divergence_incidence` (Aalen-Johansen, by the end of the study);
# `mean_final_diversity` (eval/diversity, mean ± sd) and `mean_final_quality` (eval/hq_fraction) at the last
# evaluation; `logrank_p` (the same on every row): the p-value of the log-rank test (lifelines'
# `multivariate_logrank_test`) that every flip rate has the same collapse-free survival, divergence censored;
# "n/a" with one rate or no collapse.

# %%
table = report.summary_table(trials)
print(report.format_table(table, title="label-flip rate -> epochs until collapse"))

# %% [markdown]
# ## Survival and cumulative incidence
#
# Left: Kaplan-Meier, the fraction of seeds not yet collapsed (divergence censored, '+' = censored), with its 95%
# band (exponential Greenwood) shaded and, under the axes, the seeds still at risk after each epoch. Right: the
# cumulative incidence of collapse (solid) and of divergence (dashed, where a seed diverged first): competing
# events, so the two add up to 1 minus the share of seeds with neither.

# %%
by = [FLIP] if FLIP in trials.columns else None
notebook.survival_section(trials, by, KEYS, "Kaplan-Meier: seeds not yet collapsed, per label-flip rate")

# %% [markdown]
# ## Collapse states per epoch
#
# Per flip rate, the share of seeds in each state at each epoch; "ended": the seed had stopped (diverged, or
# stopped by the scheduler) before that epoch.

# %%
notebook.states_section(trials, by=by, tracking_uri=TRACKING_URI)

# %% [markdown]
# ## Spread, diversity and quality per epoch
#
# The verdict's inputs beside the published diversity: `eval/spread` (share of modes holding at least a quarter
# of their fair share of the high-quality samples) against the collapse threshold, `eval/diversity`
# (exp(entropy) / K, PacGAN's), and the quality `eval/hq_fraction` against the quality floor below which spread
# is not judged.

# %%
notebook.verdict_section(trials, by=by, tracking_uri=TRACKING_URI)

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
