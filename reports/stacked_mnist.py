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
# `diversity` = exp(H) / 1000 (docs/metrics.md). These are the published counts (PacGAN; VEEGAN, Srivastava et
# al. 2017); the collapse verdict uses the robust count beside them, `eval/modes_robust` (modes holding at least a
# quarter of their fair share, 0.25 / 1000, of the high-quality samples) and `eval/spread` = modes_robust / 1000,
# judged only when the high-quality share `eval/hq_fraction` reaches the quality floor (docs/collapse.md). A
# perfect generator's plug-in diversity is only ~0.75 at 2,000 samples over 1,000 modes and ~0.98 at 26,000:
# the platform refuses an `eval.n_samples` too small for a verdict over K modes.

# %%

from study import notebook, report

# %% tags=["parameters"]
EXPERIMENT = None  # None: $GAN_STUDY_EXPERIMENT, else "stacked_mnist" (or "stacked_mnist_quick")
TRACKING_URI = None  # None: $GAN_STUDY_TRACKING_URI, $MLFLOW_TRACKING_URI, else the study runner's default store
N_MODES = 1000  # stacked MNIST: 10 x 10 x 10 digit triples

# %%
EXPERIMENT, TRACKING_URI = notebook.setup(EXPERIMENT, TRACKING_URI, default="stacked_mnist")

# %%
ROBUST = ["eval/modes_robust", "eval/spread"]
trials = report.load_trials(EXPERIMENT, tracking_uri=TRACKING_URI,
                            params=["data.name", "eval.n_samples", *notebook.RULE_PARAMS],
                            metrics=["eval/kl_to_uniform", *ROBUST])
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

# %%
COUNTS = {"final_modes_covered": "modes_covered", "eval/modes_robust": "modes_robust"}
robust = trials[[k for k in KEYS if k != "seed"] + ["seed", "outcome", *COUNTS, "eval/spread", "final_quality"]]
robust = robust.rename(columns={**COUNTS, "eval/spread": "spread", "final_quality": "quality"}).round(3)
robust = robust.astype({name: "Int64" for name in COUNTS.values()})
print(report.format_table(robust, title=f"per trial: published and robust mode counts (of {N_MODES}), spread "
                                        "and final quality (eval/hq_fraction)"))

# %% [markdown]
# ## Per configuration

# %%
modes = report.mode_table(trials, KEYS, n_modes=N_MODES)
print(report.format_table(modes, title="per configuration: modes covered and KL to uniform, mean ± sd over seeds"))
print()
collapse = report.comparison_table(trials, KEYS)
print(report.format_table(collapse, title="per configuration: collapse across seeds and epochs survived"))

# %% [markdown]
# ## Survival and cumulative incidence
#
# Left: Kaplan-Meier, the fraction of seeds not yet collapsed ('+' = censored at the last confirmable epoch), with
# its 95% band (exponential Greenwood) shaded and, under the axes, the seeds still at risk after each epoch. Right:
# the cumulative incidence of collapse (solid) and of divergence (dashed, where a seed diverged first). The
# collapse table's `logrank_p`: the log-rank test between the rows, divergence censored (docs/collapse.md).

# %%
notebook.survival_section(trials, KEYS, KEYS, "Kaplan-Meier: seeds not yet collapsed ('+' censored)")

# %% [markdown]
# ## Collapse states per epoch

# %%
notebook.states_section(trials, by=KEYS, tracking_uri=TRACKING_URI)

# %% [markdown]
# ## Spread, diversity and quality per epoch

# %%
notebook.verdict_section(trials, by=KEYS, tracking_uri=TRACKING_URI)

# %% [markdown]
# ## Modes covered and KL per epoch
#
# Published count (`eval/modes_covered`) beside the robust one (`eval/modes_robust`), both out of 1,000, and KL to
# uniform (ln 1000 = 6.91: one mode).

# %%
notebook.curves_section(trials, ["eval/modes_covered", "eval/modes_robust", "eval/kl_to_uniform"], KEYS,
                        TRACKING_URI, guides={"eval/modes_covered": (N_MODES, f"all {N_MODES} modes"),
                                              "eval/modes_robust": (N_MODES, f"all {N_MODES} modes")})

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
