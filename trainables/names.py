"""The MLflow schema: every tag, param prefix, metric name and outcome value the platform writes or reads.

One module for the writer (trainables/tune.py, study/tracking.py), the readers (study/report.py, the report
notebooks) and the tests. Plain constants: importing it imports neither MLflow nor Ray.
"""
from __future__ import annotations

# ---- tags
ROLE = "gan_study.role"  # "study" on the parent run, "trial" on each child run
ROLE_STUDY, ROLE_TRIAL = "study", "trial"
OUTCOME = "gan_study.outcome"  # a trial's outcome (OUTCOMES)
ERROR = "gan_study.error"  # the traceback or message of a failed or diverged trial
CONFIG_KEY = "gan_study.config_key"  # the trial's searched values: seeds of one configuration share it
STUDY = "gan_study.study"  # the study's name (parent run)
SEARCH_KEYS = "gan_study.search_keys"  # JSON list of the searched keys (parent run)
QUICK = "gan_study.quick"  # "True" when the study ran its quick block (parent run)
TRIAL_ID = "ray.trial_id"
NODE_ID = "ray.node_id"
MLFLOW_USER = "gan_study.mlflow_user"  # the MLflow user the trial logs as ($MLFLOW_TRACKING_USERNAME), or ""
DEVICE = "gan_study.device"  # the torch device the trial trained on: "cpu" or "cuda:0 (<GPU name>)"
SEED_TAG = "gan_study.seed"  # the run's seed, set at creation (a seed-batched trial's runs are found by it)
SEEDS_BATCHED = "gan_study.seeds_batched"  # seeds trained together in the trial's seed-batched model (1: alone)
PARENT = "mlflow.parentRunId"
NOTE = "mlflow.note.content"  # a run's description in the MLflow UI (markdown): the summary on the parent run

# ---- params: the resolved trial config flattened to dotted keys ("train.lr", "remedies.label_flip.rate"),
# plus the searched values as the spec wrote them ("search.<key>", e.g. search.remedies = "label_flip+packing")
SEARCH_PARAM = "search."
DATA_INFO_PARAM = "data_info."
CLASSIFIER_PARAM = "classifier."
SEED_PARAM = "seed"
EPOCHS_PARAM = "train.epochs"

# ---- per-epoch metrics of a trial (step = epoch), beside the eval/, loss/, d/, grad/, compute/, time/,
# remedy/ namespaces
EPOCHS_SURVIVED = "epochs_survived"
COLLAPSED = "collapsed"
COLLAPSE_EPOCH = "collapse_epoch"
CENSOR_EPOCH = "censor_epoch"  # no collapse: the last epoch at which one could still be confirmed
DIVERGE_EPOCH = "diverge_epoch"  # the epoch in which a loss became NaN or infinite
DIVERSE_EPOCHS = "diverse_epochs"
COLLAPSE_G_STEP = "collapse_g_step"  # G steps done by the end of the collapse epoch (arms with n_critic > 1)
STATE = "state"  # per-epoch state code: index into trainables.metrics.collapse.STATES
NEVER_DIVERSE = "never_diverse"
DIVERGED = "diverged"
OBJECTIVE = "objective"
EPOCHS_PLANNED = "epochs_planned"  # the run's planned epochs (a trial that ends before them was stopped early)
STOPPED_SEEDS = "seeds_stopped_early"  # a seed-batched trial's seeds ended before their last epoch (not diverged)
DIVERSITY = "eval/diversity"
HQ_FRACTION = "eval/hq_fraction"
SPREAD = "eval/spread"
MODES_COVERED = "eval/modes_covered"
KL_TO_UNIFORM = "eval/kl_to_uniform"
OUTCOME_CODE = "outcome_code"  # index into OUTCOMES, logged when the trial ends (step = its last epoch): chartable
ARM_METRIC = "arm/"  # parent run: "arm/<configuration>/<summary column>" per row of the summary table

# ---- keys of the result a trial reports to Tune each epoch (beside the metrics above)
EPOCH = "epoch"
OUTCOME_RESULT = "outcome"  # the trial's outcome so far (OUTCOMES; RUNNING until it ends)
DONE = "done"

# ---- outcomes (tag OUTCOME)
RUNNING = "running"
COLLAPSED_OUTCOME = "collapsed"  # collapse confirmed (the event of the survival statistics)
CENSORED = "censored"  # no collapse within the epochs run
NEVER_DIVERSE_OUTCOME = "never_diverse"  # never became diverse: no collapse can be judged
DIVERGED_OUTCOME = "diverged"  # a loss became NaN or infinite
STOPPED = "stopped"  # ended early by a scheduler (ASHA) before its last epoch
FAILED = "failed"  # raised an error
OUTCOMES = (RUNNING, COLLAPSED_OUTCOME, CENSORED, NEVER_DIVERSE_OUTCOME, DIVERGED_OUTCOME, STOPPED, FAILED)

# ---- artifacts
SAMPLES_DIR = "samples"  # also the key of the sample grids logged as MLflow images (step = epoch)
D_SURFACE_DIR = "d_surface"
SPEC_DIR = "spec"
RESOLVED_SPEC = "spec/resolved.yaml"
SUMMARY_TXT, SUMMARY_CSV = "summary.txt", "summary.csv"
