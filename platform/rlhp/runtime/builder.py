"""Building a run's actors from its config, and killing them at the end.

One ``RunActors`` holds every actor of a run: rollout workers, the learner and, in preference
mode, the segment buffer, the reward trainer, the labelling actor and, with people labelling,
the feedback actor (the labelling web app). Actors are created with ``max_restarts`` so Ray
restarts one that dies, and each reloads its own state. With GPUs in the cluster the learner
and the reward trainer share a GPU placement-group bundle (``gpu_options``).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import ray
from ray.exceptions import RayActorError

from rlhp.actors.feedback import FeedbackActor
from rlhp.actors.labeling import Labeling
from rlhp.actors.learner import LearnerActor
from rlhp.actors.reward_trainer import RewardTrainer
from rlhp.actors.rollout_worker import RolloutWorker
from rlhp.actors.segment_buffer import SegmentBuffer
from rlhp.checkpoints import REWARD_MODEL
from rlhp.config import RunConfig
from rlhp.errors import ConfigError
from rlhp.feedback_app.backends import ACTOR_NAMESPACE, feedback_actor_name
from rlhp.preference.networks import InputSpec
from rlhp.runtime.cluster import gpu_options


@dataclass
class RunActors:
    """The actor handles of one run (None where the run's mode has no such actor)."""

    workers: list[Any]
    learner: Any  # None with learner.backend=rllib (the Algorithm lives in the driver)
    buffer: Any = None
    trainer: Any = None
    labeling: Any = None
    feedback: Any = None
    feedback_links: dict[str, str] = field(default_factory=dict)  # labeller -> link
    # Constructor arguments held in the object store for the run's life: Ray rebuilds a
    # restarted actor from them, and frees an argument it put there itself once the actor
    # first exists (Atari's observation space pickles to 111 KiB, over Ray's 100 KiB inline
    # limit), so a restarted learner could not be rebuilt without this reference.
    pinned: list[ray.ObjectRef] = field(default_factory=list)

    def all(self) -> list[Any]:
        """Every actor, for placement checks and shutdown."""
        rest = (self.learner, self.trainer, self.labeling, self.buffer, self.feedback)
        return [*self.workers, *(a for a in rest if a is not None)]


@dataclass(frozen=True)
class RunLayout:
    """What the actors are built for: the run, its directory, its env's spaces."""

    cfg: RunConfig
    run_id: str
    run_dir: Path
    obs_space: gym.Space
    act_space: gym.Space
    segment_length: int

    @property
    def preferences(self) -> bool:
        return self.cfg.runtime.reward == "preferences"

    @property
    def human(self) -> bool:
        return self.preferences and self.cfg.teacher.kind == "human"


def build_actors(layout: RunLayout) -> RunActors:
    """Create the run's actors (Ray must be connected)."""
    cfg, rt, run_dir = layout.cfg, layout.cfg.runtime, layout.run_dir
    data = cfg.model_dump(mode="json")
    restarts = {"max_restarts": rt.max_actor_restarts, "max_task_retries": 0}
    # a GPU bundle for rlhp's learner and the reward trainer: only if one of them runs
    uses_gpu_bundle = cfg.learner.backend == "rlhp" or layout.preferences
    gpu = gpu_options() if uses_gpu_bundle else {}
    buffer = None
    if layout.preferences:
        buffer = (
            ray.remote(SegmentBuffer)
            .options(num_cpus=0, **restarts)
            .remote(rt.segment_buffer_capacity, str(run_dir / "segments"))
        )
    if cfg.learner.backend == "rllib":  # EnvRunners and Learner: rlhp.rllib_backend
        actors = RunActors([], None, buffer)
        return _build_preference_actors(layout, actors, data, restarts, gpu)
    workers = [
        ray.remote(RolloutWorker)
        .options(num_cpus=rt.rollout_worker_cpus, **restarts)
        .remote(data, i, layout.run_id, buffer)
        for i in range(rt.num_rollout_workers)
    ]
    obs_space = ray.put(layout.obs_space)
    learner = (
        ray.remote(LearnerActor)
        .options(**({"num_cpus": 0} | gpu), **restarts)
        .remote(data, obs_space, layout.act_space, rt.num_rollout_workers * cfg.env.num_envs,
                layout.preferences, layout.segment_length)
    )  # fmt: skip
    return _build_preference_actors(
        layout, RunActors(workers, learner, buffer, pinned=[obs_space]), data, restarts, gpu
    )


def _build_preference_actors(
    layout: RunLayout,
    actors: RunActors,
    data: dict[str, Any],
    restarts: dict[str, int],
    gpu: dict[str, Any],
) -> RunActors:
    """The reward trainer, the labelling actor and, with people labelling, the feedback
    actor (nothing in a true-reward run)."""
    if not layout.preferences:
        return actors
    run_dir, buffer = layout.run_dir, actors.buffer
    spec = InputSpec.from_spaces(layout.obs_space, layout.act_space)
    actors.trainer = (
        ray.remote(concurrency_groups={"status": 1})(RewardTrainer)
        .options(**({"num_cpus": 0} | gpu), **restarts)
        .remote(data, spec, str(run_dir / "labels"), buffer, str(run_dir / REWARD_MODEL))
    )
    if layout.human:
        actors.feedback, actors.feedback_links = _build_feedback(layout, data, restarts, buffer)
    actors.labeling = (
        ray.remote(Labeling)
        .options(num_cpus=0, **restarts)
        .remote(
            data, spec, str(run_dir / "labels"), buffer, layout.run_id, feedback=actors.feedback
        )
    )
    return actors


def _build_feedback(
    layout: RunLayout, data: dict[str, Any], restarts: dict[str, int], buffer: Any
) -> tuple[Any, dict[str, str]]:
    """The feedback actor (human labels), on this node so its address is reachable here;
    named, so that ``rlhp label RUN_ID`` and Ray Serve front ends can find it."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    cfg, run_id = layout.cfg, layout.run_id
    here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    actor = (
        ray.remote(FeedbackActor)
        .options(
            num_cpus=0,
            max_concurrency=64,  # threaded: web requests never queue behind each other
            name=feedback_actor_name(run_id),
            namespace=ACTOR_NAMESPACE,
            scheduling_strategy=here,
            **restarts,
        )
        .remote(data, str(layout.run_dir / "labels"), str(layout.run_dir), run_id, buffer)
    )
    try:
        url = ray.get(actor.url.remote())
    except RayActorError as err:  # its constructor failed: bad tokens file, port in use
        found = re.search(r"ConfigError: (.+)", str(err))
        if found is None:
            raise
        raise ConfigError(found.group(1).strip()) from None
    if cfg.feedback.serve == "ray_serve":
        from rlhp.feedback_app.serve import deploy

        url = deploy(run_id, cfg.feedback.host, cfg.feedback.port)
    return actor, (ray.get(actor.labeller_links.remote(url)) if url else {})


def shutdown_actors(actors: RunActors | None, cfg: RunConfig, run_id: str) -> None:
    """Kill a run's actors (the Ray cluster itself stays up); the feedback actor first
    finishes the human answers in flight."""
    if actors is None:
        return
    if actors.feedback is not None:
        if cfg.feedback.serve == "ray_serve":
            from rlhp.feedback_app.serve import undeploy

            undeploy(run_id)
        with contextlib.suppress(Exception):  # dead already: its acked labels are on disk
            ray.get(actors.feedback.close.remote(), timeout=30)
    for actor in actors.all():
        ray.kill(actor, no_restart=True)
