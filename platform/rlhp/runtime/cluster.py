"""Connecting to Ray and placing actors: GPU bundles for the learner and reward trainer
when the cluster has GPUs, plain CPU actors otherwise (a 2-core laptop runs everything)."""

from __future__ import annotations

import os
from typing import Any

import ray
from ray.util.placement_group import placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from rlhp.errors import ConfigError


def connect(address: str | None) -> None:
    """Join ``address`` (or RAY_ADDRESS), else start a local Ray; no-op when connected."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=True,
                 logging_level="WARNING", configure_logging=True)  # fmt: skip
    except ConnectionError as err:
        raise ConfigError(
            f"runtime.ray_address: cannot reach a Ray cluster at {address!r} ({err}); start one "
            "with `ray start --head`, or unset RAY_ADDRESS to run locally"
        ) from None


def gpu_options() -> dict[str, Any]:
    """Actor options for the learner and the reward trainer: half a GPU each, both in one
    placement-group bundle, when the cluster has a GPU; none otherwise."""
    if ray.cluster_resources().get("GPU", 0) < 1:
        return {}
    pg = placement_group([{"GPU": 1, "CPU": 1}], strategy="PACK")
    ray.get(pg.ready(), timeout=120)
    return {
        "num_gpus": 0.5,
        "num_cpus": 0.5,
        "scheduling_strategy": PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=0),
    }
