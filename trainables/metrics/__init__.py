"""Metrics: pure functions of tensors (no Ray, no MLflow)."""
