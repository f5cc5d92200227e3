"""Experiment tracking in MLflow (params, metrics by env step, artifacts, models)."""

from rlhp.tracking.config import TrackingConfig
from rlhp.tracking.mlflow_tracker import MlflowTracker, flatten

__all__ = ["MlflowTracker", "TrackingConfig", "flatten"]
