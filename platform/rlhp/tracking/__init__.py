"""Experiment tracking in MLflow (params, metrics by env step, artifacts, models).

``MlflowTracker`` and ``flatten`` load on first use, so a process that only reads a
``TrackingConfig`` (every Ray actor, through ``rlhp.config``) never imports MLflow."""

from typing import TYPE_CHECKING, Any

from rlhp.tracking.config import TrackingConfig

if TYPE_CHECKING:
    from rlhp.tracking.mlflow_tracker import MlflowTracker, flatten

__all__ = ["MlflowTracker", "TrackingConfig", "flatten"]


def __getattr__(name: str) -> Any:
    if name in ("MlflowTracker", "flatten"):
        from rlhp.tracking import mlflow_tracker

        return getattr(mlflow_tracker, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
