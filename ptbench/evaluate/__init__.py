"""Evaluation of final runs: generalization metrics on held-out and shifted data."""
