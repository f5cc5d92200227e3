"""MLflow tracking: one run per rlhp run, resumable, metrics indexed by environment step.

A thin layer over ``MlflowClient`` so that the runtime logs through four calls (config,
metrics, artifacts, models) and never touches MLflow's global "active run" state. Credentials
in any URI of the config (``tracking.uri=postgresql://user:password@…``) are masked before
they reach MLflow's params or the logged ``config.yaml``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from rlhp.errors import ConfigError
from rlhp.tracking.config import TrackingConfig
from rlhp.tracking.uri import redact_text, redact_tree, redact_uri

_MAX_PARAMS_PER_BATCH = 100  # MLflow's limit per log_batch call


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``: config sections as dotted MLflow params."""
    out: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out |= flatten(value, f"{name}.")
        else:
            out[name] = str(value)
    return out


def artifact_location(cfg: TrackingConfig) -> str | None:
    """Artifacts of a new experiment: as configured; beside a SQLite file store by default
    (``<dir of mlflow.db>/mlartifacts``); else the tracking server's default."""
    if cfg.artifact_location:
        return cfg.artifact_location
    if cfg.uri.startswith("sqlite:///"):
        return (Path(cfg.uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()
    return None


class MlflowTracker:
    """Creates (or, given ``run_id``, reopens) one MLflow run and logs into it; a new run is
    nested under ``cfg.parent_run_id`` when that is set (a sweep's trial)."""

    def __init__(self, cfg: TrackingConfig, run_name: str, run_id: str | None = None) -> None:
        self.client = MlflowClient(tracking_uri=cfg.uri)
        if run_id is not None:
            try:
                run = self.client.get_run(run_id)
            except Exception as err:  # MlflowException for an unknown id; anything for a bad store
                raise ConfigError(
                    f"--resume: no MLflow run {run_id!r} in {redact_uri(cfg.uri)} "
                    f"({redact_text(str(err))})"
                ) from None
            self.run_id = run.info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            return
        experiment = self.client.get_experiment_by_name(cfg.experiment)
        experiment_id = (
            experiment.experiment_id
            if experiment
            else self.client.create_experiment(
                cfg.experiment, artifact_location=artifact_location(cfg)
            )
        )
        tags = {"mlflow.parentRunId": cfg.parent_run_id} if cfg.parent_run_id else None
        self.run_id = self.client.create_run(
            experiment_id, run_name=cfg.run_name or run_name, tags=tags
        ).info.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Params (nested sections become dotted names), credentials in URIs masked."""
        items = [Param(k, redact_text(str(v))[:6000]) for k, v in flatten(params).items()]
        for i in range(0, len(items), _MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + _MAX_PARAMS_PER_BATCH])

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        batch = [
            Metric(k, float(v), now, int(step)) for k, v in metrics.items() if v == v
        ]  # drop NaN
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def log_config(self, config: Mapping[str, Any]) -> None:
        """The run's config as params and as the artifact ``config.yaml``, both redacted
        (the run directory keeps the full config: a resumed run needs its real URIs)."""
        import yaml

        self.log_params(config)
        text = yaml.safe_dump(redact_tree(dict(config)), sort_keys=False)
        self.client.log_text(self.run_id, text, "config.yaml")

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for k, v in tags.items():
            self.client.set_tag(self.run_id, k, v)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)
