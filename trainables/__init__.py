"""What trains and measures: plain PyTorch GAN runs (only `tune.py` imports Ray or MLflow)."""
