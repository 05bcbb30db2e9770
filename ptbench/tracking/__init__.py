"""The only package that imports mlflow: runs, params, metrics, artifacts, and reading them back."""

from ptbench.tracking.store import Tracker, default_tracking_uri

__all__ = ["Tracker", "default_tracking_uri"]
