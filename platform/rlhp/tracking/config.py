"""Tracking section of the run config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TrackingConfig(BaseModel):
    """Where runs are recorded. The default is a SQLite store in the working directory
    (MLflow 3 refuses the old ``./mlruns`` file store); any tracking URI works."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    uri: str = Field("sqlite:///mlflow.db", description="MLflow tracking URI")
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
