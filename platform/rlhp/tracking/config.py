"""Tracking section of the run config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from rlhp.tracking.uri import default_tracking_uri


class TrackingConfig(BaseModel):
    """Where runs are recorded. The default follows MLflow's convention: the store named by
    ``MLFLOW_TRACKING_URI``, else a SQLite store in the working directory (MLflow 3 refuses
    the old ``./mlruns`` file store); any tracking URI works."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: str = Field(
        default_factory=default_tracking_uri,
        min_length=1,
        description="MLflow tracking URI; default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db",
    )
    experiment: str = Field("rlhp", min_length=1, description="MLflow experiment name")
    artifact_location: str | None = Field(
        None,
        description="artifact root of new experiments; default: mlartifacts/ beside a SQLite store",
    )
    run_name: str | None = Field(None, description="MLflow run name; default: env and algorithm")
    parent_run_id: str | None = Field(
        None,
        description="MLflow run to nest this run under (tag mlflow.parentRunId); a sweep sets "
        "it to the sweep's parent run, in the same experiment",
    )
