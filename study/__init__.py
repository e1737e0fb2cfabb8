"""The study runner: spec -> Ray Tune + Optuna -> MLflow -> summary."""
