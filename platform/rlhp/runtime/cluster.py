"""Connecting to Ray and placing actors: GPU bundles for the learner and reward trainer
when the cluster has GPUs, plain CPU actors otherwise (a 2-core laptop runs everything).

Inside a Ray job the driver joins the job's cluster through ``RAY_ADDRESS``; inside a Ray
Tune trial (``rlhp sweep``) Ray is already connected and the trial's placement group
captures every actor the run creates, so the GPU bundle, when there is one, is taken from
that placement group instead of a new one: a trial's actors stay inside the trial.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import ray
from ray.util.placement_group import get_current_placement_group, placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from rlhp.errors import ConfigError


def connect(address: str | None) -> None:
    """Join ``address`` (or RAY_ADDRESS), else start a local Ray; no-op when connected."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    on_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=True,
                 logging_level="WARNING", configure_logging=True)  # fmt: skip
    except ConnectionError as err:
        raise ConfigError(
            f"runtime.ray_address: cannot reach a Ray cluster at {address!r} ({err}); start one "
            "with `ray start --head`, or unset RAY_ADDRESS to run locally"
        ) from None
    if callable(on_sigterm) and threading.current_thread() is threading.main_thread():
        # ray.init puts its own SIGTERM handler (a stack trace, then abort) over the one the
        # process had (rlhp.runtime.termination's: checkpoint, then stop); the process's wins
        signal.signal(signal.SIGTERM, on_sigterm)


def _placement_group_id(_actor: Any) -> str | None:
    return ray.get_runtime_context().get_placement_group_id()


def placement_groups_of(actors: list[Any]) -> dict[str, str | None]:
    """Actor id (hex) -> the placement group it runs in (None: none), asked of each actor.

    Ask while the actors are idle, right after they are built: an actor runs one task at a
    time, so the question waits behind whatever it is doing (a reward-model fit: minutes)."""
    groups = ray.get([a.__ray_call__.remote(_placement_group_id) for a in actors])
    return {a._actor_id.hex(): g for a, g in zip(actors, groups, strict=True)}


def _gpu_bundle_of_current_group() -> tuple[Any, int] | None:
    """(placement group, bundle index) of a GPU bundle in the placement group this process
    runs in (a Tune trial's), or None when there is no such group or it has no GPU."""
    pg = get_current_placement_group()
    if pg is None:
        return None
    for index, bundle in enumerate(pg.bundle_specs):
        if bundle.get("GPU", 0) >= 1 and bundle.get("CPU", 0) >= 1:
            return pg, index
    return None


def in_placement_group() -> bool:
    """True inside a placement group (a Tune trial): new actors are placed in it."""
    return get_current_placement_group() is not None


def gpu_options() -> dict[str, Any]:
    """Actor options for the learner and the reward trainer: half a GPU each, both in one
    placement-group bundle, when the cluster has a GPU; none otherwise. Inside a placement
    group (a sweep trial) the bundle is the group's own GPU bundle, or none if it has none."""
    index = 0
    if in_placement_group():
        found = _gpu_bundle_of_current_group()
        if found is None:
            return {}  # the trial reserved no GPU: stay on the trial's CPUs
        pg, index = found
    elif ray.cluster_resources().get("GPU", 0) < 1:
        return {}
    else:
        pg = placement_group([{"GPU": 1, "CPU": 1}], strategy="PACK")
        ray.get(pg.ready(), timeout=120)
    return {
        "num_gpus": 0.5,
        "num_cpus": 0.5,
        "scheduling_strategy": PlacementGroupSchedulingStrategy(
            pg, placement_group_bundle_index=index
        ),
    }
